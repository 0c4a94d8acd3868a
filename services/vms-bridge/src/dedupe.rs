//! The record of (target, event id) pairs already delivered, in the KV
//! bucket `anpr_vms_delivered` (one day), so a redelivered event is acked
//! without a second post.
//!
//! The key is written after the VMS's 2xx and before the ack. One window
//! remains: a crash (or lost NATS connection) between the VMS's 2xx and the
//! KV put leaves no record, and the redelivered event is posted again. The
//! VMS API has no idempotency key, so this cannot be closed from our side;
//! it is as narrow as one KV round trip.

use async_nats::jetstream::kv::Store;

#[derive(Debug, thiserror::Error)]
#[error("delivered-events bucket: {0}")]
pub struct DedupeError(String);

#[derive(Clone)]
pub struct Delivered {
    kv: Store,
}

/// The bucket key of a pair. Event ids are UUIDs; anything a KV key cannot
/// hold is hex-encoded rather than refused.
pub fn key(target: &str, event_id: &str) -> String {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '='))
    };
    let id = if safe(event_id) {
        event_id.to_string()
    } else {
        format!("x{}", hex::encode(event_id.as_bytes()))
    };
    format!("{target}.{id}")
}

impl Delivered {
    pub fn new(kv: Store) -> Self {
        Delivered { kv }
    }

    pub async fn contains(&self, target: &str, event_id: &str) -> Result<bool, DedupeError> {
        self.kv
            .get(key(target, event_id))
            .await
            .map(|entry| entry.is_some())
            .map_err(|err| DedupeError(err.to_string()))
    }

    pub async fn mark(&self, target: &str, event_id: &str) -> Result<(), DedupeError> {
        self.kv
            .put(key(target, event_id), bytes::Bytes::from_static(b"1"))
            .await
            .map(|_| ())
            .map_err(|err| DedupeError(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_are_always_valid_kv_keys() {
        assert_eq!(
            key("nx1", "0b7c6a2e-1f0e-4a61-9d55-6a3f0c2b9e11"),
            "nx1.0b7c6a2e-1f0e-4a61-9d55-6a3f0c2b9e11"
        );
        assert_eq!(key("nx1", "a.b c"), "nx1.x612e622063");
        assert_eq!(key("nx1", ""), "nx1.x");
    }
}
