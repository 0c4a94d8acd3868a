//! From a message on the frames subject to the FrameReads that answers it:
//! parsing and checking the incoming frame, its age, and building the reply.
//! Plain functions, no I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anpr_common::proto::{BoundingBox, Camera, Frame, FrameReads, FrameRef, PlateRead};
use anpr_common::subjects;
use prost::Message as _;

use crate::metrics::read_error_kind;
use crate::types::{ImageReads, PlateResult, ReadError, ReadOptions, Rect};

/// A frame's identity and metadata, kept apart from its picture so the
/// picture can move to the blocking pool while these stay for the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub camera_id: String,
    pub sequence: u64,
    pub capture_time: Option<prost_types::Timestamp>,
    /// `capture_time` as a wall-clock time, when the frame had one.
    pub captured_at: Option<SystemTime>,
    pub camera_ip: String,
    pub width: u32,
    pub height: u32,
}

/// Why a message on the frames subject was skipped.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("subject {0:?} is not anpr.v1.frames.<camera>")]
    Subject(String),
    #[error("payload is not a Frame: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("frame of camera {frame:?} published on the subject of camera {subject:?}")]
    CameraMismatch { subject: String, frame: String },
    #[error("capture time out of range: {0}")]
    CaptureTime(String),
}

impl Malformed {
    /// The `reason` label of the malformed-frames counter.
    pub fn label(&self) -> &'static str {
        match self {
            Malformed::Subject(_) => "subject",
            Malformed::Protobuf(_) => "protobuf",
            Malformed::CameraMismatch { .. } => "camera_mismatch",
            Malformed::CaptureTime(_) => "capture_time",
        }
    }
}

/// How a frame of `camera` is read: the service's options plus the
/// camera's mask regions (both in fractions of the picture). A camera the
/// configuration does not (yet) know is read with the service's options.
pub fn options_for_camera(base: &Arc<ReadOptions>, camera: Option<&Camera>) -> Arc<ReadOptions> {
    match camera {
        Some(camera) if !camera.mask_regions.is_empty() => {
            let mut options = ReadOptions::clone(base);
            options
                .masks
                .extend(camera.mask_regions.iter().map(|region| Rect {
                    x: region.x,
                    y: region.y,
                    width: region.width,
                    height: region.height,
                }));
            Arc::new(options)
        }
        _ => base.clone(),
    }
}

/// Checks the subject and decodes the payload. The camera is the subject's
/// token (the reply goes to that camera's reads subject); a frame naming
/// another camera inside is refused rather than guessed at, and one naming
/// none takes the subject's.
pub fn parse(subject: &str, payload: &[u8]) -> Result<(FrameInfo, Vec<u8>), Malformed> {
    let camera = subjects::camera_of(subject)
        .filter(|camera| subjects::frames(camera) == subject)
        .filter(|camera| subjects::validate_token(camera).is_ok())
        .ok_or_else(|| Malformed::Subject(subject.to_string()))?;
    let frame = Frame::decode(payload)?;
    if !frame.camera_id.is_empty() && frame.camera_id != camera {
        return Err(Malformed::CameraMismatch {
            subject: camera.to_string(),
            frame: frame.camera_id,
        });
    }
    let captured_at = match &frame.capture_time {
        Some(timestamp) => Some(
            SystemTime::try_from(*timestamp)
                .map_err(|error| Malformed::CaptureTime(error.to_string()))?,
        ),
        None => None,
    };
    let info = FrameInfo {
        camera_id: camera.to_string(),
        sequence: frame.sequence,
        capture_time: frame.capture_time,
        captured_at,
        camera_ip: frame.camera_ip,
        width: frame.width,
        height: frame.height,
    };
    Ok((info, frame.jpeg))
}

/// How old a frame is at `now`: the longer of the time since capture and the
/// time it has waited here. A capture time in the future (clock skew between
/// hosts) counts as just captured.
pub fn age(captured_at: Option<SystemTime>, waited: Duration, now: SystemTime) -> Duration {
    let since_capture = captured_at
        .and_then(|captured| now.duration_since(captured).ok())
        .unwrap_or_default();
    since_capture.max(waited)
}

/// The `kind` label of the read-errors counter.
pub fn error_kind(error: &ReadError) -> &'static str {
    match error {
        ReadError::Decode(_) => read_error_kind::DECODE,
        ReadError::Empty { .. } => read_error_kind::EMPTY,
        ReadError::TooLarge { .. } => read_error_kind::TOO_LARGE,
        ReadError::Inference(_) => read_error_kind::INFERENCE,
    }
}

fn frame_ref(info: &FrameInfo) -> FrameRef {
    FrameRef {
        camera_id: info.camera_id.clone(),
        sequence: info.sequence,
    }
}

/// The reply for a frame whose picture could not be read: no reads, the
/// frame's own idea of its size.
pub fn unread(info: &FrameInfo) -> FrameReads {
    FrameReads {
        frame: Some(frame_ref(info)),
        capture_time: info.capture_time,
        camera_ip: info.camera_ip.clone(),
        width: info.width,
        height: info.height,
        reads: Vec::new(),
    }
}

/// The reply for a frame that was read: one PlateRead per plate, best first,
/// and the size of the picture as decoded.
pub fn read(info: &FrameInfo, reads: &ImageReads) -> FrameReads {
    FrameReads {
        width: reads.width,
        height: reads.height,
        reads: reads
            .plates
            .iter()
            .map(|plate| plate_read(info, plate))
            .collect(),
        ..unread(info)
    }
}

fn plate_read(info: &FrameInfo, plate: &PlateResult) -> PlateRead {
    PlateRead {
        camera_id: info.camera_id.clone(),
        frame: Some(frame_ref(info)),
        capture_time: info.capture_time,
        text: plate.text.clone(),
        char_confidences: plate.char_confidences.clone(),
        confidence: plate.confidence,
        bbox: Some(BoundingBox {
            x: plate.bbox.x,
            y: plate.bbox.y,
            width: plate.bbox.width,
            height: plate.bbox.height,
        }),
        crop_jpeg: plate.crop_jpeg.clone(),
        raw_text: plate.raw_text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Rect, Timings};

    fn frame(camera: &str) -> Frame {
        Frame {
            camera_id: camera.into(),
            sequence: 42,
            capture_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            width: 640,
            height: 480,
            jpeg: vec![0xff, 0xd8, 0xff],
            camera_ip: "192.0.2.7".into(),
        }
    }

    #[test]
    fn a_frame_is_parsed_with_the_subjects_camera() {
        let (info, jpeg) =
            parse("anpr.v1.frames.gate-1", &frame("gate-1").encode_to_vec()).expect("parses");
        assert_eq!(jpeg, vec![0xff, 0xd8, 0xff]);
        assert_eq!(info.camera_id, "gate-1");
        assert_eq!(info.sequence, 42);
        assert_eq!(info.camera_ip, "192.0.2.7");
        assert_eq!((info.width, info.height), (640, 480));
        assert_eq!(
            info.captured_at,
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );

        let (info, _) = parse("anpr.v1.frames.gate-2", &frame("").encode_to_vec())
            .expect("a frame without camera id takes the subject's");
        assert_eq!(info.camera_id, "gate-2");
    }

    #[test]
    fn a_cameras_masks_join_the_services_own() {
        use anpr_common::proto::MaskRegion;
        let service_mask = Rect {
            x: 0.0,
            y: 0.0,
            width: 1.0,
            height: 0.05,
        };
        let base = Arc::new(ReadOptions {
            masks: vec![service_mask],
            ..ReadOptions::default()
        });
        let unknown = options_for_camera(&base, None);
        assert!(Arc::ptr_eq(&unknown, &base));
        let plain = Camera {
            id: "yard".into(),
            ..Default::default()
        };
        assert!(Arc::ptr_eq(&options_for_camera(&base, Some(&plain)), &base));
        let masked = Camera {
            id: "gate".into(),
            mask_regions: vec![MaskRegion {
                x: 0.0,
                y: 0.9,
                width: 0.5,
                height: 0.1,
            }],
            ..Default::default()
        };
        let options = options_for_camera(&base, Some(&masked));
        assert_eq!(
            options.masks,
            vec![
                service_mask,
                Rect {
                    x: 0.0,
                    y: 0.9,
                    width: 0.5,
                    height: 0.1
                }
            ]
        );
        assert_eq!(options.detector_max_side, base.detector_max_side);
    }

    #[test]
    fn malformed_messages_are_named() {
        let payload = frame("gate-1").encode_to_vec();
        let reason = |subject: &str, payload: &[u8]| {
            parse(subject, payload).map(|_| ()).unwrap_err().label()
        };
        assert_eq!(reason("anpr.v1.frames", &payload), "subject");
        assert_eq!(reason("anpr.v1.frames.gate-1.extra", &payload), "subject");
        assert_eq!(reason("anpr.v1.reads.gate-1", &payload), "subject");
        assert_eq!(reason("anpr.v1.frames.gate-1", b"\xff\xff\xff"), "protobuf");
        assert_eq!(reason("anpr.v1.frames.gate-9", &payload), "camera_mismatch");
        let mut bad_time = frame("gate-1");
        bad_time.capture_time = Some(prost_types::Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        });
        assert_eq!(
            reason("anpr.v1.frames.gate-1", &bad_time.encode_to_vec()),
            "capture_time"
        );
    }

    #[test]
    fn age_is_the_longer_of_capture_age_and_queue_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ten_ago = now - Duration::from_secs(10);
        assert_eq!(
            age(Some(ten_ago), Duration::from_secs(1), now),
            Duration::from_secs(10)
        );
        assert_eq!(
            age(Some(now), Duration::from_secs(3), now),
            Duration::from_secs(3)
        );
        assert_eq!(
            age(None, Duration::from_millis(5), now),
            Duration::from_millis(5)
        );
        let future = now + Duration::from_secs(60);
        assert_eq!(age(Some(future), Duration::ZERO, now), Duration::ZERO);
    }

    #[test]
    fn the_reply_carries_the_frame_and_every_plate() {
        let (info, _) =
            parse("anpr.v1.frames.gate-1", &frame("gate-1").encode_to_vec()).expect("parses");
        let plate = PlateResult {
            text: "ABC1234".into(),
            raw_text: "ABC-1234".into(),
            char_confidences: vec![0.9; 7],
            confidence: 0.9,
            bbox: Rect {
                x: 10.0,
                y: 20.0,
                width: 100.0,
                height: 30.0,
            },
            quad: [(10.0, 20.0), (110.0, 20.0), (110.0, 50.0), (10.0, 50.0)],
            candidates: vec![("ABC1Z34".into(), 0.4)],
            crop_jpeg: Some(vec![1, 2, 3]),
        };
        let image = ImageReads {
            width: 641,
            height: 481,
            plates: vec![plate],
            timings: Timings::default(),
        };
        let reply = read(&info, &image);
        assert_eq!(
            reply.frame,
            Some(FrameRef {
                camera_id: "gate-1".into(),
                sequence: 42
            })
        );
        assert_eq!(reply.capture_time, info.capture_time);
        assert_eq!(reply.camera_ip, "192.0.2.7");
        assert_eq!((reply.width, reply.height), (641, 481));
        assert_eq!(reply.reads.len(), 1);
        let read = &reply.reads[0];
        assert_eq!(read.text, "ABC1234");
        assert_eq!(read.raw_text, "ABC-1234");
        assert_eq!(read.char_confidences, vec![0.9; 7]);
        assert_eq!(read.camera_id, "gate-1");
        assert_eq!(read.frame, reply.frame);
        assert_eq!(read.capture_time, info.capture_time);
        assert_eq!(read.crop_jpeg.as_deref(), Some(&[1u8, 2, 3][..]));
        let bbox = read.bbox.expect("bbox");
        assert_eq!(
            (bbox.x, bbox.y, bbox.width, bbox.height),
            (10.0, 20.0, 100.0, 30.0)
        );

        let empty = unread(&info);
        assert!(empty.reads.is_empty());
        assert_eq!((empty.width, empty.height), (640, 480));
        assert_eq!(empty.frame, reply.frame);
    }

    #[test]
    fn read_errors_have_one_label_per_kind() {
        assert_eq!(error_kind(&ReadError::Decode("x".into())), "decode");
        assert_eq!(
            error_kind(&ReadError::Empty {
                width: 0,
                height: 0
            }),
            "empty"
        );
        assert_eq!(
            error_kind(&ReadError::TooLarge {
                width: 1,
                height: 1,
                max_pixels: 0
            }),
            "too_large"
        );
        assert_eq!(error_kind(&ReadError::Inference("x".into())), "inference");
    }
}
