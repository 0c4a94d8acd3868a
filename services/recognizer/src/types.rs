//! The recognizer's plain data types: what goes into reading an image and
//! what comes out. Everything else (models, pipeline, service, benchmark)
//! is built around these.

use std::path::PathBuf;
use std::time::Duration;

/// Where the models are and how to run them.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Folder filled by `scripts/fetch-models`. Default `models`.
    pub models_dir: PathBuf,
    /// ONNX Runtime library; default `<models_dir>/lib/libonnxruntime.so`,
    /// or `ORT_DYLIB_PATH` when that is set.
    pub ort_library: Option<PathBuf>,
    /// Intra-op threads per model session. Default 2.
    pub threads: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            models_dir: PathBuf::from("models"),
            ort_library: None,
            threads: 2,
        }
    }
}

/// An axis-aligned rectangle in pixels of the image it refers to.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// Which recogniser reads the text boxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reader {
    /// The two general PP-OCRv4 recognisers, the more confident read wins.
    PpOcr,
    /// The project's own plate recogniser (`plate_ocr.onnx`) alone.
    Plate,
    /// All three, character by character: per position, the character
    /// with the most confidence summed over the reads of the winning length.
    /// The default: the most exact reads on both benchmark sets
    /// (docs/benchmarks.md).
    #[default]
    Combined,
}

/// How one image is read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Longest side the detector sees; larger images are scaled down (the
    /// first lever on speed). Default 960.
    pub detector_max_side: u32,
    /// Regions ignored (e.g. the camera's own timestamp overlay), in
    /// fractions of the image's width and height, as cameras are configured
    /// (`Camera.mask_regions`): text whose box lies more than half inside
    /// one is not read. Default none.
    pub masks: Vec<Rect>,
    /// Attach a small JPEG of each plate. Default true.
    pub crop_jpeg: bool,
    /// Plates read with a confidence below this are not reported. Default 0.5.
    pub min_confidence: f32,
    /// Images with more pixels are refused. Default 40 megapixels.
    pub max_pixels: u64,
    /// Read every letter O as the digit 0. US plates: most states leave the
    /// letter O out of their serials (it cannot be told from 0), and the
    /// recognisers' main error is reading 0 as O. In the `combined` vote the
    /// plate model also decides between O and 0 (see `pipeline::vote`).
    /// Default true; turn it off for regions whose plates use O.
    pub letter_o_as_zero: bool,
    /// Which recogniser reads the text boxes. Default [`Reader::Combined`].
    pub reader: Reader,
    /// Ask PP-OCR's orientation classifier whether each text box is upside
    /// down, and turn those it finds so before reading. For cameras that
    /// show plates upside down; off by default (see `DEFAULT_UPSIDE_DOWN_TEXT`).
    pub upside_down_text: bool,
}

/// Plate cameras are mounted upright: on the 751 real upright plate crops
/// of plate-crops-us the classifier called 73 upside down, and turning them
/// cost the plate recogniser 32 reads.
pub const DEFAULT_UPSIDE_DOWN_TEXT: bool = false;

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            detector_max_side: 960,
            masks: Vec::new(),
            crop_jpeg: true,
            min_confidence: 0.5,
            max_pixels: 40_000_000,
            letter_o_as_zero: true,
            reader: Reader::default(),
            upside_down_text: DEFAULT_UPSIDE_DOWN_TEXT,
        }
    }
}

/// One plate found and read in an image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlateResult {
    /// Upper-case A-Z and 0-9 only.
    pub text: String,
    /// What the recogniser produced, before normalisation.
    pub raw_text: String,
    /// One per character of `text`, in [0, 1].
    pub char_confidences: Vec<f32>,
    /// Overall confidence in [0, 1].
    pub confidence: f32,
    /// The plate's box in the image.
    pub bbox: Rect,
    /// Corners of the (possibly rotated) plate region, clockwise from top-left.
    pub quad: [(f32, f32); 4],
    /// Other readings, best first, not including `text`.
    pub candidates: Vec<(String, f32)>,
    /// Small JPEG of the plate when `ReadOptions::crop_jpeg`.
    #[serde(skip)]
    pub crop_jpeg: Option<Vec<u8>>,
}

/// Time spent per stage of reading one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub decode: Duration,
    pub detect: Duration,
    pub recognize: Duration,
    pub total: Duration,
}

/// Everything read in one image, best plate first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageReads {
    pub width: u32,
    pub height: u32,
    pub plates: Vec<PlateResult>,
    pub timings: Timings,
}

/// Why an image could not be read. The service reports these per frame and
/// goes on; none of them stops it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a decodable image: {0}")]
    Decode(String),
    #[error("the image is empty ({width}x{height})")]
    Empty { width: u32, height: u32 },
    #[error("the image is too large ({width}x{height}, at most {max_pixels} pixels)")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// Why the models could not be loaded: always names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model file {path} is missing; run scripts/fetch-models")]
    Missing { path: PathBuf },
    #[error("loading ONNX Runtime from {path}: {message}; run scripts/fetch-models or set ORT_DYLIB_PATH")]
    Runtime { path: PathBuf, message: String },
    #[error("loading model {path}: {message}; run scripts/fetch-models to restore it")]
    Model { path: PathBuf, message: String },
}
