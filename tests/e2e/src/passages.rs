//! Synthetic plate passages: the `FrameReads` a recognizer would publish while
//! a car drives through a camera's view. Used by the benchmark, the demo and
//! the end-to-end tests until ingest and recognizer publish real ones.
//!
//! Reads are noisy the way OCR is: most characters are right with high
//! confidence, and now and then one is swapped for a look-alike (O/0, B/8…)
//! with a lower confidence, so the analytic's voting has work to do. A seed
//! makes every sequence repeatable.

use std::time::{Duration, SystemTime};

use anpr_common::proto::{BoundingBox, FrameReads, FrameRef, PlateRead};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Look-alike pairs an OCR confuses; a misread swaps within a pair.
const CONFUSABLE: [(char, char); 6] = [
    ('O', '0'),
    ('I', '1'),
    ('B', '8'),
    ('S', '5'),
    ('Z', '2'),
    ('D', '0'),
];

/// One camera's frame counter, clock position and noise source.
pub struct SyntheticCamera {
    pub camera_id: String,
    pub camera_ip: String,
    sequence: u64,
    rng: StdRng,
    /// Probability that one read of a passage has one misread character.
    pub misread_rate: f64,
}

impl SyntheticCamera {
    pub fn new(camera_id: impl Into<String>, camera_ip: impl Into<String>, seed: u64) -> Self {
        SyntheticCamera {
            camera_id: camera_id.into(),
            camera_ip: camera_ip.into(),
            sequence: 0,
            rng: StdRng::seed_from_u64(seed),
            misread_rate: 0.2,
        }
    }

    /// `frames` frames, `interval` apart from `start`, each with one read of
    /// `plate` (upper-case A-Z 0-9) moving across a 1920x1080 picture.
    pub fn passage(
        &mut self,
        plate: &str,
        frames: u32,
        start: SystemTime,
        interval: Duration,
    ) -> Vec<FrameReads> {
        (0..frames)
            .map(|i| {
                let at = start + interval * i;
                let x = 200.0 + 60.0 * i as f32;
                let read = self.read(plate, at, x);
                self.frame(at, vec![read])
            })
            .collect()
    }

    /// A frame in which nothing was recognised.
    pub fn empty_frame(&mut self, at: SystemTime) -> FrameReads {
        self.frame(at, Vec::new())
    }

    fn frame(&mut self, at: SystemTime, reads: Vec<PlateRead>) -> FrameReads {
        let frame = FrameRef {
            camera_id: self.camera_id.clone(),
            sequence: self.sequence,
        };
        self.sequence += 1;
        let reads = reads
            .into_iter()
            .map(|mut read| {
                read.frame = Some(frame.clone());
                read
            })
            .collect();
        FrameReads {
            frame: Some(frame),
            capture_time: Some(at.into()),
            camera_ip: self.camera_ip.clone(),
            width: 1920,
            height: 1080,
            reads,
        }
    }

    fn read(&mut self, plate: &str, at: SystemTime, x: f32) -> PlateRead {
        let mut text: Vec<char> = plate.chars().collect();
        let mut confidences: Vec<f32> = text
            .iter()
            .map(|_| self.rng.random_range(0.88..0.99))
            .collect();
        if !text.is_empty() && self.rng.random_bool(self.misread_rate) {
            let at_char = self.rng.random_range(0..text.len());
            if let Some(swap) = look_alike(text[at_char]) {
                text[at_char] = swap;
                confidences[at_char] = self.rng.random_range(0.45..0.7);
            }
        }
        let text: String = text.into_iter().collect();
        let confidence = confidences.iter().copied().fold(1.0_f32, f32::min);
        PlateRead {
            camera_id: self.camera_id.clone(),
            frame: None,
            capture_time: Some(at.into()),
            raw_text: text.clone(),
            text,
            char_confidences: confidences,
            confidence,
            bbox: Some(BoundingBox {
                x,
                y: 700.0,
                width: 180.0,
                height: 45.0,
            }),
            crop_jpeg: None,
        }
    }
}

fn look_alike(c: char) -> Option<char> {
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

/// `count` distinct plausible plates (three letters, four digits), repeatable
/// for a seed.
pub fn plates(count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<String> = Vec::with_capacity(count);
    while out.len() < count {
        let letters: String = (0..3)
            .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
            .collect();
        let plate = format!("{letters}{:04}", rng.random_range(0..10_000u32));
        if !out.contains(&plate) {
            out.push(plate);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passage_is_repeatable_and_mostly_right() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let make = || {
            SyntheticCamera::new("gate", "10.0.0.1", 7).passage(
                "ABC1234",
                40,
                start,
                Duration::from_millis(100),
            )
        };
        let frames = make();
        assert_eq!(frames, make());
        assert_eq!(frames.len(), 40);
        let right = frames
            .iter()
            .filter(|frame| frame.reads[0].text == "ABC1234")
            .count();
        assert!(right >= 20, "only {right} of 40 reads are right");
        for (i, frame) in frames.iter().enumerate() {
            let read = &frame.reads[0];
            assert_eq!(frame.frame.as_ref().map(|f| f.sequence), Some(i as u64));
            assert_eq!(read.char_confidences.len(), read.text.len());
            assert!(read.confidence > 0.0 && read.confidence < 1.0);
        }
    }

    #[test]
    fn plates_are_distinct() {
        let list = plates(500, 1);
        let mut sorted = list.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 500);
        assert!(list
            .iter()
            .all(|p| p.len() == 7 && p.chars().all(|c| c.is_ascii_alphanumeric())));
    }
}
