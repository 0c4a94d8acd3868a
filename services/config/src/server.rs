//! Starts the config service: NATS, storage, the gRPC API with its health
//! service, and the health/metrics HTTP endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anpr_common::bus::{self, BusError, NatsArgs};
use anpr_common::health::{self, Readiness};
use anpr_common::proto::config_server::ConfigServer;
use prometheus_client::registry::Registry;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::api::ConfigApi;
use crate::metrics::Metrics;
use crate::store::{ConfigStore, StoreError};

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub nats: NatsArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("opening the configuration buckets: {0}")]
    Store(#[from] StoreError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("health endpoint failed: {0}")]
    Http(std::io::Error),
    #[error("server task panicked: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How long open connections may take to finish after shutdown began.
/// Kubernetes waits 30 s before SIGKILL; a client that never closes its
/// connection must not use all of it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A started config service.
pub struct RunningServer {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    shutdown: CancellationToken,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Waits until both servers stopped: after the shutdown token fired, open
    /// connections get [`DRAIN_TIMEOUT`] to finish, then are dropped.
    pub async fn wait(mut self) -> Result<(), ServerError> {
        tokio::select! {
            result = &mut self.grpc => return Self::finish(result, self.http).await,
            _ = self.shutdown.cancelled() => {}
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut self.grpc).await {
            Ok(result) => Self::finish(result, self.http).await,
            Err(_) => {
                tracing::warn!(
                    timeout_s = DRAIN_TIMEOUT.as_secs(),
                    "gRPC connections still open after the drain timeout; closing them"
                );
                self.grpc.abort();
                self.http.abort();
                Ok(())
            }
        }
    }

    async fn finish(
        grpc: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
        http: tokio::task::JoinHandle<std::io::Result<()>>,
    ) -> Result<(), ServerError> {
        grpc??;
        match tokio::time::timeout(DRAIN_TIMEOUT, http).await {
            Ok(result) => result?.map_err(ServerError::Http),
            Err(_) => Ok(()),
        }
    }
}

/// Connects to NATS, opens the buckets and starts serving; returns once both
/// listeners are bound. Everything stops when `shutdown` is cancelled.
pub async fn start(
    options: ServerOptions,
    shutdown: CancellationToken,
) -> Result<RunningServer, ServerError> {
    let client = options
        .nats
        .connect_with_retry("anpr-config", &shutdown)
        .await?;
    let js = async_nats::jetstream::new(client.clone());
    let store = ConfigStore::open(&js, options.nats.replicas).await?;
    // The plate stream is part of the bus every service relies on; creating
    // it here means it exists before any consumer starts.
    bus::ensure_plate_stream(&js, options.nats.replicas).await?;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    let (http_addr, http) = health::serve(
        options.http_listen,
        readiness.clone(),
        Arc::new(registry),
        shutdown.clone(),
    )
    .await
    .map_err(|source| ServerError::Bind {
        addr: options.http_listen,
        source,
    })?;

    let listener = tokio::net::TcpListener::bind(options.grpc_listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: options.grpc_listen,
            source,
        })?;
    let grpc_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: options.grpc_listen,
        source,
    })?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ConfigServer<ConfigApi>>()
        .await;
    let api = ConfigApi::new(store, metrics, shutdown.clone());
    let grpc_shutdown = shutdown.clone();
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(ConfigServer::new(api))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                grpc_shutdown.cancelled_owned(),
            ),
    );

    // Ready while NATS is connected: without it every call would fail.
    tokio::spawn(track_readiness(client, readiness, shutdown.clone()));
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        shutdown: shutdown.clone(),
        grpc,
        http,
    })
}

async fn track_readiness(
    client: async_nats::Client,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if connected != readiness.is_ready() {
            tracing::info!(connected, "NATS connection state changed");
        }
        readiness.set(connected);
    }
    readiness.set(false);
}
