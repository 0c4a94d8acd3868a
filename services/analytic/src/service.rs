//! The NATS side of the analytic: subscribes to every camera's reads, holds
//! leases on its share of the cameras (`anpr_common::lease`), feeds the reads
//! of those cameras to the [`Engine`], publishes what comes out and sweeps
//! for silent cameras. A camera taken over continues the tracks its previous
//! holder left open ([`resume`](crate::resume)). At shutdown the open tracks
//! are handed over to the other replicas, or ended with their Lost when this
//! is the last replica.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anpr_common::bus::{self, BusError, NatsArgs};
use anpr_common::config_watch::{ConfigState, ConfigWatch};
use anpr_common::health::{self, Readiness};
use anpr_common::lease::{self, CameraLeases, LeaseOptions};
use anpr_common::proto::PlateEventKind;
use anpr_common::{subjects, trace_context};
use futures::StreamExt as _;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::clock::{Clock, SystemClock};
use crate::engine::Engine;
use crate::frame;
use crate::metrics::{Metrics, ReasonLabels};
use crate::publish::{PublishError, Publisher};
use crate::resume;
use crate::settings::SettingsBook;
use crate::track::PlateTrack;
use crate::tracker::Step;

/// How far back a camera taken over is searched for tracks left open: the
/// plate stream's duplicate window, within which a repeated Lost would be
/// dropped anyway.
const RESUME_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Longest wait for the plate stream when reading back a camera's open
/// tracks; the camera is taken over without them after that.
const RESUME_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of this client on the NATS server.
const CLIENT_NAME: &str = "anpr-analytic";

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub nats: NatsArgs,
    /// Config service gRPC URL (default `http://127.0.0.1:50051`).
    pub config_url: String,
    /// Address of /healthz, /readyz and /metrics (default `0.0.0.0:9090`).
    pub http_listen: SocketAddr,
    /// This replica's name in the camera leases, unique among the replicas
    /// (default: the host name and a random suffix).
    pub instance: String,
    /// Longest time the cameras of a replica that died go unhandled before
    /// another replica takes them (default 10 s).
    pub lease_ttl: Duration,
    /// How often silent cameras are checked for timed-out tracks
    /// (default 250 ms; the Lost of a silent camera comes at most this late).
    pub sweep_interval: Duration,
    /// How long publishing may still take after SIGTERM before unpublished
    /// events are given up, logged and counted (default 20 s, inside
    /// Kubernetes' 30 s grace period).
    pub flush_deadline: Duration,
}

impl Options {
    /// Options with the documented defaults for everything but NATS and the
    /// config service.
    pub fn new(nats: NatsArgs, config_url: impl Into<String>) -> Self {
        Options {
            nats,
            config_url: config_url.into(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            instance: lease::default_instance(),
            lease_ttl: lease::DEFAULT_LEASE_TTL,
            sweep_interval: Duration::from_millis(250),
            flush_deadline: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid config service URL {url}: {source}")]
    ConfigUrl {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("health endpoint on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Lease(#[from] lease::LeaseError),
    #[error("subscribing to {subject}: {source}")]
    Subscribe {
        subject: &'static str,
        source: async_nats::SubscribeError,
    },
    #[error("the reads subscription ended unexpectedly")]
    SubscriptionEnded,
    #[error("service task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A started analytic service.
pub struct Running {
    /// Where /healthz, /readyz and /metrics are served.
    pub http_addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// Waits until the service stopped (after `shutdown` and the flush).
    pub async fn wait(self) -> Result<(), ServiceError> {
        self.task.await?
    }
}

/// Runs the service until `shutdown`, then flushes open tracks.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<(), ServiceError> {
    start(options, shutdown).await?.wait().await
}

/// Binds the health endpoint, starts following the configuration and
/// spawns the service; returns once the endpoint is up. Readiness stays
/// false until NATS is connected, the first configuration snapshot has
/// arrived and the reads subscription is open.
pub async fn start(options: Options, shutdown: CancellationToken) -> Result<Running, ServiceError> {
    start_with_clock(options, Arc::new(SystemClock), shutdown).await
}

/// [`start`] with the clock the sweep measures silent cameras by.
pub async fn start_with_clock(
    options: Options,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<Running, ServiceError> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    // The endpoint outlives the shutdown signal: /metrics and /healthz keep
    // answering while open tracks are flushed, and stop when the task ends.
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
    let watch = match ConfigWatch::spawn(&options.config_url, shutdown.clone()) {
        Ok(watch) => watch,
        Err(source) => {
            http_stop.cancel();
            return Err(ServiceError::ConfigUrl {
                url: options.config_url.clone(),
                source,
            });
        }
    };
    let task = tokio::spawn(async move {
        let _stop_http = http_stop.drop_guard();
        serve(options, watch, clock, metrics, readiness, shutdown).await
    });
    Ok(Running { http_addr, task })
}

async fn serve(
    options: Options,
    mut watch: ConfigWatch,
    clock: Arc<dyn Clock>,
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
    let js = async_nats::jetstream::new(client.clone());
    // JetStream may still be electing its leaders when a cluster starts:
    // keep trying rather than exit.
    let mut delay = Duration::from_millis(250);
    loop {
        match anpr_common::bus::ensure_plate_stream(&js, options.nats.replicas).await {
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "plate stream not available yet")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }

    // Decisions need settings: nothing is processed before the first
    // snapshot (reads that arrive meanwhile are not subscribed to yet).
    let state = tokio::select! {
        state = watch.loaded() => state,
        _ = shutdown.cancelled() => return Ok(()),
    };
    let Some(state) = state else { return Ok(()) };
    let leases = {
        let watch = watch.clone();
        let candidates = Arc::new(move || enabled_cameras(&watch.current()));
        let options = LeaseOptions {
            bucket: subjects::ANALYTIC_LEASE_BUCKET,
            instance: options.instance.clone(),
            ttl: options.lease_ttl,
            capacity: 0,
            replicas: options.nats.replicas,
        };
        match CameraLeases::start(js.clone(), options, candidates, None, &shutdown).await {
            Ok(leases) => leases,
            Err(lease::LeaseError::Cancelled { .. }) => return Ok(()),
            Err(error) => return Err(error.into()),
        }
    };
    let mut owned = leases.owned();
    let mut subscription = client
        .subscribe(subjects::ALL_READS)
        .await
        .map_err(|source| ServiceError::Subscribe {
            subject: subjects::ALL_READS,
            source,
        })?;
    readiness.set(true);
    tracing::info!(
        instance = %options.instance,
        "analytic ready: following {}",
        subjects::ALL_READS
    );

    // Publishing retries until stored; only the flush deadline, counted from
    // the shutdown signal, ends that. Armed here rather than after the loop:
    // a publish retrying while NATS is away must also give up in time.
    let give_up = CancellationToken::new();
    let deadline = options.flush_deadline;
    let _deadline_timer = {
        let give_up = give_up.clone();
        let shutdown = shutdown.clone();
        AbortOnDrop(tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(deadline).await;
            give_up.cancel();
        }))
    };
    let mut worker = Worker {
        engine: Engine::new(clock),
        book: SettingsBook::new(state),
        watch,
        publisher: Publisher::new(js.clone(), metrics.clone()),
        js,
        metrics,
        held: BTreeSet::new(),
        lease_ttl: options.lease_ttl,
        give_up,
        track_traces: HashMap::new(),
    };
    // The cameras held from the start (a lone replica holds them all).
    let initially = owned.borrow_and_update().clone();
    worker.ownership_changed(initially).await;
    let mut sweep = tokio::time::interval(options.sweep_interval);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            // Before the next reads: a camera just taken over continues its
            // open tracks before any of its reads is handled.
            changed = owned.changed() => match changed {
                Ok(()) => {
                    let now_owned = owned.borrow_and_update().clone();
                    worker.ownership_changed(now_owned).await;
                }
                Err(_) => break Ok(()),
            },
            message = subscription.next() => match message {
                Some(message) => worker.handle(message).await,
                None => break Err(ServiceError::SubscriptionEnded),
            },
            _ = sweep.tick() => {
                readiness.set(client.connection_state() == async_nats::connection::State::Connected);
                worker.sweep().await;
            }
        }
    };

    // Shutdown: stop taking reads. Other replicas continue the open tracks
    // from the plate stream once the leases are released; without another
    // replica, every open track ends now so that no VMS event stays open,
    // within the flush deadline.
    readiness.set(false);
    bus::at_shutdown("unsubscribing from reads", subscription.unsubscribe()).await;
    // Leave the membership first: replicas stopping together (scaled to
    // zero) then see each other gone, and the last ones end the tracks.
    let leaving = leases.leave().await;
    let others = leaving.other_members().await;
    if others > 0 {
        tracing::info!(
            open_tracks = worker.engine.open_tracks(),
            other_replicas = others,
            "handing the open tracks over to the other replicas"
        );
    } else {
        worker.flush().await;
    }
    leaving.release_cameras().await;
    bus::at_shutdown("flushing the NATS connection", client.flush()).await;
    tracing::info!("analytic stopped");
    outcome
}

/// Stops a helper task when the service task ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Worker {
    engine: Engine,
    book: SettingsBook,
    watch: ConfigWatch,
    publisher: Publisher,
    js: async_nats::jetstream::Context,
    metrics: Metrics,
    /// Cameras whose reads are handled here: the leases held, as last
    /// applied by [`Worker::ownership_changed`].
    held: BTreeSet<String>,
    lease_ttl: Duration,
    /// Cancelled when the shutdown deadline ran out: stops publish retries.
    give_up: CancellationToken,
    /// Trace context of each detected track's Detect, so that its Lost,
    /// which a later frame, the sweep or the flush may cause, continues the
    /// plate's trace rather than starting a new one. Removed at Lost.
    track_traces: HashMap<String, async_nats::HeaderMap>,
}

impl Worker {
    async fn handle(&mut self, message: async_nats::Message) {
        let subject = message.subject.as_str();
        let Some(camera) = subjects::camera_of(subject).filter(|c| subjects::reads(c) == subject)
        else {
            self.malformed(frame::Malformed::Subject, subject);
            return;
        };
        if !self.held.contains(camera) {
            self.metrics.not_owned.inc();
            return;
        }
        let camera = camera.to_string();
        let span = tracing::info_span!("frame_reads", camera = %camera);
        trace_context::set_parent_from(&span, message.headers.as_ref());
        async {
            let frame = match frame::parse(&camera, &message.payload) {
                Ok(frame) => frame,
                Err(reason) => {
                    self.malformed(reason, message.subject.as_str());
                    return;
                }
            };
            self.metrics.frames_received.inc();
            self.metrics
                .reads_received
                .inc_by(frame.reads.len() as u64 + u64::from(frame.skipped_reads));
            self.metrics
                .reads_repaired
                .inc_by(u64::from(frame.repaired_reads));
            self.metrics
                .reads_skipped
                .inc_by(u64::from(frame.skipped_reads));
            self.book.update(self.watch.current());
            let settings = self.book.for_camera(&camera);
            let step = self.engine.on_frame(frame, &settings);
            self.emit(step).await;
        }
        .instrument(span)
        .await;
    }

    fn malformed(&self, reason: frame::Malformed, subject: &str) {
        self.metrics
            .malformed
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
        tracing::warn!(%subject, reason = reason.label(), error = %reason, "skipping malformed reads message");
    }

    /// Applies a change of the leases held: cameras let go drop their
    /// tracks silently (their new holder continues them); cameras taken over
    /// continue the tracks their previous holder left open.
    async fn ownership_changed(&mut self, owned: BTreeSet<String>) {
        let gone: Vec<String> = self.held.difference(&owned).cloned().collect();
        let gained: Vec<String> = owned.difference(&self.held).cloned().collect();
        self.held = owned;
        for camera in gone {
            let tracks = self.engine.forget(&camera);
            for track in &tracks {
                self.track_traces.remove(track);
            }
            tracing::info!(%camera, open_tracks = tracks.len(), "camera handed to another replica");
        }
        self.book.update(self.watch.current());
        // Every gained camera's open tracks are read back at once: while
        // NATS is slow (a node lost, leaders being elected) each read may
        // run to its timeout, and reads wait in the subscription meanwhile.
        let since: Vec<SystemTime> = gained
            .iter()
            .map(|camera| {
                let settings = self.book.for_camera(camera);
                // Tracks left open longer ago than this are not continued.
                let window = RESUME_WINDOW.max(settings.lost_timeout + self.lease_ttl * 2);
                SystemTime::now() - window
            })
            .collect();
        let js = &self.js;
        let reads = gained
            .iter()
            .zip(since)
            .map(|(camera, since)| resume::open_tracks(js, camera, since, RESUME_TIMEOUT));
        let outcomes = futures::future::join_all(reads).await;
        for (camera, outcome) in gained.iter().zip(outcomes) {
            match outcome {
                Ok(events) => {
                    let mut resumed = 0;
                    for event in &events {
                        if let Some(track) = PlateTrack::resumed(event, SystemTime::now()) {
                            if self.engine.resume(track) {
                                resumed += 1;
                            }
                        }
                    }
                    self.metrics.tracks_resumed.inc_by(resumed);
                    tracing::info!(%camera, resumed, "camera taken over");
                }
                Err(error) => {
                    tracing::warn!(%camera, %error, "camera taken over; its open tracks could not be read back")
                }
            }
        }
    }

    async fn sweep(&mut self) {
        self.book.update(self.watch.current());
        let book = &mut self.book;
        let step = self.engine.sweep(&mut |camera| book.for_camera(camera));
        if step.events.is_empty() && step.expired_undetected == 0 {
            return;
        }
        self.emit(step)
            .instrument(tracing::info_span!("sweep"))
            .await;
    }

    async fn flush(&mut self) {
        self.book.update(self.watch.current());
        let book = &mut self.book;
        let step = self.engine.flush(&mut |camera| book.for_camera(camera));
        tracing::info!(events = step.events.len(), "flushing open tracks");
        self.emit(step)
            .instrument(tracing::info_span!("flush"))
            .await;
    }

    async fn emit(&mut self, step: Step) {
        self.metrics.tracks_opened.inc_by(step.tracks_opened);
        self.metrics
            .expired_undetected
            .inc_by(step.expired_undetected);
        self.metrics
            .open_tracks
            .set(i64::try_from(self.engine.open_tracks()).unwrap_or(i64::MAX));
        for event in &step.events {
            let span = tracing::info_span!(
                "plate_event",
                kind = ?event.kind(),
                track_id = %event.track_id
            );
            match event.kind() {
                PlateEventKind::Detect => {
                    self.track_traces
                        .insert(event.track_id.clone(), trace_context::current_headers());
                }
                PlateEventKind::Lost => {
                    let detect = self.track_traces.remove(&event.track_id);
                    trace_context::set_parent_from(&span, detect.as_ref());
                }
                _ => {}
            }
            let published = self
                .publisher
                .publish(event, &self.give_up)
                .instrument(span)
                .await;
            match published {
                Ok(()) => {}
                Err(error @ PublishError::Abandoned { .. }) => {
                    self.metrics.events_abandoned.inc();
                    tracing::error!(%error, kind = ?event.kind(), camera = %event.camera_id, "plate event not published");
                }
                Err(error) => tracing::error!(%error, "plate event not published"),
            }
        }
    }
}

/// The cameras that should be handled by some replica: the enabled ones.
fn enabled_cameras(state: &ConfigState) -> BTreeSet<String> {
    state
        .cameras
        .values()
        .filter(|camera| camera.enabled.unwrap_or(true))
        .map(|camera| camera.id.clone())
        .collect()
}
