//! The committed plate recogniser (`services/recognizer/assets/plate_ocr.onnx`,
//! copied into `models/` by `scripts/fetch-models`) loads in ONNX Runtime and
//! reads plates it was not trained on: rendered here by another renderer
//! than the training generator, with fonts the training never used
//! (`HELD_OUT_FONTS` in training/plate_ocr/synth.py), in US and EU layouts.
//!
//! Needs `scripts/fetch-models` and the Debian packages fonts-roboto-unhinted
//! and fonts-open-sans (installed by `scripts/setup`).

use std::path::PathBuf;

use ab_glyph::{FontVec, PxScale};
use anpr_recognizer::{ModelConfig, ReadOptions, Reader, Recognizer};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_text_mut, text_size};

const HELD_OUT_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Black.ttf",
    "/usr/share/fonts/truetype/open-sans/OpenSans-ExtraBold.ttf",
];

/// Plates of several countries' formats, none of them in the training set
/// (which is random text from the generator's seeds).
const PLATES: [&str; 10] = [
    "8KQT417", "BXR2096", "53LM882", "HV7031", "ZT4482K", "GN628WD", "KP05XTR", "4417ZJM",
    "AB123CD", "WN9S347",
];

fn recognizer() -> Recognizer {
    let config = ModelConfig {
        models_dir: models_dir(),
        threads: 2,
        ..ModelConfig::default()
    };
    Recognizer::load_for(&config, Reader::Plate)
        .unwrap_or_else(|error| panic!("loading the plate recogniser: {error}"))
}

fn font(path: &str) -> FontVec {
    let bytes = std::fs::read(path).unwrap_or_else(|error| {
        panic!("font {path} cannot be read ({error}): run scripts/setup (fonts-roboto-unhinted, fonts-open-sans)")
    });
    FontVec::try_from_vec(bytes).unwrap_or_else(|error| panic!("font {path}: {error}"))
}

/// A plate cropped as the detector would: light background, dark border,
/// the text as large as fits; `eu` adds the blue band on the left.
fn plate(text: &str, font: &FontVec, eu: bool) -> RgbImage {
    let (width, height) = if eu { (300, 66) } else { (240, 120) };
    let mut img = RgbImage::from_pixel(width, height, Rgb([30, 30, 36]));
    draw_filled_rect_mut(
        &mut img,
        imageproc::rect::Rect::at(3, 3).of_size(width - 6, height - 6),
        Rgb([236, 236, 228]),
    );
    let left = if eu {
        draw_filled_rect_mut(
            &mut img,
            imageproc::rect::Rect::at(3, 3).of_size(28, height - 6),
            Rgb([24, 56, 170]),
        );
        36
    } else {
        10
    };
    let room_w = (width - left - 10) as f32;
    let room_h = height as f32 * if eu { 0.78 } else { 0.55 };
    let mut scale = room_h;
    let (w, _) = text_size(PxScale::from(scale), font, text);
    if w as f32 > room_w {
        scale *= room_w / w as f32;
    }
    let (w, h) = text_size(PxScale::from(scale), font, text);
    let x = left as i32 + ((room_w - w as f32) / 2.0) as i32;
    let y = ((height - h) / 2) as i32 - (scale * 0.12) as i32;
    draw_text_mut(
        &mut img,
        Rgb([16, 18, 30]),
        x,
        y,
        PxScale::from(scale),
        font,
        text,
    );
    img
}

#[test]
fn the_committed_model_reads_plates_in_fonts_it_never_saw() {
    let recognizer = recognizer();
    let options = ReadOptions {
        reader: Reader::Plate,
        letter_o_as_zero: false,
        ..ReadOptions::default()
    };
    let mut right = 0;
    let mut misses = Vec::new();
    let mut total = 0;
    for path in HELD_OUT_FONTS {
        let font = font(path);
        for (i, text) in PLATES.iter().enumerate() {
            let crop = plate(text, &font, i % 3 == 2);
            let (read, confidence, _) = recognizer
                .read_plate_crop(crop, &options)
                .unwrap_or_else(|error| panic!("reading {text}: {error}"));
            total += 1;
            if read == *text {
                right += 1;
            } else {
                misses.push(format!(
                    "{text} read as {read:?} ({confidence:.2}) in {path}"
                ));
            }
        }
    }
    assert!(
        right * 10 >= total * 9,
        "{right} of {total} read exactly; misses:\n{}",
        misses.join("\n")
    );
}

fn models_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
}

/// A models folder with every general model linked in, but no plate_ocr.onnx.
fn models_without_plate_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for entry in std::fs::read_dir(models_dir()).expect("models folder") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name != "plate_ocr.onnx" {
            let _ = std::os::unix::fs::symlink(entry.path(), dir.path().join(&name));
        }
    }
    dir
}

fn config_for(models_dir: &std::path::Path) -> ModelConfig {
    ModelConfig {
        models_dir: models_dir.to_path_buf(),
        ..ModelConfig::default()
    }
}

/// Why the plate reader does not start (empty when it does).
fn plate_reader_start_error(config: &ModelConfig) -> String {
    Recognizer::load_for(config, Reader::Plate)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn the_plate_reader_refuses_to_start_without_its_model() {
    let empty = models_without_plate_model();
    let config = config_for(empty.path());
    let error = plate_reader_start_error(&config);
    assert!(
        error.contains("plate_ocr.onnx") && error.contains("scripts/fetch-models"),
        "{error}"
    );
    assert!(Recognizer::load_for(&config, Reader::PpOcr).is_ok());
}

#[test]
fn a_plate_model_for_another_input_size_is_refused_at_start() {
    let dir = models_without_plate_model();
    let models = models_dir();
    // A real ONNX model whose input is [batch, 3, 48, width]: not the plate
    // recogniser's [batch, 1, 48, 128].
    std::os::unix::fs::symlink(
        models.join(anpr_recognizer::models::REC_EN_MODEL),
        dir.path().join("plate_ocr.onnx"),
    )
    .expect("link");
    let config = config_for(dir.path());
    let error = plate_reader_start_error(&config);
    assert!(
        error.contains("plate_ocr.onnx") && error.contains("input shape"),
        "{error}"
    );
}
