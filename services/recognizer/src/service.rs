//! The NATS side of the recognizer: takes frames from `anpr.v1.frames.>` in
//! the queue group `recognizer` (replicas share the frames), keeps at most a
//! bounded queue of them, reads each on the blocking pool with the
//! [`Recognizer`], and answers every frame it read with one `FrameReads` on
//! `anpr.v1.reads.<camera>`, continuing the frame's trace.
//!
//! Frames that would be read too late to matter are dropped and counted:
//! those older than the maximum frame age (on arrival, or after waiting in
//! the queue), and the oldest waiting frame when a new one finds the queue
//! full. A picture that cannot be read still gets its (empty) FrameReads.

pub mod frame;
pub mod oneshot;
pub mod queue;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anpr_common::bus::{self, BusError, NatsArgs};
use anpr_common::config_watch::ConfigWatch;
use anpr_common::health::{self, Readiness};
use anpr_common::{subjects, trace_context};
use futures::StreamExt as _;
use prometheus_client::registry::Registry;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metrics::{
    drop_reason, read_error_kind, stage, MalformedLabels, Metrics, ReadErrorLabels,
};
use crate::pipeline::Recognizer;
use crate::types::{ImageReads, LoadError, ModelConfig, ReadOptions};
use frame::FrameInfo;
use queue::{FairQueue, Pushed};

/// Name of this client on the NATS server.
const CLIENT_NAME: &str = "anpr-recognizer";
/// Queue group of every recognizer replica: NATS gives each frame to one.
pub const QUEUE_GROUP: &str = "recognizer";
/// How often readiness follows the NATS connection state.
const READINESS_INTERVAL: Duration = Duration::from_secs(1);

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub nats: NatsArgs,
    /// Where the models are and how many ONNX threads each uses.
    pub models: ModelConfig,
    /// How each frame is read (detector size, masks, crops, ...).
    pub read: ReadOptions,
    /// Address of /healthz, /readyz and /metrics (default `0.0.0.0:9090`).
    pub http_listen: SocketAddr,
    /// Frames read at the same time (default 1). Each read uses
    /// `models.threads` ONNX threads, so workers x threads should not exceed
    /// the cores the service may use.
    pub workers: usize,
    /// Frames older than this are dropped and counted, judged by capture
    /// time on arrival and again, with the time spent queued, when a worker
    /// takes them (default 2 s).
    pub max_frame_age: Duration,
    /// Frames waiting for a worker at most (default 2, that is 2 x the
    /// default workers). Cameras are read in turn; a full queue pushes out
    /// the oldest frame of the camera with the most waiting, or else of the
    /// camera read most recently (see [`queue`]).
    pub queue: usize,
    /// The configuration, for each camera's mask regions (added to
    /// `read.masks` for that camera's frames). Default none: no per-camera
    /// masks. Until the first snapshot arrives frames are read unmasked
    /// rather than held back.
    pub config: Option<ConfigWatch>,
}

impl ServiceOptions {
    /// Options with the documented defaults for everything but NATS and the
    /// models.
    pub fn new(nats: NatsArgs, models: ModelConfig) -> Self {
        ServiceOptions {
            nats,
            models,
            read: ReadOptions::default(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            workers: 1,
            max_frame_age: Duration::from_secs(2),
            queue: 2,
            config: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("health endpoint on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("subscribing to {subject}: {source}")]
    Subscribe {
        subject: &'static str,
        source: async_nats::SubscribeError,
    },
    #[error("the frames subscription ended unexpectedly")]
    SubscriptionEnded,
    #[error("service task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A started recognizer service.
pub struct Running {
    /// Where /healthz, /readyz and /metrics are served.
    pub http_addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// Waits until the service stopped (after `shutdown`, once the frames
    /// already queued are answered).
    pub async fn wait(self) -> Result<(), ServiceError> {
        self.task.await?
    }
}

/// Runs the service until `shutdown`.
pub async fn run(options: ServiceOptions, shutdown: CancellationToken) -> Result<(), ServiceError> {
    start(options, shutdown).await?.wait().await
}

/// Binds the health endpoint, loads the models (a missing or broken model
/// fails here, naming the file) and spawns the service; returns once both
/// are done. Readiness stays false until NATS is connected and the frames
/// subscription is in place on the server.
pub async fn start(
    options: ServiceOptions,
    shutdown: CancellationToken,
) -> Result<Running, ServiceError> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    // The endpoint outlives the shutdown signal so /metrics still answers
    // while the last queued frames are read; it stops when the task ends.
    let http_stop = CancellationToken::new();
    let (http_addr, _http) = health::serve(
        options.http_listen,
        readiness.clone(),
        Arc::new(registry),
        http_stop.clone(),
    )
    .await
    .map_err(|source| ServiceError::Http {
        addr: options.http_listen,
        source,
    })?;
    // Loading reads and optimises the model files: seconds of CPU that
    // must not hold up the runtime's threads.
    let models = options.models.clone();
    let reader = options.read.reader;
    let loaded = tokio::task::spawn_blocking(move || Recognizer::load_for(&models, reader)).await;
    let recognizer = match loaded {
        Ok(Ok(recognizer)) => Arc::new(recognizer),
        Ok(Err(error)) => {
            http_stop.cancel();
            return Err(error.into());
        }
        Err(error) => {
            http_stop.cancel();
            return Err(error.into());
        }
    };
    tracing::info!(
        models = %options.models.models_dir.display(),
        onnx_threads = options.models.threads,
        "models loaded"
    );
    let task = tokio::spawn(async move {
        let _stop_http = http_stop.drop_guard();
        serve(options, recognizer, metrics, readiness, shutdown).await
    });
    Ok(Running { http_addr, task })
}

/// A frame waiting for a worker.
struct Queued {
    info: FrameInfo,
    picture: Vec<u8>,
    /// The frame's span, child of the publisher's trace.
    span: tracing::Span,
    queued_at: Instant,
}

/// What the workers share.
struct Shared {
    recognizer: Arc<Recognizer>,
    read: Arc<ReadOptions>,
    metrics: Metrics,
    client: async_nats::Client,
    queue: FairQueue<String, Queued>,
    max_frame_age: Duration,
    config: Option<ConfigWatch>,
}

async fn serve(
    options: ServiceOptions,
    recognizer: Arc<Recognizer>,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let client = match options
        .nats
        .connect_with_retry(CLIENT_NAME, &shutdown)
        .await
    {
        Ok(client) => client,
        Err(BusError::Cancelled { .. }) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let mut subscription = client
        .queue_subscribe(subjects::ALL_FRAMES, QUEUE_GROUP.to_string())
        .await
        .map_err(|source| ServiceError::Subscribe {
            subject: subjects::ALL_FRAMES,
            source,
        })?;
    // The server has the subscription once it answered a ping sent after
    // it: only then may readiness promise that frames reach this replica.
    if let Err(error) = client.flush().await {
        tracing::warn!(%error, "flushing the frames subscription");
    }
    readiness.set(true);
    tracing::info!(
        workers = options.workers,
        queue = options.queue,
        max_frame_age_ms = options.max_frame_age.as_millis() as u64,
        "recognizer ready: reading {} in queue group {QUEUE_GROUP}",
        subjects::ALL_FRAMES
    );

    let shared = Arc::new(Shared {
        recognizer,
        read: Arc::new(options.read.clone()),
        metrics,
        client: client.clone(),
        queue: FairQueue::new(options.queue),
        max_frame_age: options.max_frame_age,
        config: options.config.clone(),
    });
    let workers: Vec<_> = (0..options.workers.max(1))
        .map(|_| tokio::spawn(work(shared.clone())))
        .collect();

    let mut readiness_tick = tokio::time::interval(READINESS_INTERVAL);
    readiness_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            // Before the frames: a steady stream of them must not starve it.
            _ = readiness_tick.tick() => {
                readiness.set(client.connection_state() == async_nats::connection::State::Connected);
            }
            message = subscription.next() => match message {
                Some(message) => receive(&shared, message),
                None => break Err(ServiceError::SubscriptionEnded),
            },
        }
    };

    // Shutdown: take no more frames, answer those already queued (a few at
    // most), then make sure the answers left this process.
    readiness.set(false);
    bus::at_shutdown("unsubscribing from frames", subscription.unsubscribe()).await;
    shared.queue.close();
    for worker in workers {
        if let Err(error) = worker.await {
            tracing::error!(%error, "recognizer worker failed");
        }
    }
    bus::at_shutdown("flushing the last FrameReads", client.flush()).await;
    tracing::info!("recognizer stopped");
    outcome
}

/// Checks one message and queues its frame. Never waits: the subscription
/// must keep up with the cameras whatever the workers do.
fn receive(shared: &Shared, message: async_nats::Message) {
    let metrics = &shared.metrics;
    metrics.frames_received.inc();
    let (info, picture) = match frame::parse(message.subject.as_str(), &message.payload) {
        Ok(parsed) => parsed,
        Err(reason) => {
            metrics
                .malformed
                .get_or_create(&MalformedLabels {
                    reason: reason.label(),
                })
                .inc();
            tracing::warn!(subject = %message.subject, reason = reason.label(), error = %reason, "skipping malformed frame");
            return;
        }
    };
    let span = tracing::info_span!("frame", camera = %info.camera_id, sequence = info.sequence);
    trace_context::set_parent_from(&span, message.headers.as_ref());
    let age = frame::age(info.captured_at, Duration::ZERO, SystemTime::now());
    if age > shared.max_frame_age {
        metrics.dropped(drop_reason::TOO_OLD);
        tracing::debug!(parent: &span, age_ms = age.as_millis() as u64, "dropping a frame too old on arrival");
        return;
    }
    let queued = Queued {
        info,
        picture,
        span,
        queued_at: Instant::now(),
    };
    match shared.queue.push(queued.info.camera_id.clone(), queued) {
        Pushed::Queued => {}
        Pushed::Displaced(old) => {
            metrics.dropped(drop_reason::QUEUE_FULL);
            tracing::debug!(parent: &old.span, "dropping a queued frame: queue full");
        }
        // Only after shutdown, when nothing is received any more.
        Pushed::Closed(_) => {}
    }
    metrics
        .queue_depth
        .set(i64::try_from(shared.queue.len()).unwrap_or(i64::MAX));
}

/// One worker: takes frames off the queue until it is closed and empty.
async fn work(shared: Arc<Shared>) {
    while let Some(queued) = shared.queue.pop().await {
        let metrics = &shared.metrics;
        metrics
            .queue_depth
            .set(i64::try_from(shared.queue.len()).unwrap_or(i64::MAX));
        let waited = queued.queued_at.elapsed();
        metrics.observe(stage::QUEUE_WAIT, waited.as_secs_f64());
        let age = frame::age(queued.info.captured_at, waited, SystemTime::now());
        if age > shared.max_frame_age {
            metrics.dropped(drop_reason::TOO_OLD);
            tracing::debug!(parent: &queued.span, age_ms = age.as_millis() as u64, "dropping a frame that grew too old in the queue");
            continue;
        }
        let span = queued.span.clone();
        process(&shared, queued).instrument(span).await;
    }
}

/// Reads one frame and publishes its FrameReads, whatever the outcome.
async fn process(shared: &Shared, queued: Queued) {
    let Queued { info, picture, .. } = queued;
    let metrics = &shared.metrics;
    let recognizer = shared.recognizer.clone();
    let options = match &shared.config {
        Some(config) => {
            frame::options_for_camera(&shared.read, config.current().cameras.get(&info.camera_id))
        }
        None => shared.read.clone(),
    };
    let outcome =
        tokio::task::spawn_blocking(move || recognizer.read_encoded(&picture, &options)).await;
    let reply = match outcome {
        Ok(Ok(reads)) => {
            observe_timings(metrics, &reads);
            metrics.plates_read.inc_by(reads.plates.len() as u64);
            frame::read(&info, &reads)
        }
        Ok(Err(error)) => {
            let kind = frame::error_kind(&error);
            metrics
                .read_errors
                .get_or_create(&ReadErrorLabels { kind })
                .inc();
            tracing::warn!(kind, %error, "frame could not be read");
            frame::unread(&info)
        }
        Err(error) => {
            // A panic inside the engine ends that read, not the service.
            metrics
                .read_errors
                .get_or_create(&ReadErrorLabels {
                    kind: read_error_kind::PANIC,
                })
                .inc();
            tracing::error!(%error, "reading a frame panicked");
            frame::unread(&info)
        }
    };
    metrics.frames_processed.inc();
    let mut headers = async_nats::HeaderMap::new();
    trace_context::inject(&tracing::Span::current(), &mut headers);
    let subject = subjects::reads(&info.camera_id);
    let published = shared
        .client
        .publish_with_headers(subject, headers, reply.encode_to_vec().into())
        .await;
    if let Err(error) = published {
        metrics.publish_errors.inc();
        tracing::warn!(%error, "publishing FrameReads failed");
    }
}

fn observe_timings(metrics: &Metrics, reads: &ImageReads) {
    let timings = &reads.timings;
    metrics.observe(stage::DECODE, timings.decode.as_secs_f64());
    metrics.observe(stage::DETECT, timings.detect.as_secs_f64());
    metrics.observe(stage::RECOGNIZE, timings.recognize.as_secs_f64());
    metrics.observe(stage::TOTAL, timings.total.as_secs_f64());
}
