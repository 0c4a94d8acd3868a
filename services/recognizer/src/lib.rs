//! Recognizer: finds licence plates in camera frames and reads them, with
//! PP-OCRv4 text detection (DBNet) and recognition (CTC) models on ONNX
//! Runtime, fully offline (`scripts/fetch-models`).
//!
//! [`types`] holds the plain data; [`models`] loads the runtime and models;
//! [`detect`], [`geometry`], [`recognize`] and [`plate`] are the stages that
//! [`pipeline::Recognizer`] runs; [`service`] is the NATS side; [`bench`] is
//! the accuracy and speed benchmark.

pub mod bench;
pub mod detect;
pub mod geometry;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod plate;
pub mod plate_ocr;
pub mod recognize;
pub mod service;
pub mod types;

pub use pipeline::Recognizer;
pub use types::*;
