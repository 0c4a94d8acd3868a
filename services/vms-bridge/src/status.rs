//! A target's `VmsTargetStatus`, kept in memory by its worker and written to
//! the `anpr_vms_status` bucket (key: target name) whenever the
//! success/error state changes, and at least every few seconds while the
//! target runs (queue depth and counters move on their own).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anpr_common::prost_types::Timestamp;
use anpr_common::proto::VmsTargetStatus;
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream::Stream;
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::consumer;

#[derive(Default)]
struct Inner {
    status: VmsTargetStatus,
    problems: BTreeMap<String, String>,
}

/// The live status of one target, shared by its worker and its publisher.
#[derive(Default)]
pub struct StatusBoard {
    inner: Mutex<Inner>,
    changed: Notify,
}

fn now() -> Option<Timestamp> {
    Some(Timestamp::from(SystemTime::now()))
}

impl StatusBoard {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the plain data
        // inconsistent in a way that matters for a status report.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An event was delivered.
    pub fn success(&self) {
        let mut inner = self.lock();
        let was_failing =
            !inner.status.last_error.is_empty() || inner.status.last_success.is_none();
        inner.status.last_success = now();
        inner.status.last_error.clear();
        inner.status.delivered += 1;
        drop(inner);
        if was_failing {
            self.changed.notify_one();
        }
    }

    /// A delivery or login failed. `message` must hold no secret.
    pub fn error(&self, message: &str) {
        let mut inner = self.lock();
        let changed = inner.status.last_error != message;
        inner.status.last_error_at = now();
        inner.status.last_error = message.to_string();
        drop(inner);
        if changed {
            self.changed.notify_one();
        }
    }

    /// An event was dead-lettered.
    pub fn dead_lettered(&self, reason: &str) {
        self.lock().status.dead_lettered += 1;
        self.error(&format!(
            "event refused for good and dead-lettered: {reason}"
        ));
    }

    pub fn set_server(&self, server: &str) {
        let mut inner = self.lock();
        if inner.status.server != server {
            inner.status.server = server.to_string();
            drop(inner);
            self.changed.notify_one();
        }
    }

    /// Records the mapping problem of a camera (or its absence). Returns
    /// true when it is new or different, so the caller logs it once.
    pub fn camera_problem(&self, camera_id: &str, problem: Option<&str>) -> bool {
        let mut inner = self.lock();
        let changed = match problem {
            Some(text) => {
                inner
                    .problems
                    .insert(camera_id.to_string(), text.to_string())
                    .as_deref()
                    != Some(text)
            }
            None => inner.problems.remove(camera_id).is_some(),
        };
        if changed {
            let lines = inner.problems.values().cloned().collect();
            inner.status.camera_problems = lines;
            drop(inner);
            self.changed.notify_one();
        }
        changed
    }

    pub fn snapshot(&self) -> VmsTargetStatus {
        self.lock().status.clone()
    }

    fn set_queue_depth(&self, depth: u64) {
        self.lock().status.queue_depth = depth;
    }
}

/// Writes the board to the status bucket on every change and every
/// `interval`, until `shutdown`.
pub async fn publish_loop(
    board: Arc<StatusBoard>,
    kv: Store,
    stream: Stream,
    target: String,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Some(depth) = consumer::queue_depth(&stream, &target).await {
            board.set_queue_depth(depth);
        }
        let mut status = board.snapshot();
        status.updated_at = now();
        if let Err(err) = kv.put(&target, status.encode_to_vec().into()).await {
            tracing::debug!(target_name = %target, error = %err, "writing target status failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = board.changed.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_tracks_success_errors_and_problems() {
        let board = StatusBoard::default();
        board.error("wrong password for user anpr");
        assert_eq!(board.snapshot().last_error, "wrong password for user anpr");
        assert!(board.snapshot().last_error_at.is_some());
        board.success();
        let status = board.snapshot();
        assert_eq!(status.delivered, 1);
        assert!(status.last_error.is_empty());
        assert!(board.camera_problem("gate", Some("gate: no VMS camera has IP 10.0.0.9")));
        assert!(!board.camera_problem("gate", Some("gate: no VMS camera has IP 10.0.0.9")));
        assert_eq!(
            board.snapshot().camera_problems,
            ["gate: no VMS camera has IP 10.0.0.9"]
        );
        assert!(board.camera_problem("gate", None));
        assert!(board.snapshot().camera_problems.is_empty());
        board.dead_lettered("HTTP 400");
        assert_eq!(board.snapshot().dead_lettered, 1);
        assert!(board.snapshot().last_error.contains("HTTP 400"));
    }
}
