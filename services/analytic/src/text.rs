//! Plate text: normalisation of what the recognizer sent, and the
//! confusable-aware edit distance used to decide whether a read belongs to a
//! track.

/// Cost of substituting one character of a confusable pair (O/0, I/1, ...):
/// OCR swaps these often, so they count less than an arbitrary substitution.
pub const CONFUSABLE_COST: f32 = 0.5;

/// Pairs OCR mixes up on plates; each is symmetric.
const CONFUSABLE: [(char, char); 5] = [('O', '0'), ('I', '1'), ('B', '8'), ('S', '5'), ('Z', '2')];

/// The other character of `c`'s confusable pair, if it has one.
pub fn confusable_of(c: char) -> Option<char> {
    CONFUSABLE.iter().find_map(|&(a, b)| {
        if c == a {
            Some(b)
        } else if c == b {
            Some(a)
        } else {
            None
        }
    })
}

/// Most confusable characters tried in one text: 2^n variants are checked.
const MAX_FORMAT_SWAPS: usize = 10;

/// Fits `text` to one of the plate `formats` by swapping characters within
/// their confusable pairs (O/0, I/1, B/8, S/5, Z/2) where the format wants
/// the other kind: `ABC1O3` becomes `ABC103` for `^[A-Z]{3}[0-9]{3}$`. The
/// variant with the fewest swaps wins (the first format breaks ties).
/// Returns `None` when no variant fits, or when the text has so many
/// confusable characters that trying them all would be unreasonable.
pub fn fit_to_formats(text: &str, formats: &[regex::Regex]) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let swappable: Vec<usize> = (0..chars.len())
        .filter(|&i| confusable_of(chars[i]).is_some())
        .collect();
    if swappable.is_empty() || swappable.len() > MAX_FORMAT_SWAPS {
        return None;
    }
    // Masks ordered by the number of swaps, so the first fit is the closest.
    let mut masks: Vec<u32> = (1..(1u32 << swappable.len())).collect();
    masks.sort_by_key(|mask| mask.count_ones());
    let mut variant = chars.clone();
    for mask in masks {
        for (bit, &i) in swappable.iter().enumerate() {
            variant[i] = if mask & (1 << bit) != 0 {
                confusable_of(chars[i]).unwrap_or(chars[i])
            } else {
                chars[i]
            };
        }
        let candidate: String = variant.iter().collect();
        if formats.iter().any(|f| f.is_match(&candidate)) {
            return Some(candidate);
        }
    }
    None
}

/// A read's text and per-character confidences after normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedText {
    pub chars: Vec<char>,
    pub confidences: Vec<f32>,
    /// Whether the confidences had to be made up because the recognizer sent
    /// a different number of them than characters.
    pub repaired: bool,
}

impl NormalisedText {
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }
}

/// Upper-cases `text` and keeps only A-Z and 0-9, dropping the matching
/// confidences with the characters. When `char_confidences` does not have one
/// entry per character the read is repaired: every character gets the read's
/// overall `confidence`, which is the best estimate there is.
///
/// Returns `None` when nothing of the text is left.
pub fn normalise(text: &str, char_confidences: &[f32], confidence: f32) -> Option<NormalisedText> {
    let raw: Vec<char> = text.chars().collect();
    let repaired = char_confidences.len() != raw.len();
    let mut chars = Vec::with_capacity(raw.len());
    let mut confidences = Vec::with_capacity(raw.len());
    for (index, c) in raw.iter().enumerate() {
        let upper = c.to_ascii_uppercase();
        if !(upper.is_ascii_uppercase() || upper.is_ascii_digit()) {
            continue;
        }
        let given = if repaired {
            confidence
        } else {
            char_confidences[index]
        };
        chars.push(upper);
        confidences.push(clamp_confidence(given));
    }
    if chars.is_empty() {
        return None;
    }
    Some(NormalisedText {
        chars,
        confidences,
        repaired,
    })
}

/// A confidence in [0, 1]; NaN counts as no confidence at all.
pub fn clamp_confidence(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

fn substitution_cost(a: char, b: char) -> f32 {
    if a == b {
        0.0
    } else if CONFUSABLE
        .iter()
        .any(|&(x, y)| (a == x && b == y) || (a == y && b == x))
    {
        CONFUSABLE_COST
    } else {
        1.0
    }
}

/// Levenshtein distance where insertions and deletions cost 1, substitutions
/// 1, and substitutions within a confusable pair [`CONFUSABLE_COST`].
pub fn distance(a: &[char], b: &[char]) -> f32 {
    // One row of the classic dynamic programme at a time.
    let mut previous: Vec<f32> = (0..=b.len()).map(|j| j as f32).collect();
    let mut current = vec![0.0f32; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = (i + 1) as f32;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + substitution_cost(ca, cb);
            let delete = previous[j + 1] + 1.0;
            let insert = current[j] + 1.0;
            current[j + 1] = substitute.min(delete).min(insert);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &str, b: &str) -> f32 {
        distance(
            &a.chars().collect::<Vec<_>>(),
            &b.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn confusable_substitutions_cost_less() {
        assert_eq!(d("ABC123", "ABC123"), 0.0);
        assert_eq!(d("AB0123", "ABO123"), 0.5);
        assert_eq!(d("1SZB", "I528"), 2.0);
        assert_eq!(d("ABC123", "ABX123"), 1.0);
        assert_eq!(d("ABC123", "ABC12"), 1.0);
        assert_eq!(d("", "AB"), 2.0);
        assert_eq!(d("AB", ""), 2.0);
        // Symmetric.
        assert_eq!(d("S0B", "5O8"), d("5O8", "S0B"));
    }

    #[test]
    fn normalise_keeps_confidences_aligned() {
        let text = normalise("ab-12", &[0.9, 0.8, 0.1, 0.7, 0.6], 0.5).expect("text left");
        assert_eq!(text.text(), "AB12");
        assert_eq!(text.confidences, vec![0.9, 0.8, 0.7, 0.6]);
        assert!(!text.repaired);
    }

    #[test]
    fn normalise_repairs_confidence_count() {
        let text = normalise("AB12", &[0.9], 0.75).expect("text left");
        assert!(text.repaired);
        assert_eq!(text.confidences, vec![0.75; 4]);
        let clamped = normalise("A", &[f32::NAN], 0.5).expect("text left");
        assert_eq!(clamped.confidences, vec![0.0]);
        assert_eq!(normalise(" -.", &[0.1, 0.1, 0.1], 0.5), None);
    }

    #[test]
    fn texts_are_fitted_to_formats_by_the_fewest_confusable_swaps() {
        let formats = [
            regex::Regex::new("^[A-Z]{3}[0-9]{3}$").expect("regex"),
            regex::Regex::new("^[0-9][A-Z]{3}[0-9]{3}$").expect("regex"),
        ];
        assert_eq!(
            fit_to_formats("ABC1O3", &formats).as_deref(),
            Some("ABC103")
        );
        assert_eq!(
            fit_to_formats("A8C123", &formats).as_deref(),
            Some("ABC123")
        );
        assert_eq!(
            fit_to_formats("7ABCI2S", &formats).as_deref(),
            Some("7ABC125")
        );
        // Already fitting needs no swap and is left to the caller; texts
        // without confusables or that no swap can fit give nothing.
        assert_eq!(fit_to_formats("ABC123", &formats), None);
        assert_eq!(fit_to_formats("XYZ", &formats), None);
        assert_eq!(fit_to_formats("AB12345", &formats), None);
        // Too many confusables to try every variant.
        assert_eq!(fit_to_formats("OOOOOOOOOOO", &formats), None);
    }
}
