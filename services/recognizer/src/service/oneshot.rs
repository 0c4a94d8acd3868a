//! One-shot mode, `anpr-recognizer image FILE...`: reads image files with
//! models loaded once and prints one JSON line per file, so scripts and
//! people can try the recognizer without NATS.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::pipeline::Recognizer;
use crate::types::{ImageReads, ReadOptions};

/// The JSON line of a file that was read:
/// `{"file", "width", "height", "plates": [{"plate", "confidence", "bbox",
/// "candidates"}], "timings_ms": {"decode", "detect", "recognize", "total"}}`.
pub fn read_line(file: &str, reads: &ImageReads) -> Value {
    let plates: Vec<Value> = reads
        .plates
        .iter()
        .map(|plate| {
            json!({
                "plate": plate.text,
                "confidence": plate.confidence,
                "bbox": {
                    "x": plate.bbox.x,
                    "y": plate.bbox.y,
                    "width": plate.bbox.width,
                    "height": plate.bbox.height,
                },
                "candidates": plate
                    .candidates
                    .iter()
                    .map(|(text, confidence)| json!({"text": text, "confidence": confidence}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    json!({
        "file": file,
        "width": reads.width,
        "height": reads.height,
        "plates": plates,
        "timings_ms": {
            "decode": ms(reads.timings.decode),
            "detect": ms(reads.timings.detect),
            "recognize": ms(reads.timings.recognize),
            "total": ms(reads.timings.total),
        },
    })
}

/// The JSON line of a file that could not be read: `{"file", "error"}`.
pub fn error_line(file: &str, error: &str) -> Value {
    json!({"file": file, "error": error})
}

/// Reads one file: its JSON line, and whether it was read.
pub fn read_file(recognizer: &Recognizer, path: &Path, options: &ReadOptions) -> (Value, bool) {
    let name = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            return (
                error_line(&name, &format!("reading the file: {error}")),
                false,
            )
        }
    };
    match recognizer.read_encoded(&bytes, options) {
        Ok(reads) => (read_line(&name, &reads), true),
        Err(error) => (error_line(&name, &error.to_string()), false),
    }
}

/// Reads every file in turn and writes its line to `out`; a file that
/// fails gets an error line and the others go on. Returns how many failed.
pub fn read_files<P: AsRef<Path>>(
    recognizer: &Recognizer,
    files: &[P],
    options: &ReadOptions,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let mut failed = 0;
    for file in files {
        let (line, ok) = read_file(recognizer, file.as_ref(), options);
        if !ok {
            failed += 1;
        }
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PlateResult, Rect, Timings};

    #[test]
    fn a_read_file_prints_plates_and_timings() {
        let reads = ImageReads {
            width: 1280,
            height: 720,
            plates: vec![PlateResult {
                text: "ABC1234".into(),
                raw_text: "ABC 1234".into(),
                char_confidences: vec![0.5; 7],
                confidence: 0.5,
                bbox: Rect {
                    x: 1.0,
                    y: 2.0,
                    width: 30.0,
                    height: 10.0,
                },
                quad: [(1.0, 2.0), (31.0, 2.0), (31.0, 12.0), (1.0, 12.0)],
                candidates: vec![("A8C1234".into(), 0.25)],
                crop_jpeg: None,
            }],
            timings: Timings {
                decode: Duration::from_millis(3),
                detect: Duration::from_millis(100),
                recognize: Duration::from_millis(20),
                total: Duration::from_millis(125),
            },
        };
        let line = read_line("car.jpg", &reads);
        assert_eq!(
            line,
            json!({
                "file": "car.jpg",
                "width": 1280,
                "height": 720,
                "plates": [{
                    "plate": "ABC1234",
                    "confidence": 0.5,
                    "bbox": {"x": 1.0, "y": 2.0, "width": 30.0, "height": 10.0},
                    "candidates": [{"text": "A8C1234", "confidence": 0.25}],
                }],
                "timings_ms": {"decode": 3.0, "detect": 100.0, "recognize": 20.0, "total": 125.0},
            })
        );
        // One line each: JSON lines.
        assert!(!line.to_string().contains('\n'));
    }

    #[test]
    fn a_failed_file_prints_its_error() {
        assert_eq!(
            error_line("x.jpg", "not a decodable image: bad"),
            json!({"file": "x.jpg", "error": "not a decodable image: bad"})
        );
    }
}
