//! The project's own plate recogniser (`plate_ocr.onnx`, trained on
//! synthetic plates by `scripts/train-plate-ocr`): a small CRNN read out with
//! CTC over blank + 0-9 A-Z. Input 1 x 32 x 128 grayscale, `(x/255 - 0.5) /
//! 0.5`, the crop scaled to height 32 and width by its aspect ratio (at most
//! 128), padded on the right with the mean of its last column — as
//! `training/plate_ocr/synth.py::to_input` does for training.

use image::imageops::FilterType;
use image::{GrayImage, RgbImage};

use crate::models::{OnnxModel, TensorData};
use crate::recognize::{ctc_decode, CharTable, TextRead};

pub const PLATE_OCR_MODEL: &str = "plate_ocr.onnx";
pub const HEIGHT: u32 = 32;
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

/// The model input for one crop, row-major 32 x 128.
pub fn input(crop: &RgbImage) -> Vec<f32> {
    let gray: GrayImage = image::imageops::grayscale(crop);
    let (w, h) = gray.dimensions();
    let scaled_w = if h == 0 {
        1
    } else {
        ((w as f32 * HEIGHT as f32 / h as f32).round() as u32).clamp(1, WIDTH)
    };
    let resized = image::imageops::resize(&gray, scaled_w, HEIGHT, FilterType::Triangle);
    let last_column_mean = (0..HEIGHT)
        .map(|y| f32::from(resized.get_pixel(scaled_w - 1, y).0[0]))
        .sum::<f32>()
        / HEIGHT as f32;
    let pad = last_column_mean.trunc();
    let mut out = vec![pad / 127.5 - 1.0; (HEIGHT * WIDTH) as usize];
    for (x, y, px) in resized.enumerate_pixels() {
        out[(y * WIDTH + x) as usize] = f32::from(px.0[0]) / 127.5 - 1.0;
    }
    out
}

/// Reads every crop.
pub fn recognise(
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
    fn wide_crops_fill_the_input_and_narrow_ones_are_padded() {
        let wide = RgbImage::from_pixel(400, 50, image::Rgb([255, 255, 255]));
        let x = input(&wide);
        assert_eq!(x.len(), (HEIGHT * WIDTH) as usize);
        assert!(x.iter().all(|v| (*v - 1.0).abs() < 1e-6));
        let mut narrow = RgbImage::from_pixel(20, 40, image::Rgb([0, 0, 0]));
        narrow.put_pixel(19, 0, image::Rgb([0, 0, 0]));
        let x = input(&narrow);
        // 20 x 40 scales to 16 x 32; the rest is the last column's mean (black).
        assert!((x[(WIDTH - 1) as usize] + 1.0).abs() < 1e-6);
    }
}
