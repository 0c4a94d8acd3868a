//! Checks a `FrameReads` message from the bus and turns it into the plain
//! [`Frame`] the tracker works on. Anything wrong with a message is a
//! [`Malformed`] reason (counted, then the message is skipped); a single read
//! that is wrong is repaired or skipped without losing the rest of the frame.

use std::time::SystemTime;

use anpr_common::proto::{BoundingBox, FrameReads};
use prost::Message as _;

use crate::text::{clamp_confidence, normalise, NormalisedText};

/// Why a message on the reads subject was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("payload is not a FrameReads protobuf")]
    Decode,
    #[error("the subject has no camera token")]
    Subject,
    #[error("FrameReads has no frame reference")]
    MissingFrame,
    #[error("the camera in the payload is not the one in the subject")]
    CameraMismatch,
    #[error("FrameReads has no capture time")]
    MissingCaptureTime,
    #[error("the capture time is out of range")]
    BadCaptureTime,
}

impl Malformed {
    /// The `reason` label of the malformed-messages metric.
    pub fn label(self) -> &'static str {
        match self {
            Malformed::Decode => "decode",
            Malformed::Subject => "subject",
            Malformed::MissingFrame => "missing_frame",
            Malformed::CameraMismatch => "camera_mismatch",
            Malformed::MissingCaptureTime => "missing_capture_time",
            Malformed::BadCaptureTime => "bad_capture_time",
        }
    }
}

/// One usable read of a frame.
#[derive(Debug, Clone)]
pub struct Read {
    pub text: NormalisedText,
    /// Overall confidence in [0, 1].
    pub confidence: f32,
    pub bbox: Option<BoundingBox>,
    pub crop_jpeg: Option<Vec<u8>>,
}

/// One processed frame of one camera.
#[derive(Debug, Clone)]
pub struct Frame {
    pub camera_id: String,
    pub camera_ip: String,
    pub sequence: u64,
    pub capture_time: SystemTime,
    pub reads: Vec<Read>,
    /// Reads whose confidence count did not match their text (repaired).
    pub repaired_reads: u32,
    /// Reads with no usable text, or from another camera (skipped).
    pub skipped_reads: u32,
}

/// Decodes and checks the payload received on the reads subject of
/// `subject_camera`.
pub fn parse(subject_camera: &str, payload: &[u8]) -> Result<Frame, Malformed> {
    let message = FrameReads::decode(payload).map_err(|_| Malformed::Decode)?;
    let frame_ref = message.frame.as_ref().ok_or(Malformed::MissingFrame)?;
    if frame_ref.camera_id != subject_camera {
        return Err(Malformed::CameraMismatch);
    }
    let capture_time = message
        .capture_time
        .ok_or(Malformed::MissingCaptureTime)
        .and_then(|t| SystemTime::try_from(t).map_err(|_| Malformed::BadCaptureTime))?;
    let mut frame = Frame {
        camera_id: frame_ref.camera_id.clone(),
        camera_ip: message.camera_ip,
        sequence: frame_ref.sequence,
        capture_time,
        reads: Vec::with_capacity(message.reads.len()),
        repaired_reads: 0,
        skipped_reads: 0,
    };
    for read in message.reads {
        // A read that names another camera cannot be trusted to belong here.
        if !read.camera_id.is_empty() && read.camera_id != frame.camera_id {
            frame.skipped_reads += 1;
            continue;
        }
        let confidence = clamp_confidence(read.confidence);
        let Some(text) = normalise(&read.text, &read.char_confidences, confidence) else {
            frame.skipped_reads += 1;
            continue;
        };
        if text.repaired {
            frame.repaired_reads += 1;
        }
        frame.reads.push(Read {
            text,
            confidence,
            bbox: read.bbox,
            crop_jpeg: read.crop_jpeg,
        });
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::{FrameRef, PlateRead};

    fn frame_reads(camera: &str, reads: Vec<PlateRead>) -> FrameReads {
        FrameReads {
            frame: Some(FrameRef {
                camera_id: camera.into(),
                sequence: 7,
            }),
            capture_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            camera_ip: "10.0.0.9".into(),
            reads,
            ..FrameReads::default()
        }
    }

    #[test]
    fn bad_messages_have_reasons() {
        assert_eq!(
            parse("gate", b"\xff\xff\xff").err(),
            Some(Malformed::Decode)
        );
        let mut message = frame_reads("gate", vec![]);
        assert_eq!(
            parse("other", &message.encode_to_vec()).err(),
            Some(Malformed::CameraMismatch)
        );
        message.capture_time = None;
        assert_eq!(
            parse("gate", &message.encode_to_vec()).err(),
            Some(Malformed::MissingCaptureTime)
        );
        message.frame = None;
        assert_eq!(
            parse("gate", &message.encode_to_vec()).err(),
            Some(Malformed::MissingFrame)
        );
    }

    #[test]
    fn reads_are_repaired_or_skipped() {
        let message = frame_reads(
            "gate",
            vec![
                PlateRead {
                    text: "AB12".into(),
                    char_confidences: vec![0.9, 0.9],
                    confidence: 0.8,
                    ..PlateRead::default()
                },
                PlateRead {
                    text: "--".into(),
                    char_confidences: vec![0.9, 0.9],
                    confidence: 0.8,
                    ..PlateRead::default()
                },
                PlateRead {
                    camera_id: "elsewhere".into(),
                    text: "CD34".into(),
                    char_confidences: vec![0.9; 4],
                    confidence: 0.8,
                    ..PlateRead::default()
                },
            ],
        );
        let frame = parse("gate", &message.encode_to_vec()).expect("valid frame");
        assert_eq!(frame.reads.len(), 1);
        assert_eq!(frame.repaired_reads, 1);
        assert_eq!(frame.skipped_reads, 2);
        assert_eq!(frame.reads[0].text.confidences, vec![0.8; 4]);
        assert_eq!(frame.camera_ip, "10.0.0.9");
    }
}
