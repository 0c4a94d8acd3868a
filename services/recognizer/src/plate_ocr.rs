//! The project's own plate recogniser (`plate_ocr.onnx`, trained on
//! synthetic plates by `scripts/train-plate-ocr`): a small CRNN read out with
//! CTC over blank + 0-9 A-Z. Input 1 x 48 x 128 grayscale, `(x/255 - 0.5) /
//! 0.5`, the crop stretched to fill it whatever its aspect ratio (a whole
//! two-line plate and a one-line text box alike) — as
//! `training/plate_ocr/synth.py::to_input` does for training. The model's
//! declared input must match, checked at load.

use image::imageops::FilterType;
use image::{GrayImage, Rgb, RgbImage};

use crate::models::{OnnxModel, TensorData};
use crate::recognize::{ctc_decode, CharTable, TextRead};

pub const PLATE_OCR_MODEL: &str = "plate_ocr.onnx";
pub const HEIGHT: u32 = 48;
pub const WIDTH: u32 = 128;
const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Crops read in one model call.
const BATCH: usize = 16;

/// Classes of the model: the CTC blank, then 0-9 A-Z.
pub fn classes() -> CharTable {
    CharTable::new(
        std::iter::once(None)
            .chain(ALPHABET.chars().map(Some))
            .collect(),
    )
}

/// Whether a model's declared input (batch, channels, height, width) is the
/// one [`input`] produces; a dynamic batch is fine.
pub fn accepts_input(shape: &[i64]) -> bool {
    matches!(shape, [_, 1, h, w] if *h == i64::from(HEIGHT) && *w == i64::from(WIDTH))
}

/// The model input for one crop, row-major `HEIGHT` x `WIDTH`.
pub fn input(crop: &RgbImage) -> Vec<f32> {
    // Grey as PIL's convert("L") makes it in training (ITU-R 601 weights,
    // not the Rec. 709 ones of `imageops::grayscale`): the other weights
    // cost the model 10 of the 751 real crops.
    let gray = GrayImage::from_fn(crop.width(), crop.height(), |x, y| {
        let [r, g, b] = crop.get_pixel(x, y).0;
        let luma = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
        image::Luma([luma as u8])
    });
    if gray.width() == 0 || gray.height() == 0 {
        return vec![0.0; (HEIGHT * WIDTH) as usize];
    }
    let resized = image::imageops::resize(&gray, WIDTH, HEIGHT, FilterType::Triangle);
    resized
        .pixels()
        .map(|px| f32::from(px.0[0]) / 127.5 - 1.0)
        .collect()
}

/// Reads every crop in several views (see [`views`]) and keeps, per crop,
/// the most confident read; the first view, the crop itself, wins ties.
pub fn recognise(
    model: &OnnxModel,
    table: &CharTable,
    crops: &[RgbImage],
) -> Result<Vec<TextRead>, String> {
    let mut all = Vec::with_capacity(crops.len() * VIEWS);
    for crop in crops {
        all.extend(views(crop));
    }
    let reads = recognise_each(model, table, &all)?;
    Ok(reads
        .chunks(VIEWS)
        .map(|views| {
            views
                .iter()
                .reduce(|best, next| {
                    if next.confidence() > best.confidence() {
                        next
                    } else {
                        best
                    }
                })
                .cloned()
                .unwrap_or(TextRead {
                    chars: Vec::new(),
                    raw: String::new(),
                })
        })
        .collect())
}

/// Views of one crop read by [`recognise`].
pub const VIEWS: usize = 4;

/// One crop as the model is read on it: as cut, its middle band (12 % off
/// the top and the bottom), narrowed (4 % off each side) and with a margin
/// in its corner colour (5 % at the sides, 8 % above and below). The model
/// was trained on tight and loose crops alike, but a given crop still reads
/// better at one of these framings than at another: the band drops a state
/// name or a frame's edge, the narrowing a sticker or a picture at an end,
/// the margin gives characters cut at the edge some room. Keeping the most
/// confident read of the four reads 5 to 7 points more of the real plate
/// crops than the crop alone (docs/benchmarks.md); it costs three more runs
/// of a model that takes 1.5 to 3 ms a crop on 2 cores.
pub fn views(crop: &RgbImage) -> [RgbImage; VIEWS] {
    let (w, h) = (crop.width(), crop.height());
    let cut = |x: u32, y: u32, cw: u32, ch: u32| {
        if cw == 0 || ch == 0 {
            crop.clone()
        } else {
            image::imageops::crop_imm(crop, x, y, cw, ch).to_image()
        }
    };
    let (band_y, band_h) = (h * 12 / 100, h - 2 * (h * 12 / 100));
    let (narrow_x, narrow_w) = (w * 4 / 100, w - 2 * (w * 4 / 100));
    let (pad_x, pad_y) = (w * 5 / 100, h * 8 / 100);
    let corner = crop
        .get_pixel_checked(0, 0)
        .copied()
        .unwrap_or(Rgb([0, 0, 0]));
    let mut padded = RgbImage::from_pixel(w + 2 * pad_x, h + 2 * pad_y, corner);
    image::imageops::replace(&mut padded, crop, i64::from(pad_x), i64::from(pad_y));
    [
        crop.clone(),
        cut(0, band_y, w, band_h),
        cut(narrow_x, 0, narrow_w, h),
        padded,
    ]
}

/// Reads every crop once, as it is.
fn recognise_each(
    model: &OnnxModel,
    table: &CharTable,
    crops: &[RgbImage],
) -> Result<Vec<TextRead>, String> {
    let per_item = (HEIGHT * WIDTH) as usize;
    let mut reads = Vec::with_capacity(crops.len());
    for batch in crops.chunks(BATCH) {
        let mut data = Vec::with_capacity(batch.len() * per_item);
        for crop in batch {
            data.extend(input(crop));
        }
        let out = model.run(TensorData {
            shape: vec![batch.len(), 1, HEIGHT as usize, WIDTH as usize],
            data,
        })?;
        let (n, steps, classes) = match out.shape.as_slice() {
            [n, t, c] => (*n, *t, *c),
            other => {
                return Err(format!(
                    "unexpected plate recogniser output shape {other:?}"
                ))
            }
        };
        if n != batch.len() || classes != table.len() || out.data.len() != n * steps * classes {
            return Err(format!(
                "plate recogniser output {:?} does not match {} crops and {} classes",
                out.shape,
                batch.len(),
                table.len()
            ));
        }
        // The model gives log-probabilities.
        let probs: Vec<f32> = out.data.iter().map(|v| v.exp()).collect();
        for k in 0..n {
            reads.push(ctc_decode(
                &probs[k * steps * classes..(k + 1) * steps * classes],
                steps,
                table,
            ));
        }
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_blank_and_36_plate_characters() {
        assert_eq!(classes().len(), 37);
    }

    #[test]
    fn every_crop_is_stretched_to_fill_the_input() {
        // A whole plate (2:1) with its left half black and right half white:
        // the boundary lands in the middle of the input, not at a quarter.
        let mut plate = RgbImage::from_pixel(200, 100, image::Rgb([255, 255, 255]));
        for y in 0..100 {
            for x in 0..100 {
                plate.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        let x = input(&plate);
        assert_eq!(x.len(), (HEIGHT * WIDTH) as usize);
        let row = (HEIGHT / 2 * WIDTH) as usize;
        assert!((x[row + (WIDTH / 2 - 2) as usize] + 1.0).abs() < 1e-6);
        assert!((x[row + (WIDTH / 2 + 1) as usize] - 1.0).abs() < 1e-6);
        assert!((x[row + (WIDTH - 1) as usize] - 1.0).abs() < 1e-6);
        // A long text line is squeezed into it.
        let line = RgbImage::from_pixel(600, 40, image::Rgb([255, 255, 255]));
        assert!(input(&line).iter().all(|v| (*v - 1.0).abs() < 1e-6));
        assert_eq!(input(&RgbImage::new(0, 0)).len(), (HEIGHT * WIDTH) as usize);
    }

    #[test]
    fn views_frame_the_crop_four_ways() {
        let crop = RgbImage::from_fn(100, 50, |x, y| Rgb([x as u8, y as u8, 7]));
        let [same, band, narrow, padded] = views(&crop);
        assert_eq!(same, crop);
        assert_eq!(band.dimensions(), (100, 38));
        assert_eq!(band.get_pixel(0, 0), &Rgb([0, 6, 7]));
        assert_eq!(narrow.dimensions(), (92, 50));
        assert_eq!(narrow.get_pixel(0, 0), &Rgb([4, 0, 7]));
        assert_eq!(padded.dimensions(), (110, 58));
        assert_eq!(padded.get_pixel(0, 0), &Rgb([0, 0, 7]));
        assert_eq!(padded.get_pixel(109, 57), &Rgb([0, 0, 7]));
        assert_eq!(padded.get_pixel(5 + 99, 4 + 49), &Rgb([99, 49, 7]));
        // Crops too small to cut stay whole; none is refused.
        for (w, h) in [(1, 1), (2, 3), (0, 0)] {
            let tiny = RgbImage::new(w, h);
            for view in views(&tiny) {
                assert!(view.width() >= w && view.height() >= h);
            }
        }
    }

    #[test]
    fn only_the_input_shape_it_was_trained_for_is_accepted() {
        assert!(accepts_input(&[-1, 1, 48, 128]));
        assert!(accepts_input(&[1, 1, 48, 128]));
        assert!(!accepts_input(&[-1, 1, 32, 128]));
        assert!(!accepts_input(&[-1, 3, 48, 128]));
        assert!(!accepts_input(&[1, 48, 128]));
    }
}
