//! Text recognition with the PP-OCRv4 CTC recognisers and the text
//! orientation classifier: crops to batched input tensors, and the
//! recogniser's per-step probabilities to characters with confidences.

use image::imageops::FilterType;
use image::RgbImage;

use crate::models::{OnnxModel, TensorData};

/// The recognisers' input height.
pub const REC_HEIGHT: u32 = 48;
/// Crops wider than this (after scaling to the input height) are squeezed:
/// 16 times the height is far beyond any plate's aspect ratio.
pub const REC_MAX_WIDTH: u32 = REC_HEIGHT * 16;
/// Batches are padded to at least this width. The reference pads to 320;
/// a narrower minimum keeps short plate crops cheap. Measured on
/// plates-us: 96 lost 5 plates, 320 gained 1 for 20 % more time.
pub const REC_MIN_WIDTH: u32 = 160;
/// Crops recognised in one model call.
pub const REC_BATCH: usize = 8;
/// A batch holds crops up to this many times as wide as its narrowest.
const REC_BATCH_SPREAD: f32 = 1.3;
/// The orientation classifier's input size.
const CLS_HEIGHT: u32 = 48;
const CLS_WIDTH: u32 = 192;
/// A crop is turned over when the classifier is at least this sure it is
/// upside down (the reference setting).
pub const CLS_THRESHOLD: f32 = 0.9;

/// Which characters a recogniser's classes stand for, and which of them can
/// appear on a plate.
#[derive(Debug, Clone)]
pub struct CharTable {
    classes: Vec<Option<char>>,
    /// Plate characters (A-Z, 0-9) with their class numbers.
    plate: Vec<(usize, char)>,
}

impl CharTable {
    /// `classes[0]` is the CTC blank (`None`).
    pub fn new(classes: Vec<Option<char>>) -> CharTable {
        let plate = classes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit() => Some((i, *c)),
                _ => None,
            })
            .collect();
        CharTable { classes, plate }
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

/// One decoded character with what the recogniser thought of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharRead {
    pub ch: char,
    /// Highest probability of this character over its time steps.
    pub prob: f32,
    /// The most likely letter and digit at the step where `ch` peaked: what
    /// format-aware correction can swap to.
    pub best_letter: (char, f32),
    pub best_digit: (char, f32),
}

/// One crop's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRead {
    /// Characters from the argmax restricted to the CTC blank and A-Z, 0-9.
    pub chars: Vec<CharRead>,
    /// The unrestricted greedy decoding (any character the model knows).
    pub raw: String,
}

impl TextRead {
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }

    /// Mean character probability; 0 for an empty read.
    pub fn confidence(&self) -> f32 {
        if self.chars.is_empty() {
            return 0.0;
        }
        self.chars.iter().map(|c| c.prob).sum::<f32>() / self.chars.len() as f32
    }
}

/// Greedy CTC decoding of one sequence of `steps` x `classes` probabilities.
pub fn ctc_decode(probs: &[f32], steps: usize, table: &CharTable) -> TextRead {
    let n = table.len();
    let mut chars: Vec<CharRead> = Vec::new();
    let mut raw = String::new();
    let mut prev_restricted = 0usize;
    let mut prev_raw = 0usize;
    for t in 0..steps {
        let row = &probs[t * n..(t + 1) * n];
        // Unrestricted argmax, for the raw text.
        let raw_best = argmax(row.iter().copied().enumerate());
        if raw_best != 0 && raw_best != prev_raw {
            if let Some(Some(c)) = table.classes.get(raw_best) {
                if *c != '\u{FFFD}' {
                    raw.push(*c);
                }
            }
        }
        prev_raw = raw_best;
        // Restricted argmax: blank against the plate characters only.
        let mut best = (0usize, row[0]);
        let mut best_letter = ('?', 0.0f32);
        let mut best_digit = ('?', 0.0f32);
        for &(class, c) in &table.plate {
            let p = row[class];
            if p > best.1 {
                best = (class, p);
            }
            if c.is_ascii_digit() {
                if p > best_digit.1 {
                    best_digit = (c, p);
                }
            } else if p > best_letter.1 {
                best_letter = (c, p);
            }
        }
        let (class, p) = best;
        if class != 0 {
            let ch = table.classes[class].unwrap_or('?');
            if class != prev_restricted {
                chars.push(CharRead {
                    ch,
                    prob: p,
                    best_letter,
                    best_digit,
                });
            } else if let Some(last) = chars.last_mut() {
                if p > last.prob {
                    *last = CharRead {
                        ch,
                        prob: p,
                        best_letter,
                        best_digit,
                    };
                }
            }
        }
        prev_restricted = class;
    }
    TextRead { chars, raw }
}

fn argmax(values: impl Iterator<Item = (usize, f32)>) -> usize {
    let mut best = (0usize, f32::MIN);
    for (i, v) in values {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Width of a crop scaled to the recogniser's input height.
pub fn scaled_width(width: u32, height: u32) -> u32 {
    if height == 0 {
        return 1;
    }
    let w = (REC_HEIGHT as f32 * width as f32 / height as f32).ceil() as u32;
    w.clamp(1, REC_MAX_WIDTH)
}

/// Writes `image`, resized to `width` x `height`, into a CHW tensor slice of
/// row length `stride` as BGR with `(x/255 - 0.5) / 0.5`.
fn write_normalised(image: &RgbImage, width: u32, height: u32, stride: usize, out: &mut [f32]) {
    let resized;
    let source = if image.dimensions() == (width, height) {
        image
    } else {
        resized = image::imageops::resize(image, width, height, FilterType::Triangle);
        &resized
    };
    let plane = stride * height as usize;
    for (x, y, px) in source.enumerate_pixels() {
        let i = y as usize * stride + x as usize;
        for c in 0..3 {
            out[c * plane + i] = px.0[2 - c] as f32 / 127.5 - 1.0;
        }
    }
}

/// Reads every crop with one recogniser, in batches of similar widths.
pub fn recognise(
    model: &OnnxModel,
    table: &CharTable,
    crops: &[RgbImage],
) -> Result<Vec<TextRead>, String> {
    let mut order: Vec<usize> = (0..crops.len()).collect();
    let widths: Vec<u32> = crops
        .iter()
        .map(|c| scaled_width(c.width(), c.height()))
        .collect();
    // Similar widths together waste less padding: the model's time grows
    // with the padded width, so one long line must not widen every crop.
    order.sort_by_key(|&i| widths[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let padded = |j: usize| widths[j].max(REC_MIN_WIDTH) as f32;
        match batches.last_mut() {
            Some(batch)
                if batch.len() < REC_BATCH && padded(i) <= REC_BATCH_SPREAD * padded(batch[0]) =>
            {
                batch.push(i)
            }
            _ => batches.push(vec![i]),
        }
    }
    let mut reads: Vec<Option<TextRead>> = vec![None; crops.len()];
    for batch in &batches {
        let batch_width = batch
            .iter()
            .map(|&i| widths[i])
            .max()
            .unwrap_or(REC_MIN_WIDTH)
            .max(REC_MIN_WIDTH) as usize;
        let h = REC_HEIGHT as usize;
        let per_item = 3 * h * batch_width;
        // Zero is mid-grey after normalisation: the reference's padding.
        let mut data = vec![0.0f32; batch.len() * per_item];
        for (k, &i) in batch.iter().enumerate() {
            write_normalised(
                &crops[i],
                widths[i],
                REC_HEIGHT,
                batch_width,
                &mut data[k * per_item..(k + 1) * per_item],
            );
        }
        let out = model.run(TensorData {
            shape: vec![batch.len(), 3, h, batch_width],
            data,
        })?;
        let (n, steps, classes) = match out.shape.as_slice() {
            [n, t, c] => (*n, *t, *c),
            other => return Err(format!("unexpected recogniser output shape {other:?}")),
        };
        if n != batch.len() || classes != table.len() || out.data.len() != n * steps * classes {
            return Err(format!(
                "recogniser output {:?} does not match {} crops and {} classes",
                out.shape,
                batch.len(),
                table.len()
            ));
        }
        for (k, &i) in batch.iter().enumerate() {
            let seq = &out.data[k * steps * classes..(k + 1) * steps * classes];
            reads[i] = Some(ctc_decode(seq, steps, table));
        }
    }
    Ok(reads.into_iter().flatten().collect())
}

/// For each crop, the probability that it is upside down.
pub fn upside_down(model: &OnnxModel, crops: &[RgbImage]) -> Result<Vec<f32>, String> {
    if crops.is_empty() {
        return Ok(Vec::new());
    }
    let (h, w) = (CLS_HEIGHT as usize, CLS_WIDTH as usize);
    let per_item = 3 * h * w;
    let mut data = vec![0.0f32; crops.len() * per_item];
    for (k, crop) in crops.iter().enumerate() {
        let scaled = if crop.height() == 0 {
            1
        } else {
            ((CLS_HEIGHT as f32 * crop.width() as f32 / crop.height() as f32).ceil() as u32)
                .clamp(1, CLS_WIDTH)
        };
        write_normalised(
            crop,
            scaled,
            CLS_HEIGHT,
            w,
            &mut data[k * per_item..(k + 1) * per_item],
        );
    }
    let out = model.run(TensorData {
        shape: vec![crops.len(), 3, h, w],
        data,
    })?;
    match out.shape.as_slice() {
        [n, 2] if *n == crops.len() && out.data.len() == n * 2 => {
            Ok(out.data.chunks(2).map(|p| p[1]).collect())
        }
        other => Err(format!("unexpected orientation output shape {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blank, '-', 'A', 'B', '0', '1', 'a'.
    fn table() -> CharTable {
        CharTable::new(vec![
            None,
            Some('-'),
            Some('A'),
            Some('B'),
            Some('0'),
            Some('1'),
            Some('a'),
        ])
    }

    fn step(hot: usize, p: f32) -> Vec<f32> {
        let mut row = vec![(1.0 - p) / 6.0; 7];
        row[hot] = p;
        row
    }

    #[test]
    fn ctc_collapses_repeats_and_blanks() {
        let t = table();
        let seq: Vec<f32> = [
            step(2, 0.9),
            step(2, 0.95),
            step(0, 0.9),
            step(2, 0.8),
            step(4, 0.7),
            step(4, 0.6),
            step(0, 0.9),
        ]
        .concat();
        let read = ctc_decode(&seq, 7, &t);
        assert_eq!(read.text(), "AA0");
        assert_eq!(read.raw, "AA0");
        let probs: Vec<f32> = read.chars.iter().map(|c| c.prob).collect();
        assert_eq!(probs, vec![0.95, 0.8, 0.7]);
        assert!((read.confidence() - (0.95 + 0.8 + 0.7) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn ctc_restricts_to_plate_characters() {
        let t = table();
        // '-' wins the unrestricted argmax; the restricted one picks the
        // better of blank and the plate characters.
        let mut dash_over_b = vec![0.0; 7];
        dash_over_b[1] = 0.6;
        dash_over_b[3] = 0.3;
        dash_over_b[0] = 0.1;
        let mut lower = vec![0.0; 7];
        lower[6] = 0.7;
        lower[0] = 0.2;
        lower[5] = 0.1;
        let seq: Vec<f32> = [dash_over_b, lower].concat();
        let read = ctc_decode(&seq, 2, &t);
        assert_eq!(read.raw, "-a");
        assert_eq!(read.text(), "B");
        assert_eq!(read.chars[0].best_digit.1, 0.0);
        assert_eq!(read.chars[0].best_letter, ('B', 0.3));
    }

    #[test]
    fn ctc_of_only_blanks_is_empty() {
        let t = table();
        let seq: Vec<f32> = [step(0, 0.99), step(0, 0.99)].concat();
        let read = ctc_decode(&seq, 2, &t);
        assert!(read.chars.is_empty());
        assert_eq!(read.confidence(), 0.0);
    }

    #[test]
    fn crop_widths_follow_the_aspect_ratio() {
        assert_eq!(scaled_width(200, 50), 192);
        assert_eq!(scaled_width(10_000, 10), REC_MAX_WIDTH);
        assert_eq!(scaled_width(5, 0), 1);
    }
}
