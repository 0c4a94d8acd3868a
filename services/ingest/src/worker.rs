//! One camera's worker: connects its source, streams until the connection
//! fails or goes silent, and reconnects with back-off, until it is stopped
//! (camera changed, disabled or deleted, or shutdown). A camera that is down
//! only ever affects its own worker.
//!
//! A connection's frames go source -> (channel) -> pipeline thread (decode,
//! sample, JPEG) -> (channel) -> publisher task -> NATS. The frame sequence
//! restarts at 0 with every connection.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anpr_common::proto::{Camera, Frame, StoredSecret};
use anpr_common::{subjects, trace_context};
use async_nats::jetstream;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::backoff::Backoff;
use crate::camera_url::{self, SourceSpec};
use crate::jpeg;
use crate::metrics::{CameraMetrics, DropReason, Metrics};
use crate::pipeline::{self, Encoded, PipelineConfig};
use crate::source::{
    Credentials, FrameSource, OpenParams, RtspTransport, SourceItem, SourceOpener,
};
use crate::status::{self, StatusBoard};

/// Default sample rate when a camera has none (the proto's documented default).
pub const DEFAULT_SAMPLE_FPS: f32 = 10.0;
/// A stream with no frame for this long is dead.
pub const WATCHDOG: Duration = Duration::from_secs(5);
/// Frames queued for the pipeline of a live camera; beyond this the pipeline
/// is behind, and frames are dropped up to the next key frame.
const LIVE_QUEUE: usize = 16;
/// Frames queued for a file source (back-pressure, nothing dropped).
const FILE_QUEUE: usize = 4;
/// Encoded frames waiting for the publisher.
const OUT_QUEUE: usize = 4;
/// Server limit assumed before the server said otherwise (NATS default).
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// Service-wide settings of the workers.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub transport: RtspTransport,
    /// JPEG quality, 1-100.
    pub jpeg_quality: u8,
    pub status_interval: Duration,
    /// This replica's name in camera statuses (the host name).
    pub instance: String,
    pub watchdog: Duration,
}

/// What every worker shares.
pub struct Shared {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub status_kv: jetstream::kv::Store,
    pub metrics: Metrics,
    pub options: WorkerOptions,
    pub opener: Arc<dyn SourceOpener>,
    /// Cameras with a worker running or finishing here.
    pub busy: BusyCameras,
}

/// Cameras whose worker has not finished yet: their leases are not let go
/// before, so that the next replica never reads a camera this one still
/// reads.
#[derive(Debug, Clone, Default)]
pub struct BusyCameras(Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>);

impl BusyCameras {
    /// Marks `camera` busy until the guard is dropped.
    fn enter(&self, camera: &str) -> BusyGuard {
        if let Ok(mut busy) = self.0.lock() {
            *busy.entry(camera.to_string()).or_default() += 1;
        }
        BusyGuard {
            busy: self.clone(),
            camera: camera.to_string(),
        }
    }

    /// The busy cameras now.
    pub fn cameras(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lock()
            .map(|busy| busy.keys().cloned().collect())
            .unwrap_or_default()
    }
}

struct BusyGuard {
    busy: BusyCameras,
    camera: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.0.lock() {
            if let Some(count) = busy.get_mut(&self.camera) {
                *count -= 1;
                if *count == 0 {
                    busy.remove(&self.camera);
                }
            }
        }
    }
}

/// The settings of a camera that its worker depends on. Any change restarts
/// the worker. The revision is part of it because a new RTSP password shows
/// only as a new revision of the camera record.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    pub id: String,
    pub url: String,
    pub username: String,
    pub ip: String,
    pub sample_fps: f32,
    pub revision: u64,
}

impl CameraSpec {
    pub fn from_camera(camera: &Camera) -> Self {
        CameraSpec {
            id: camera.id.clone(),
            url: camera.rtsp_url.clone(),
            username: camera.rtsp_username.clone(),
            ip: camera.ip_address.clone(),
            sample_fps: camera
                .sample_fps
                .filter(|fps| fps.is_finite() && *fps > 0.0)
                .unwrap_or(DEFAULT_SAMPLE_FPS),
            revision: camera.revision,
        }
    }
}

/// How one connection ended.
#[derive(Debug)]
enum Outcome {
    Stopped,
    /// A file without `loop=true` was played to its end.
    Finished,
    Failed {
        error: String,
        /// Frames arrived before the failure: the back-off starts over.
        streamed: bool,
    },
}

/// Runs the camera until `stop`.
pub async fn run(shared: Arc<Shared>, spec: CameraSpec, stop: CancellationToken) {
    let _busy = shared.busy.enter(&spec.id);
    let metrics = shared.metrics.camera(&spec.id);
    let board = Arc::new(StatusBoard::new(&shared.options.instance));
    let status_stop = CancellationToken::new();
    let status_task = tokio::spawn(status::publish_loop(
        board.clone(),
        shared.status_kv.clone(),
        spec.id.clone(),
        shared.options.status_interval,
        status_stop.clone(),
    ));
    let span = tracing::info_span!("camera", camera = %spec.id);
    async {
        tracing::info!(url = %camera_url::redact(&spec.url), fps = spec.sample_fps, "camera worker started");
        match camera_url::parse(&spec.url) {
            Ok(source) => connect_loop(&shared, &spec, &source, &metrics, &board, &stop).await,
            Err(error) => {
                // Nothing to retry: only a new configuration can fix it.
                tracing::warn!(%error, "camera URL cannot be used");
                board.error(&error.to_string());
                stop.cancelled().await;
            }
        }
        metrics.set_connected(false);
        tracing::info!("camera worker stopped");
    }
    .instrument(span)
    .await;
    status_stop.cancel();
    let _ = status_task.await;
}

async fn connect_loop(
    shared: &Shared,
    spec: &CameraSpec,
    source: &SourceSpec,
    metrics: &CameraMetrics,
    board: &Arc<StatusBoard>,
    stop: &CancellationToken,
) {
    let mut backoff = Backoff::reconnect();
    let mut first = true;
    loop {
        if !first {
            metrics.reconnect();
            board.reconnect();
        }
        first = false;
        let outcome = connect_and_stream(shared, spec, source, metrics, board, stop).await;
        metrics.set_connected(false);
        match outcome {
            Outcome::Stopped => return,
            Outcome::Finished => {
                tracing::info!("file played to its end (add ?loop=true to repeat it)");
                board.set_connected(false);
                stop.cancelled().await;
                return;
            }
            Outcome::Failed { error, streamed } => {
                if streamed {
                    backoff.reset();
                }
                board.error(&error);
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "camera connection failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The camera's RTSP login: the user name from the configuration, the
/// password from the secrets bucket (absent: empty).
async fn read_credentials(
    js: &jetstream::Context,
    spec: &CameraSpec,
) -> Result<Option<Credentials>, String> {
    if spec.username.is_empty() {
        return Ok(None);
    }
    let secrets = js
        .get_key_value(subjects::SECRETS_BUCKET)
        .await
        .map_err(|err| format!("opening the secrets bucket: {err}"))?;
    let password = match secrets
        .get(format!("camera.{}", spec.id))
        .await
        .map_err(|err| format!("reading the camera's password: {err}"))?
    {
        Some(entry) => {
            StoredSecret::decode(entry)
                .map_err(|_| "the stored camera password record is unreadable".to_string())?
                .password
        }
        None => String::new(),
    };
    Ok(Some(Credentials {
        username: spec.username.clone(),
        password,
    }))
}

async fn connect_and_stream(
    shared: &Shared,
    spec: &CameraSpec,
    source_spec: &SourceSpec,
    metrics: &CameraMetrics,
    board: &Arc<StatusBoard>,
    stop: &CancellationToken,
) -> Outcome {
    let credentials = match source_spec {
        SourceSpec::Rtsp { .. } => match read_credentials(&shared.js, spec).await {
            Ok(credentials) => credentials,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    streamed: false,
                }
            }
        },
        SourceSpec::File { .. } => None,
    };
    let params = OpenParams {
        credentials,
        transport: shared.options.transport,
        sample_fps: spec.sample_fps,
    };
    let opened = tokio::select! {
        _ = stop.cancelled() => return Outcome::Stopped,
        opened = shared.opener.open(source_spec, &params) => opened,
    };
    let source = match opened {
        Ok(source) => source,
        Err(error) => {
            return Outcome::Failed {
                error: error.to_string(),
                streamed: false,
            }
        }
    };
    let ends_for_good = matches!(source_spec, SourceSpec::File { looped: false, .. });
    stream(shared, spec, source, ends_for_good, metrics, board, stop).await
}

fn is_keyframe(item: &SourceItem) -> bool {
    match item {
        SourceItem::Video(unit) => unit.keyframe,
        SourceItem::Jpeg(_) => true,
    }
}

/// The payload limit of the server this client is connected to.
fn max_payload(client: &async_nats::Client) -> usize {
    match client.server_info().max_payload {
        0 => DEFAULT_MAX_PAYLOAD,
        limit => limit,
    }
}

async fn stream(
    shared: &Shared,
    spec: &CameraSpec,
    mut source: Box<dyn FrameSource>,
    ends_for_good: bool,
    metrics: &CameraMetrics,
    board: &Arc<StatusBoard>,
    stop: &CancellationToken,
) -> Outcome {
    let live = source.is_live();
    let config = PipelineConfig {
        sample_fps: spec.sample_fps,
        quality: shared.options.jpeg_quality,
        jpeg_limit: jpeg::jpeg_limit(max_payload(&shared.client), &spec.id, &spec.ip),
        decoder: source.take_decoder(),
    };
    let (unit_tx, unit_rx) = mpsc::channel(if live { LIVE_QUEUE } else { FILE_QUEUE });
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let mut pipeline = {
        let (metrics, board) = (metrics.clone(), board.clone());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            pipeline::run(config, unit_rx, out_tx, metrics, board)
        })
    };
    let publisher = tokio::spawn(
        publish_frames(
            shared.client.clone(),
            spec.id.clone(),
            spec.ip.clone(),
            out_rx,
            metrics.clone(),
            board.clone(),
        )
        .in_current_span(),
    );
    // A folder at a slow rate legitimately waits longer than the watchdog.
    let watchdog = shared
        .options
        .watchdog
        .max(Duration::from_secs_f64(3.0 / f64::from(spec.sample_fps)));
    let mut streamed = false;
    let mut pipeline_done = false;
    // Set when a live frame had to be dropped: decoding resumes at a key frame.
    let mut skip_to_keyframe = false;
    let outcome = loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break Outcome::Stopped,
            ended = &mut pipeline, if !pipeline_done => {
                pipeline_done = true;
                let error = match ended {
                    Ok(Ok(())) => "frame pipeline stopped".to_string(),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "frame pipeline failed".to_string(),
                };
                break Outcome::Failed { error, streamed };
            }
            next = tokio::time::timeout(watchdog, source.next()) => next,
        };
        let item = match next {
            Err(_) => {
                break Outcome::Failed {
                    error: format!("no frame for {} s", watchdog.as_secs()),
                    streamed,
                }
            }
            Ok(Err(error)) => {
                break Outcome::Failed {
                    error: error.to_string(),
                    streamed,
                }
            }
            Ok(Ok(None)) if ends_for_good => break Outcome::Finished,
            Ok(Ok(None)) => {
                break Outcome::Failed {
                    error: "stream ended".to_string(),
                    streamed,
                }
            }
            Ok(Ok(Some(item))) => item,
        };
        if !streamed {
            streamed = true;
            board.set_connected(true);
            metrics.set_connected(true);
            tracing::info!("camera streaming");
        }
        if live {
            if skip_to_keyframe && !is_keyframe(&item) {
                metrics.dropped(DropReason::Overload);
                board.dropped();
                continue;
            }
            match unit_tx.try_send(item) {
                Ok(()) => skip_to_keyframe = false,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    skip_to_keyframe = true;
                    metrics.dropped(DropReason::Overload);
                    board.dropped();
                }
                // The pipeline ended; the select above reports why.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        } else {
            tokio::select! {
                _ = stop.cancelled() => break Outcome::Stopped,
                sent = unit_tx.send(item) => {
                    // On failure the pipeline ended; the select above reports why.
                    let _ = sent;
                }
            }
        }
    };
    // Let the pipeline finish what it has (a file's last frames are
    // published), then the publisher.
    drop(unit_tx);
    if !pipeline_done {
        if let Ok(Err(error)) = pipeline.await {
            tracing::debug!(%error, "frame pipeline ended with an error");
        }
    }
    let _ = publisher.await;
    outcome
}

/// Publishes a connection's frames in order, numbering them from 0. Each
/// frame starts a trace, carried in the message headers.
async fn publish_frames(
    client: async_nats::Client,
    camera_id: String,
    camera_ip: String,
    mut frames: mpsc::Receiver<Encoded>,
    metrics: CameraMetrics,
    board: Arc<StatusBoard>,
) {
    let subject = subjects::frames(&camera_id);
    let mut sequence: u64 = 0;
    let mut failures_logged = false;
    while let Some(frame) = frames.recv().await {
        let span = tracing::info_span!(
            "ingest_frame",
            camera = %camera_id,
            sequence,
            width = frame.width,
            height = frame.height
        );
        let mut headers = async_nats::HeaderMap::new();
        trace_context::inject(&span, &mut headers);
        let bytes = frame.jpeg.len();
        let message = Frame {
            camera_id: camera_id.clone(),
            sequence,
            capture_time: Some(frame.capture_time.into()),
            width: frame.width,
            height: frame.height,
            jpeg: frame.jpeg,
            camera_ip: camera_ip.clone(),
        };
        // Numbers are used up by failed publishes too: a gap tells a
        // consumer that a frame is missing.
        sequence += 1;
        let published = client
            .publish_with_headers(subject.clone(), headers, message.encode_to_vec().into())
            .instrument(span)
            .await;
        match published {
            Ok(()) => {
                failures_logged = false;
                metrics.published(bytes);
                board.published(SystemTime::now());
            }
            Err(error) => {
                metrics.dropped(DropReason::Publish);
                board.dropped();
                // Once per run of failures: NATS being away must not flood the log.
                if !failures_logged {
                    failures_logged = true;
                    tracing::warn!(%error, "publishing frames failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_spec_defaults_the_sample_rate_and_ignores_status() {
        let camera = Camera {
            id: "gate".into(),
            rtsp_url: "rtsp://10.0.0.1/s".into(),
            ip_address: "10.0.0.1".into(),
            revision: 4,
            ..Default::default()
        };
        let spec = CameraSpec::from_camera(&camera);
        assert_eq!(spec.sample_fps, DEFAULT_SAMPLE_FPS);
        let with_status = Camera {
            status: Some(Default::default()),
            name: "Gate".into(),
            ..camera.clone()
        };
        assert_eq!(CameraSpec::from_camera(&with_status), spec);
        let faster = Camera {
            sample_fps: Some(5.0),
            ..camera
        };
        assert_eq!(CameraSpec::from_camera(&faster).sample_fps, 5.0);
    }
}
