//! The NATS side of ingest: connects, opens the status bucket, follows the
//! configuration, holds leases on its share of the cameras (`anpr_common::lease`)
//! and runs a camera worker for each camera it holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anpr_common::bus::{self, BucketSpec, BusError, NatsArgs};
use anpr_common::config_watch::ConfigWatch;
use anpr_common::health::{self, Readiness};
use anpr_common::lease::{self, CameraLeases, LeaseOptions};
use anpr_common::subjects;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::decode::init_ffmpeg;
use crate::metrics::Metrics;
use crate::source::{DefaultOpener, RtspTransport, SourceOpener};
use crate::status::STATUS_INTERVAL;
use crate::supervisor;
use crate::worker::{BusyCameras, Shared, WorkerOptions, WATCHDOG};

/// Name of this client on the NATS server.
const CLIENT_NAME: &str = "anpr-ingest";
/// Default JPEG quality of published frames.
pub const DEFAULT_JPEG_QUALITY: u8 = 85;

/// How the service runs.
#[derive(Clone)]
pub struct Options {
    pub nats: NatsArgs,
    /// Config service gRPC URL (default `http://127.0.0.1:50051`).
    pub config_url: String,
    /// Address of /healthz, /readyz and /metrics (default `0.0.0.0:9090`).
    pub http_listen: SocketAddr,
    /// Longest time the cameras of a replica that died stay unread before
    /// another replica takes them (default 10 s).
    pub lease_ttl: Duration,
    /// Most cameras this replica reads (default 0: no limit).
    pub max_cameras: usize,
    /// RTP over the RTSP connection (default) or UDP.
    pub rtsp_transport: RtspTransport,
    /// JPEG quality 1-100 (default 85).
    pub jpeg_quality: u8,
    /// How often each camera's status is written (default 2 s).
    pub status_interval: Duration,
    /// A camera with no frame for this long is reconnected (default 5 s).
    pub watchdog: Duration,
    /// Name of this replica in leases and camera statuses, unique among the
    /// replicas (default: the host name and a random suffix).
    pub instance: String,
    /// Opens camera sources (default: RTSP, clips and JPEG folders).
    pub opener: Arc<dyn SourceOpener>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("nats", &self.nats)
            .field("config_url", &self.config_url)
            .field("http_listen", &self.http_listen)
            .field("lease_ttl", &self.lease_ttl)
            .field("max_cameras", &self.max_cameras)
            .field("rtsp_transport", &self.rtsp_transport)
            .field("jpeg_quality", &self.jpeg_quality)
            .field("status_interval", &self.status_interval)
            .field("watchdog", &self.watchdog)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Options with the documented defaults for everything but NATS and the
    /// config service.
    pub fn new(nats: NatsArgs, config_url: impl Into<String>) -> Self {
        Options {
            nats,
            config_url: config_url.into(),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            lease_ttl: lease::DEFAULT_LEASE_TTL,
            max_cameras: 0,
            rtsp_transport: RtspTransport::Tcp,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            status_interval: STATUS_INTERVAL,
            watchdog: WATCHDOG,
            instance: lease::default_instance(),
            opener: Arc::new(DefaultOpener),
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
    #[error("--jpeg-quality must be 1-100, got {0}")]
    JpegQuality(u8),
    #[error("health endpoint on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Lease(#[from] lease::LeaseError),
    #[error("service task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A started ingest service.
pub struct Running {
    /// Where /healthz, /readyz and /metrics are served.
    pub http_addr: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Running {
    /// Waits until the service stopped (after `shutdown`, once every worker
    /// has written its last status).
    pub async fn wait(self) -> Result<(), ServiceError> {
        self.task.await?
    }
}

/// Runs the service until `shutdown`.
pub async fn run(options: Options, shutdown: CancellationToken) -> Result<(), ServiceError> {
    start(options, shutdown).await?.wait().await
}

/// Binds the health endpoint, starts following the configuration and spawns
/// the service; returns once the endpoint is up. Readiness stays false until
/// NATS is connected, the status bucket is open and the first configuration
/// snapshot has arrived.
pub async fn start(options: Options, shutdown: CancellationToken) -> Result<Running, ServiceError> {
    if !(1..=100).contains(&options.jpeg_quality) {
        return Err(ServiceError::JpegQuality(options.jpeg_quality));
    }
    init_ffmpeg();
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
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
        serve(options, watch, metrics, readiness, shutdown).await
    });
    Ok(Running { http_addr, task })
}

async fn serve(
    options: Options,
    mut watch: ConfigWatch,
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
    let status_kv = loop {
        let opened = bus::open_kv_bucket(
            &js,
            BucketSpec {
                bucket: subjects::CAMERA_STATUS_BUCKET,
                description: "ANPR camera stream status, written by ingest",
                history: 1,
                max_age: None,
                replicas: options.nats.replicas,
            },
        )
        .await;
        match opened {
            Ok(kv) => break kv,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "camera status bucket not available yet")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    };
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        loaded = watch.loaded() => if loaded.is_none() { return Ok(()) },
    }
    let busy = BusyCameras::default();
    let leases = {
        let watch = watch.clone();
        let candidates = Arc::new(move || supervisor::enabled_cameras(&watch.current()));
        let options = LeaseOptions {
            bucket: subjects::INGEST_LEASE_BUCKET,
            instance: options.instance.clone(),
            ttl: options.lease_ttl,
            capacity: options.max_cameras,
            replicas: options.nats.replicas,
        };
        let in_use = {
            let busy = busy.clone();
            Arc::new(move || busy.cameras()) as lease::CameraSet
        };
        match CameraLeases::start(js.clone(), options, candidates, Some(in_use), &shutdown).await {
            Ok(leases) => leases,
            Err(lease::LeaseError::Cancelled { .. }) => return Ok(()),
            Err(error) => return Err(error.into()),
        }
    };
    readiness.set(true);
    tracing::info!(instance = %options.instance, max_cameras = options.max_cameras, "ingest ready");

    // Readiness follows the NATS connection from here on.
    let readiness_task = {
        let (client, readiness, shutdown) = (client.clone(), readiness.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => readiness.set(
                        client.connection_state() == async_nats::connection::State::Connected,
                    ),
                }
            }
        })
    };

    let shared = Arc::new(Shared {
        client: client.clone(),
        js,
        status_kv,
        metrics,
        options: WorkerOptions {
            transport: options.rtsp_transport,
            jpeg_quality: options.jpeg_quality,
            status_interval: options.status_interval,
            instance: options.instance.clone(),
            watchdog: options.watchdog,
        },
        opener: options.opener.clone(),
        busy,
    });
    supervisor::supervise(shared, watch, leases.owned(), shutdown).await;
    readiness.set(false);
    // Only now that every worker has stopped may another replica start
    // reading these cameras.
    leases.release_all().await;
    let _ = readiness_task.await;
    bus::at_shutdown("flushing the last frames", client.flush()).await;
    tracing::info!("ingest stopped");
    Ok(())
}
