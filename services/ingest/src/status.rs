//! A camera's `CameraStatus`, kept by its worker and written to the
//! `anpr_camera_status` bucket (key: camera id) every couple of seconds and
//! at once when the connection state or the error changes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anpr_common::prost_types::Timestamp;
use anpr_common::proto::CameraStatus;
use async_nats::jetstream::kv::{Store, UpdateErrorKind};
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the status is written while nothing changes.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

fn timestamp(time: SystemTime) -> Option<Timestamp> {
    Some(Timestamp::from(time))
}

struct Inner {
    status: CameraStatus,
    decoded_since: u64,
    published_since: u64,
    since: Instant,
}

/// The live status of one camera's worker.
pub struct StatusBoard {
    inner: Mutex<Inner>,
    changed: Notify,
}

impl StatusBoard {
    pub fn new(instance: &str) -> Self {
        StatusBoard {
            inner: Mutex::new(Inner {
                status: CameraStatus {
                    ingest_instance: instance.to_string(),
                    ..Default::default()
                },
                decoded_since: 0,
                published_since: 0,
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain counters: a panic elsewhere cannot leave them unusable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Frames arrive (true) or the connection is gone (false). A working
    /// connection clears the last error.
    pub fn set_connected(&self, connected: bool) {
        let mut inner = self.lock();
        let changed = inner.status.connected != connected
            || (connected && !inner.status.last_error.is_empty());
        inner.status.connected = connected;
        if connected {
            inner.status.last_error.clear();
        }
        drop(inner);
        if changed {
            self.changed.notify_one();
        }
    }

    /// A connection or stream failure. `message` must hold no credential.
    pub fn error(&self, message: &str) {
        let mut inner = self.lock();
        let changed = inner.status.last_error != message || inner.status.connected;
        inner.status.connected = false;
        inner.status.last_error = message.to_string();
        inner.status.last_error_at = timestamp(SystemTime::now());
        drop(inner);
        if changed {
            self.changed.notify_one();
        }
    }

    pub fn decoded(&self) {
        self.lock().decoded_since += 1;
    }

    pub fn published(&self, at: SystemTime) {
        let mut inner = self.lock();
        inner.published_since += 1;
        inner.status.last_frame_at = timestamp(at);
    }

    pub fn dropped(&self) {
        self.lock().status.dropped_frames += 1;
    }

    pub fn reconnect(&self) {
        self.lock().status.reconnects += 1;
    }

    /// Codec and size, e.g. "h264 1280x720".
    pub fn set_stream(&self, stream: &str) {
        let mut inner = self.lock();
        if inner.status.stream != stream {
            inner.status.stream = stream.to_string();
            drop(inner);
            self.changed.notify_one();
        }
    }

    /// The status as of now, with rates over the time since the last report
    /// (which starts a new interval).
    pub fn report(&self) -> CameraStatus {
        let mut inner = self.lock();
        let elapsed = inner.since.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            inner.status.decoded_fps = (inner.decoded_since as f64 / elapsed) as f32;
            inner.status.published_fps = (inner.published_since as f64 / elapsed) as f32;
        }
        inner.decoded_since = 0;
        inner.published_since = 0;
        inner.since = Instant::now();
        let mut status = inner.status.clone();
        if !status.connected {
            status.decoded_fps = 0.0;
            status.published_fps = 0.0;
        }
        status.updated_at = timestamp(SystemTime::now());
        status
    }

    /// The status without starting a new rate interval (tests, logs).
    pub fn snapshot(&self) -> CameraStatus {
        self.lock().status.clone()
    }
}

/// Longest wait for the last status write when the worker stops.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes the board to the bucket on every change and every `interval`,
/// until `stop`; then once more, disconnected (the worker is gone), unless
/// another replica wrote the camera's status since (it took the camera
/// over: its status is the true one).
///
/// A write never holds up the stop: the worker's end (and with it the
/// camera's lease) must not wait for a NATS that does not answer.
pub async fn publish_loop(
    board: Arc<StatusBoard>,
    kv: Store,
    camera_id: String,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut revision = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            written = write(&kv, &camera_id, board.report()) => {
                revision = written.or(revision);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = board.changed.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
    board.set_connected(false);
    let Some(revision) = revision else { return };
    let last = board.report().encode_to_vec();
    match tokio::time::timeout(
        FINAL_WRITE_TIMEOUT,
        kv.update(&camera_id, last.into(), revision),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) if error.kind() == UpdateErrorKind::WrongLastRevision => {
            tracing::debug!(camera = %camera_id, "camera status written by its new holder; leaving it");
        }
        Ok(Err(error)) => {
            tracing::debug!(camera = %camera_id, %error, "writing the last camera status failed")
        }
        Err(_) => tracing::debug!(camera = %camera_id, "writing the last camera status timed out"),
    }
}

/// Writes `status`; the entry's new revision, or `None` when it failed.
async fn write(kv: &Store, camera_id: &str, status: CameraStatus) -> Option<u64> {
    match kv.put(camera_id, status.encode_to_vec().into()).await {
        Ok(revision) => Some(revision),
        Err(error) => {
            tracing::debug!(camera = %camera_id, %error, "writing camera status failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_kept_until_a_connection_works() {
        let board = StatusBoard::new("ingest-0");
        board.error("connecting: refused");
        board.reconnect();
        let status = board.report();
        assert!(!status.connected);
        assert_eq!(status.last_error, "connecting: refused");
        assert!(status.last_error_at.is_some());
        assert_eq!(status.reconnects, 1);
        assert_eq!(status.ingest_instance, "ingest-0");
        board.set_connected(true);
        board.set_stream("h264 1280x720");
        board.decoded();
        board.published(SystemTime::now());
        board.dropped();
        let status = board.report();
        assert!(status.connected);
        assert!(status.last_error.is_empty());
        assert_eq!(status.stream, "h264 1280x720");
        assert!(status.decoded_fps > 0.0);
        assert!(status.published_fps > 0.0);
        assert_eq!(status.dropped_frames, 1);
        assert!(status.last_frame_at.is_some());
        // A new interval with nothing in it.
        assert_eq!(board.report().published_fps, 0.0);
    }
}
