//! The NATS subjects and JetStream names of the pipeline, in one place.
//! docs/subjects.md documents the same table for people.

use crate::proto::PlateEventKind;

/// Prefix of every subject; the version moves with the protobuf package.
pub const PREFIX: &str = "anpr.v1";

/// Leases on cameras held by `anpr-ingest` replicas (see `lease`): keys
/// `camera.<id>` (value: the holder) and `member.<instance>` (value: its
/// capacity). Entries expire after the bucket's max age unless renewed.
pub const INGEST_LEASE_BUCKET: &str = "anpr_ingest_leases";
/// Leases on cameras held by `anpr-analytic` replicas, as for ingest.
pub const ANALYTIC_LEASE_BUCKET: &str = "anpr_analytic_leases";
/// Stream that stores the public plate events.
pub const PLATE_STREAM: &str = "ANPR_PLATES";
/// Subjects captured by [`PLATE_STREAM`].
pub const PLATE_STREAM_SUBJECTS: &str = "anpr.v1.plates.>";
/// Stream that keeps plate events a VMS refused for good.
pub const DEAD_LETTER_STREAM: &str = "ANPR_DEADLETTER";
/// Subjects captured by [`DEAD_LETTER_STREAM`].
pub const DEAD_LETTER_SUBJECTS: &str = "anpr.v1.vms.deadletter.>";
/// Key-value bucket where the vms-bridge reports each target's status.
pub const VMS_STATUS_BUCKET: &str = "anpr_vms_status";
/// Key-value bucket where ingest reports each camera's status.
pub const CAMERA_STATUS_BUCKET: &str = "anpr_camera_status";
/// Key-value bucket of (target, event id) pairs already delivered, so a
/// redelivered event is never posted twice.
pub const VMS_DELIVERED_BUCKET: &str = "anpr_vms_delivered";
/// Key-value bucket holding VMS targets, cameras and analytic settings.
pub const CONFIG_BUCKET: &str = "anpr_config";
/// Key-value bucket holding passwords, apart so NATS permissions can guard it.
pub const SECRETS_BUCKET: &str = "anpr_secrets";

/// Frames of one camera, published by ingest.
pub fn frames(camera_id: &str) -> String {
    format!("{PREFIX}.frames.{camera_id}")
}

/// Frames of every camera (the recognizer's queue-group subscription).
pub const ALL_FRAMES: &str = "anpr.v1.frames.>";

/// Reads of one camera, published by the recognizer.
pub fn reads(camera_id: &str) -> String {
    format!("{PREFIX}.reads.{camera_id}")
}

/// Reads of every camera.
pub const ALL_READS: &str = "anpr.v1.reads.>";

/// Plate events of one camera and kind, published by the analytic.
///
/// Returns `None` for [`PlateEventKind::Unspecified`], which is never sent.
pub fn plates(camera_id: &str, kind: PlateEventKind) -> Option<String> {
    Some(format!(
        "{PREFIX}.plates.{camera_id}.{}",
        kind.subject_token()?
    ))
}

/// Plate events of one camera, every kind (`anpr.v1.plates.<camera>.*`).
pub fn camera_plates(camera_id: &str) -> String {
    format!("{PREFIX}.plates.{camera_id}.*")
}

/// Plate events of every camera and kind: the public topic.
pub const ALL_PLATES: &str = "anpr.v1.plates.>";

/// Dead letters of one VMS target (a [`crate::proto::DeadLetter`] each).
pub fn dead_letter(target: &str) -> String {
    format!("{PREFIX}.vms.deadletter.{target}")
}

/// Why a string cannot be a camera id or other subject token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters, got {len}")]
    TooLong { len: usize, max: usize },
    #[error("may contain only A-Z, a-z, 0-9, '_' and '-', found {found:?}")]
    BadCharacter { found: char },
}

/// Longest id accepted as a subject token.
pub const MAX_TOKEN_LEN: usize = 64;

/// Checks that `id` can be used as one subject token and as part of a KV key.
///
/// NATS tokens may not contain `.`, `*`, `>` or whitespace, and KV keys allow
/// only `[-/_=.a-zA-Z0-9]`; the intersection we accept is `[A-Za-z0-9_-]`.
pub fn validate_token(id: &str) -> Result<(), TokenError> {
    if id.is_empty() {
        return Err(TokenError::Empty);
    }
    let len = id.chars().count();
    if len > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong {
            len,
            max: MAX_TOKEN_LEN,
        });
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(found) => Err(TokenError::BadCharacter { found }),
        None => Ok(()),
    }
}

/// The camera token of a per-camera subject (`anpr.v1.<kind>.<camera>[...]`).
pub fn camera_of(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(PREFIX)?.strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let _kind = tokens.next()?;
    tokens.next().filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_have_one_token_per_camera() {
        assert_eq!(frames("gate-1"), "anpr.v1.frames.gate-1");
        assert_eq!(reads("gate-1"), "anpr.v1.reads.gate-1");
        assert_eq!(
            plates("gate-1", PlateEventKind::Lost).as_deref(),
            Some("anpr.v1.plates.gate-1.lost")
        );
        assert_eq!(plates("gate-1", PlateEventKind::Unspecified), None);
        assert_eq!(camera_of("anpr.v1.plates.gate-1.lost"), Some("gate-1"));
        assert_eq!(camera_of("anpr.v1.frames.cam_2"), Some("cam_2"));
        assert_eq!(camera_of("other.v1.frames.cam_2"), None);
        assert_eq!(camera_of("anpr.v1.frames"), None);
    }

    #[test]
    fn tokens_reject_what_nats_would_misread() {
        assert!(validate_token("Gate_1-north").is_ok());
        assert_eq!(validate_token(""), Err(TokenError::Empty));
        assert_eq!(
            validate_token("a.b"),
            Err(TokenError::BadCharacter { found: '.' })
        );
        assert_eq!(
            validate_token("a b"),
            Err(TokenError::BadCharacter { found: ' ' })
        );
        assert!(matches!(
            validate_token(&"x".repeat(65)),
            Err(TokenError::TooLong { len: 65, .. })
        ));
    }
}
