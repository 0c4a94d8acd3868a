//! From text reads to plates: normalisation, look-alike correction,
//! plate-likeness rules (dates, words, state names, length, shape, size,
//! position), two-row merging and ranking. Plain data in, plain data out.

use std::sync::OnceLock;

use regex::Regex;

use crate::geometry::{self, Point, Quad};
use crate::recognize::CharRead;
use crate::types::Rect;

/// Upper-case A-Z and 0-9 only.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let c = c.to_ascii_uppercase();
            (c.is_ascii_uppercase() || c.is_ascii_digit()).then_some(c)
        })
        .collect()
}

/// Letters the recognisers read where a digit was, with that digit: the
/// two that most US states leave out of their serials. Z, S and B were
/// swapped too until 2026-12-06: serials put them between digits
/// (`KC4Z3X`, `8S16841`), and keeping them raised the default reader from
/// 628 to 633 of the real crops and from 166 to 171 of the photos.
const LOOKALIKES: [(char, char); 2] = [('O', '0'), ('I', '1')];

fn digit_for(letter: char) -> Option<char> {
    LOOKALIKES
        .iter()
        .find(|(l, _)| *l == letter)
        .map(|(_, d)| *d)
}

/// Position-aware look-alike correction, kept general (no region's format
/// list): an `O` or `I` between two digits, or at either end of the text
/// next to a digit, becomes `0` or `1` (reading a 0 as O is the
/// recognisers' main error). The opposite swap
/// (digit between letters to letter) was measured and removed: US formats
/// such as `SK2W6K` put single digits between letters, and it turned 36
/// right reads on plates-us into wrong ones. A swap keeps the character's
/// probability: the shape was read right, only its class was ambiguous.
///
/// With `letter_o_as_zero` (regions whose plates never use the letter O,
/// see `ReadOptions::letter_o_as_zero`) every O of a read that also has a
/// digit becomes 0.
pub fn correct_lookalikes(chars: &[CharRead], letter_o_as_zero: bool) -> Vec<CharRead> {
    let mut out = chars.to_vec();
    swap_pass(&mut out);
    // Only in reads that have a digit already: a word in capitals (a
    // dealer's name, PROPERTY) must stay a word and keep losing to plates.
    let has_digit = out.iter().any(|c| c.ch.is_ascii_digit());
    if letter_o_as_zero && has_digit {
        for c in &mut out {
            if c.ch == 'O' {
                c.ch = '0';
            }
        }
    }
    out
}

/// Turns look-alike letters in digit context into digits.
fn swap_pass(chars: &mut [CharRead]) {
    let is_digit: Vec<Option<bool>> = chars
        .iter()
        .map(|c| {
            if c.ch.is_ascii_digit() {
                Some(true)
            } else if c.ch.is_ascii_uppercase() {
                Some(false)
            } else {
                None
            }
        })
        .collect();
    let n = chars.len();
    for i in 0..n {
        let c = chars[i].ch;
        let Some(replacement) = digit_for(c) else {
            continue;
        };
        let left = if i > 0 { is_digit[i - 1] } else { None };
        let right = if i + 1 < n { is_digit[i + 1] } else { None };
        let digit_context = match (left, right) {
            (Some(a), Some(b)) => a && b,
            (Some(a), None) => i + 1 == n && n > 1 && a,
            (None, Some(b)) => i == 0 && n > 1 && b,
            (None, None) => false,
        };
        if digit_context {
            chars[i].ch = replacement;
        }
    }
}

/// Dates and clock times, as cameras and signs print them (read from the
/// recogniser's unrestricted output, which keeps separators).
pub fn is_date_or_time(raw: &str) -> bool {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(r"\d{1,4}\s?[-/.]\s?\d{1,2}\s?[-/.]\s?\d{1,4}|\d{1,2}\s?:\s?\d{2}").ok()
    });
    pattern.as_ref().is_some_and(|p| p.is_match(raw))
}

/// Printed words (state names, slogans, dealer names) come out of the
/// unrestricted decoding in mixed or lower case; plates are upper case.
pub fn looks_like_word(raw: &str) -> bool {
    let lower = raw.chars().filter(|c| c.is_ascii_lowercase()).count();
    let upper = raw.chars().filter(|c| c.is_ascii_uppercase()).count();
    lower >= 3 && lower > upper
}

/// US state and territory names and words printed around plates: a read
/// that is exactly one of these is not a plate.
const PLATE_WORDS: &[&str] = &[
    "ALABAMA",
    "ALASKA",
    "ARIZONA",
    "ARKANSAS",
    "CALIFORNIA",
    "COLORADO",
    "CONNECTICUT",
    "DELAWARE",
    "FLORIDA",
    "GEORGIA",
    "HAWAII",
    "IDAHO",
    "ILLINOIS",
    "INDIANA",
    "IOWA",
    "KANSAS",
    "KENTUCKY",
    "LOUISIANA",
    "MAINE",
    "MARYLAND",
    "MASSACHUSETTS",
    "MICHIGAN",
    "MINNESOTA",
    "MISSISSIPPI",
    "MISSOURI",
    "MONTANA",
    "NEBRASKA",
    "NEVADA",
    "NEWHAMPSHIRE",
    "NEWJERSEY",
    "NEWMEXICO",
    "NEWYORK",
    "NORTHCAROLINA",
    "NORTHDAKOTA",
    "OHIO",
    "OKLAHOMA",
    "OREGON",
    "PENNSYLVANIA",
    "RHODEISLAND",
    "SOUTHCAROLINA",
    "SOUTHDAKOTA",
    "TENNESSEE",
    "TEXAS",
    "UTAH",
    "VERMONT",
    "VIRGINIA",
    "WASHINGTON",
    "WESTVIRGINIA",
    "WISCONSIN",
    "WYOMING",
    "DC",
    "PUERTORICO",
    "GUAM",
    "USA",
    "DMV",
    "ORG",
    "COM",
    "GOV",
    "NET",
    "WWW",
    "EXPLORE",
    "SUNSHINESTATE",
    "THELONESTARSTATE",
    "EMPIRESTATE",
    "GARDENSTATE",
    "GREATLAKES",
    "LANDOFLINCOLN",
    "TAXI",
];

pub fn is_plate_word(text: &str) -> bool {
    PLATE_WORDS.contains(&text)
}

/// How plate-like a text length is: 5 to 8 characters is the usual plate.
pub fn length_factor(len: usize) -> f32 {
    match len {
        0 | 1 => 0.0,
        2 => 0.15,
        3 => 0.35,
        4 => 0.7,
        5..=8 => 1.0,
        9 => 0.5,
        10 => 0.2,
        _ => 0.05,
    }
}

/// How plate-like a text box's shape is (width over height of the rotated
/// box): single text lines on plates are about 1.5 to 8 times as wide as
/// they are high.
pub fn aspect_factor(width: f32, height: f32) -> f32 {
    if height <= 0.0 {
        return 0.0;
    }
    let ratio = width / height;
    if (1.5..=8.0).contains(&ratio) {
        1.0
    } else if (0.8..=12.0).contains(&ratio) {
        0.6
    } else {
        0.2
    }
}

/// A text region read as a possible plate.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Characters after look-alike correction.
    pub chars: Vec<CharRead>,
    /// The recogniser's own output.
    pub raw: String,
    pub quad: Quad,
    /// Other readings of the same region (text, confidence).
    pub alternatives: Vec<(String, f32)>,
    /// Whether the region was built from two stacked rows.
    pub two_row: bool,
    /// Whether the region was built from two pieces of one line (plates
    /// whose character groups the detector split at a gap or emblem).
    pub joined: bool,
}

impl Candidate {
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }

    pub fn confidence(&self) -> f32 {
        if self.chars.is_empty() {
            return 0.0;
        }
        self.chars.iter().map(|c| c.prob).sum::<f32>() / self.chars.len() as f32
    }

    pub fn bbox(&self) -> Rect {
        geometry::quad_bounds(&self.quad)
    }

    /// Whether this can be a plate at all.
    pub fn admissible(&self) -> bool {
        let text = self.text();
        text.len() >= 2
            && !is_date_or_time(&self.raw)
            && !is_plate_word(&text)
            && !looks_like_word(&self.raw)
    }

    /// Plate-likeness in [0, 1]: confidence weighted by length, shape, size
    /// relative to the largest text in the image, and nearness to the
    /// centre (cameras are aimed at the lane).
    pub fn score(&self, image: (u32, u32), largest_height: f32) -> f32 {
        if !self.admissible() {
            return 0.0;
        }
        let (w, h) = geometry::quad_size(&self.quad);
        let aspect = if self.two_row {
            // Two rows make a squarer box; judge it as a plate, not a line.
            aspect_factor(w * 2.0, h)
        } else {
            aspect_factor(w, h)
        };
        let size = 0.6 + 0.4 * (h / largest_height.max(1.0)).min(1.0);
        let b = self.bbox();
        let (iw, ih) = (image.0.max(1) as f32, image.1.max(1) as f32);
        let dx = (b.x + b.width / 2.0) / iw - 0.5;
        let dy = (b.y + b.height / 2.0) / ih - 0.5;
        let centrality =
            1.0 - 0.3 * ((dx * dx + dy * dy).sqrt() / std::f32::consts::FRAC_1_SQRT_2).min(1.0);
        // Nearly every plate has a digit; signs, dealer frames and
        // slogans in capitals have none.
        let digits = if self.chars.iter().any(|c| c.ch.is_ascii_digit()) {
            1.0
        } else {
            0.5
        };
        self.confidence() * length_factor(self.chars.len()) * aspect * size * centrality * digits
    }
}

/// Two stacked rows of one plate (e.g. a small series above the number):
/// `upper` directly above `lower`, overlapping horizontally, of similar
/// width. Returns the merged candidate, rows read top to bottom.
pub fn merge_rows(upper: &Candidate, lower: &Candidate) -> Option<Candidate> {
    if upper.two_row || lower.two_row || upper.joined || lower.joined {
        return None;
    }
    if !upper.admissible() || !lower.admissible() {
        return None;
    }
    let a = upper.bbox();
    let b = lower.bbox();
    let overlap = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let narrower = a.width.min(b.width);
    if narrower <= 0.0 || overlap < 0.6 * narrower {
        return None;
    }
    let width_ratio = a.width / b.width.max(1e-3);
    if !(0.5..=2.0).contains(&width_ratio) {
        return None;
    }
    let height_ratio = a.height / b.height.max(1e-3);
    if !(0.4..=2.5).contains(&height_ratio) {
        return None;
    }
    let gap = b.y - (a.y + a.height);
    let a_centre = a.y + a.height / 2.0;
    if a_centre >= b.y || gap > 0.6 * a.height.min(b.height) {
        return None;
    }
    let mut chars = upper.chars.clone();
    chars.extend_from_slice(&lower.chars);
    let x0 = a.x.min(b.x);
    let x1 = (a.x + a.width).max(b.x + b.width);
    let y0 = a.y;
    let y1 = b.y + b.height;
    Some(Candidate {
        chars,
        raw: format!("{} {}", upper.raw, lower.raw),
        quad: [
            Point::new(x0, y0),
            Point::new(x1, y0),
            Point::new(x1, y1),
            Point::new(x0, y1),
        ],
        alternatives: Vec::new(),
        two_row: true,
        joined: false,
    })
}

/// Two pieces of one text line, `left` then `right`: about the same height,
/// on the same line, separated by at most about a character's width.
/// Returns the joined candidate.
pub fn join_line(left: &Candidate, right: &Candidate) -> Option<Candidate> {
    if left.two_row || right.two_row || left.joined || right.joined {
        return None;
    }
    if !left.admissible() || !right.admissible() {
        return None;
    }
    let a = left.bbox();
    let b = right.bbox();
    let height = a.height.min(b.height);
    if height <= 0.0 {
        return None;
    }
    let height_ratio = a.height / b.height.max(1e-3);
    if !(0.67..=1.5).contains(&height_ratio) {
        return None;
    }
    let v_overlap = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    if v_overlap < 0.6 * height {
        return None;
    }
    let gap = b.x - (a.x + a.width);
    let a_centre = a.x + a.width / 2.0;
    if a_centre >= b.x || gap > 1.2 * height || gap < -0.5 * height {
        return None;
    }
    let mut chars = left.chars.clone();
    chars.extend_from_slice(&right.chars);
    let (lq, rq) = (left.quad, right.quad);
    Some(Candidate {
        chars,
        raw: format!("{} {}", left.raw, right.raw),
        quad: [lq[0], rq[1], rq[2], lq[3]],
        alternatives: Vec::new(),
        two_row: false,
        joined: true,
    })
}

/// Candidates with their scores, best first, after adding two-row merges
/// and removing what a better candidate covers. `min_score` drops regions
/// that are too unlike a plate to report.
pub fn rank(
    candidates: Vec<Candidate>,
    image: (u32, u32),
    min_score: f32,
) -> Vec<(Candidate, f32)> {
    let mut all = candidates;
    let n = all.len();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                if let Some(merged) = merge_rows(&all[i], &all[j]) {
                    all.push(merged);
                }
                if let Some(joined) = join_line(&all[i], &all[j]) {
                    all.push(joined);
                }
            }
        }
    }
    let largest_height = all
        .iter()
        .filter(|c| c.admissible() && !c.two_row && !c.joined)
        .map(|c| geometry::quad_size(&c.quad).1)
        .fold(0.0f32, f32::max);
    let mut scored: Vec<(Candidate, f32)> = all
        .into_iter()
        .map(|c| {
            let s = c.score(image, largest_height);
            (c, s)
        })
        .filter(|(_, s)| *s > min_score)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Keep a candidate only if no better one already covers most of it: a
    // chosen two-row plate hides its rows, a chosen row hides merges with it.
    let mut kept: Vec<(Candidate, f32)> = Vec::new();
    for (c, s) in scored {
        let b = c.bbox();
        let covered = kept.iter().any(|(k, _)| {
            let kb = k.bbox();
            geometry::covered_fraction(&b, &kb) > 0.5 || geometry::covered_fraction(&kb, &b) > 0.5
        });
        if !covered {
            kept.push((c, s));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<CharRead> {
        text.chars()
            .map(|ch| CharRead {
                ch,
                prob: 0.9,
                best_letter: ('A', 0.0),
                best_digit: ('0', 0.0),
            })
            .collect()
    }

    fn candidate(text: &str, raw: &str, x: f32, y: f32, w: f32, h: f32) -> Candidate {
        Candidate {
            chars: chars(text),
            raw: raw.to_string(),
            quad: [
                Point::new(x, y),
                Point::new(x + w, y),
                Point::new(x + w, y + h),
                Point::new(x, y + h),
            ],
            alternatives: Vec::new(),
            two_row: false,
            joined: false,
        }
    }

    fn text_of(c: &[CharRead]) -> String {
        c.iter().map(|c| c.ch).collect()
    }

    #[test]
    fn normalise_keeps_upper_case_letters_and_digits() {
        assert_eq!(normalise("ab-12 3:Z"), "AB123Z");
        assert_eq!(normalise("·—"), "");
    }

    #[test]
    fn lookalikes_follow_their_neighbours() {
        assert_eq!(
            text_of(&correct_lookalikes(&chars("ABC1O34"), false)),
            "ABC1034"
        );
        // Single digits between letters are common on US plates: kept.
        assert_eq!(
            text_of(&correct_lookalikes(&chars("SK2W6K"), false)),
            "SK2W6K"
        );
        assert_eq!(text_of(&correct_lookalikes(&chars("AB1C"), false)), "AB1C");
        assert_eq!(
            text_of(&correct_lookalikes(&chars("MLOC2S"), false)),
            "MLOC2S"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("MLOC2S"), true)),
            "ML0C2S"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("PROPERTY"), true)),
            "PROPERTY"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("1234O"), false)),
            "12340"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("O1234"), false)),
            "01234"
        );
        // Ambiguous neighbours: left alone.
        assert_eq!(
            text_of(&correct_lookalikes(&chars("ABO1234"), false)),
            "ABO1234"
        );
        // Other letters stay letters, between digits or at an end: US
        // serials use them there.
        assert_eq!(
            text_of(&correct_lookalikes(&chars("1234S"), false)),
            "1234S"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("KC4Z3X"), false)),
            "KC4Z3X"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("8S16841"), false)),
            "8S16841"
        );
        assert_eq!(
            text_of(&correct_lookalikes(&chars("7ABC123"), false)),
            "7ABC123"
        );
    }

    #[test]
    fn dates_times_and_words_are_not_plates() {
        assert!(is_date_or_time("2023-05-01"));
        assert!(is_date_or_time("12:34:56"));
        assert!(is_date_or_time("05/01/23"));
        assert!(!is_date_or_time("7ABC123"));
        assert!(looks_like_word("California"));
        assert!(!looks_like_word("CALIFORNIA"));
        assert!(!looks_like_word("7abC123"));
        assert!(is_plate_word("TEXAS"));
        assert!(!candidate("TEXAS", "TEXAS", 0.0, 0.0, 50.0, 10.0).admissible());
        assert!(!candidate("20230501", "2023-05-01", 0.0, 0.0, 50.0, 10.0).admissible());
        assert!(candidate("7ABC123", "7ABC123", 0.0, 0.0, 50.0, 10.0).admissible());
    }

    #[test]
    fn length_and_shape_factors_prefer_plates() {
        assert!(length_factor(7) > length_factor(4));
        assert!(length_factor(4) > length_factor(10));
        assert_eq!(length_factor(1), 0.0);
        assert_eq!(aspect_factor(100.0, 25.0), 1.0);
        assert!(aspect_factor(100.0, 5.0) < aspect_factor(100.0, 25.0));
        assert_eq!(aspect_factor(10.0, 0.0), 0.0);
    }

    #[test]
    fn ranking_prefers_the_plate_over_other_text() {
        let plate = candidate("7ABC123", "7ABC123", 500.0, 300.0, 200.0, 50.0);
        let sign = candidate("AB", "AB", 100.0, 50.0, 60.0, 20.0);
        let date = candidate("20230501", "2023-05-01", 10.0, 10.0, 200.0, 30.0);
        let ranked = rank(vec![sign, date, plate], (1280, 720), 0.05);
        assert_eq!(ranked[0].0.text(), "7ABC123");
        assert!(ranked.iter().all(|(c, _)| c.text() != "20230501"));
    }

    #[test]
    fn stacked_rows_merge_into_one_plate() {
        let top = candidate("AB", "AB", 100.0, 100.0, 100.0, 30.0);
        let bottom = candidate("1234", "1234", 95.0, 135.0, 110.0, 35.0);
        let merged = merge_rows(&top, &bottom).unwrap();
        assert_eq!(merged.text(), "AB1234");
        assert!(merged.two_row);
        // Not the other way round, and not when far apart.
        assert!(merge_rows(&bottom, &top).is_none());
        let far = candidate("1234", "1234", 95.0, 300.0, 110.0, 35.0);
        assert!(merge_rows(&top, &far).is_none());
        let ranked = rank(vec![top, bottom], (400, 300), 0.05);
        assert_eq!(ranked[0].0.text(), "AB1234");
        assert_eq!(ranked.len(), 1);
    }

    #[test]
    fn split_line_pieces_join_into_one_plate() {
        let left = candidate("627", "627", 100.0, 100.0, 60.0, 30.0);
        let right = candidate("WWI", "WWI", 175.0, 102.0, 60.0, 29.0);
        let joined = join_line(&left, &right).unwrap();
        assert_eq!(joined.text(), "627WWI");
        assert!(join_line(&right, &left).is_none());
        let far = candidate("WWI", "WWI", 300.0, 100.0, 60.0, 30.0);
        assert!(join_line(&left, &far).is_none());
        let small = candidate("WWI", "WWI", 175.0, 100.0, 30.0, 12.0);
        assert!(join_line(&left, &small).is_none());
        let ranked = rank(vec![left, right], (400, 300), 0.05);
        assert_eq!(ranked[0].0.text(), "627WWI");
        assert_eq!(ranked.len(), 1);
    }

    #[test]
    fn words_without_digits_rank_below_plates() {
        let plate = candidate("ABC1234", "ABC1234", 150.0, 120.0, 100.0, 30.0);
        let frame = candidate("PRIVATE", "PRIVATE", 150.0, 160.0, 100.0, 30.0);
        let ranked = rank(vec![frame, plate], (400, 300), 0.05);
        assert_eq!(ranked[0].0.text(), "ABC1234");
    }

    #[test]
    fn a_state_name_above_a_plate_does_not_merge() {
        let state = candidate("TEXAS", "Texas", 110.0, 80.0, 80.0, 20.0);
        let plate = candidate("ABC1234", "ABC1234", 100.0, 105.0, 100.0, 35.0);
        assert!(merge_rows(&state, &plate).is_none());
        let ranked = rank(vec![state, plate], (400, 300), 0.05);
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].0.text(), "ABC1234");
    }
}
