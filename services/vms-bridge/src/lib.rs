//! VMS bridge: delivers plate events from the JetStream stream `ANPR_PLATES`
//! to Nx Witness compatible VMS servers as Generic Events, one durable
//! consumer and one worker per enabled target, with retries, dead letters,
//! de-duplication and a status per target.
//!
//! Layout: [`nx`] speaks the VMS's HTTP API; [`consumer`] owns the durable
//! consumers; [`delivery`] is the per-target loop; [`supervisor`] follows the
//! configuration; [`status`], [`dedupe`], [`backoff`] and [`metrics`] are its
//! helpers.

pub mod backoff;
pub mod consumer;
pub mod dedupe;
pub mod delivery;
pub mod metrics;
pub mod nx;
pub mod status;
pub mod supervisor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anpr_common::bus::{self, BucketSpec, BusError, NatsArgs};
use anpr_common::config_watch::ConfigWatch;
use anpr_common::health::{self, Readiness};
use anpr_common::subjects;
use async_nats::jetstream;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub use delivery::DeliverySettings;

/// Dead letters are kept this long for inspection and replay.
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Delivered (target, event) pairs are remembered this long; JetStream
/// redelivers far sooner, and the plate stream's dedup window is 10 minutes.
pub const DELIVERED_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub nats: NatsArgs,
    /// The config service's gRPC address, e.g. `http://anpr-config:50051`.
    pub config_url: String,
    /// Address of /healthz, /readyz and /metrics.
    pub http_listen: SocketAddr,
    pub delivery: DeliverySettings,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("creating the dead-letter stream: {0}")]
    DeadLetterStream(String),
    #[error("invalid config service URL {url}: {source}")]
    ConfigUrl {
        url: String,
        /// The gRPC transport error, boxed: tonic is not a direct dependency.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("health endpoint on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the bridge until `shutdown`: connects to NATS, prepares the streams
/// and buckets, follows the configuration and delivers.
pub async fn run(options: BridgeOptions, shutdown: CancellationToken) -> Result<(), BridgeError> {
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let readiness = Readiness::default();
    let (http_addr, http_task) = health::serve(
        options.http_listen,
        readiness.clone(),
        Arc::new(registry),
        shutdown.clone(),
    )
    .await
    .map_err(|source| BridgeError::Http {
        addr: options.http_listen,
        source,
    })?;
    tracing::info!(http = %http_addr, "anpr-vms-bridge health endpoint listening");

    let client = options
        .nats
        .connect_with_retry("anpr-vms-bridge", &shutdown)
        .await?;
    let js = jetstream::new(client.clone());
    let replicas = options.nats.replicas;
    let plates = bus::ensure_plate_stream(&js, replicas).await?;
    js.get_or_create_stream(jetstream::stream::Config {
        name: subjects::DEAD_LETTER_STREAM.to_string(),
        description: Some("Plate events a VMS refused for good".to_string()),
        subjects: vec![subjects::DEAD_LETTER_SUBJECTS.to_string()],
        storage: jetstream::stream::StorageType::File,
        max_age: DEAD_LETTER_RETENTION,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|err| BridgeError::DeadLetterStream(err.to_string()))?;
    let status_kv = bus::open_kv_bucket(
        &js,
        BucketSpec {
            bucket: subjects::VMS_STATUS_BUCKET,
            description: "Delivery status of each VMS target, by the vms-bridge",
            history: 1,
            max_age: None,
            replicas,
        },
    )
    .await?;
    let delivered = bus::open_kv_bucket(
        &js,
        BucketSpec {
            bucket: subjects::VMS_DELIVERED_BUCKET,
            description: "Plate events already delivered to each VMS target",
            history: 1,
            max_age: Some(DELIVERED_RETENTION),
            replicas,
        },
    )
    .await?;

    let config = ConfigWatch::spawn(&options.config_url, shutdown.clone()).map_err(|source| {
        BridgeError::ConfigUrl {
            url: options.config_url.clone(),
            source: Box::new(source),
        }
    })?;
    readiness.set(true);
    let shared = Arc::new(delivery::Shared {
        js,
        plates,
        status_kv,
        delivered: dedupe::Delivered::new(delivered),
        metrics,
        config: config.clone(),
        settings: options.delivery,
    });
    supervisor::supervise(shared, config, shutdown.clone()).await;
    readiness.set(false);
    // Acks are buffered publishes: send the last ones before the connection
    // goes, or their events would wait a whole ack_wait to be redelivered.
    bus::at_shutdown("flushing the last acknowledgements", client.flush()).await;
    let _ = http_task.await;
    tracing::info!("anpr-vms-bridge stopped");
    Ok(())
}
