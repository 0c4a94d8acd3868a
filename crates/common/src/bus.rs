//! Connection to the NATS bus, shared by every service and by `anprctl`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::subjects;

/// How a service reaches NATS. Every field has a flag and an environment
/// variable; secrets are taken from the environment or a file, and are never
/// shown by `Debug`.
#[derive(Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// NATS credentials file (JWT + nkey seed). Default: none.
    #[arg(long = "nats-creds", env = "NATS_CREDS")]
    pub creds_file: Option<PathBuf>,
    /// NATS user name, used with NATS_PASSWORD. Default: none.
    #[arg(long = "nats-user", env = "NATS_USER")]
    pub user: Option<String>,
    /// NATS password (environment only).
    #[arg(
        long = "nats-password",
        env = "NATS_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub password: Option<String>,
    /// NATS token (environment only).
    #[arg(
        long = "nats-token",
        env = "NATS_TOKEN",
        hide_env_values = true,
        hide = true
    )]
    pub token: Option<String>,
    /// CA certificate (PEM) that signs the NATS server's certificate; implies TLS.
    #[arg(long = "nats-tls-ca", env = "NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, used with --nats-tls-key.
    #[arg(long = "nats-tls-cert", env = "NATS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long = "nats-tls-key", env = "NATS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Replicas of the streams and buckets this service creates (1 or 3 in a
    /// NATS cluster). Default 1.
    #[arg(long = "nats-replicas", env = "NATS_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
}

impl fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsArgs")
            .field("url", &self.url)
            .field("creds_file", &self.creds_file)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl NatsArgs {
    /// Arguments for a server at `url` without auth or TLS (tests, tools).
    pub fn plain(url: impl Into<String>) -> Self {
        NatsArgs {
            url: url.into(),
            creds_file: None,
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            replicas: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("reading NATS credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--nats-user needs NATS_PASSWORD")]
    UserWithoutPassword,
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("stopped before NATS at {url} could be reached")]
    Cancelled { url: String },
    #[error("creating JetStream stream {name}: {source}")]
    Stream {
        name: String,
        source: jetstream::context::CreateStreamError,
    },
    #[error("opening key-value bucket {bucket}: {source}")]
    Bucket {
        bucket: String,
        source: jetstream::context::KeyValueError,
    },
}

impl NatsArgs {
    async fn options(&self, client_name: &str) -> Result<async_nats::ConnectOptions, BusError> {
        let mut options = match &self.creds_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
                .await
                .map_err(|source| BusError::Credentials {
                    path: path.clone(),
                    source,
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(user) = &self.user {
            let password = self.password.clone().ok_or(BusError::UserWithoutPassword)?;
            options = options.user_and_password(user.clone(), password);
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options
            .name(client_name)
            .connection_timeout(Duration::from_secs(5))
            // A service keeps its subscriptions across server restarts; keep
            // trying for as long as it runs.
            .max_reconnects(None))
    }

    /// Connects once, failing at once if the server cannot be reached.
    pub async fn connect(&self, client_name: &str) -> Result<async_nats::Client, BusError> {
        let options = self.options(client_name).await?;
        // A comma-separated list names several servers of a cluster; the
        // client takes them as a list (not as one string).
        let servers: Vec<&str> = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .collect();
        options
            .connect(servers.as_slice())
            .await
            .map_err(|source| BusError::Connect {
                url: self.url.clone(),
                source,
            })
    }

    /// Connects, retrying with backoff while NATS is not up yet (as on a
    /// cluster start where pods come up in any order), until `shutdown`.
    pub async fn connect_with_retry(
        &self,
        client_name: &str,
        shutdown: &CancellationToken,
    ) -> Result<async_nats::Client, BusError> {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.connect(client_name).await {
                Ok(client) => return Ok(client),
                Err(err @ (BusError::Credentials { .. } | BusError::UserWithoutPassword)) => {
                    return Err(err)
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "NATS not reachable yet");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(BusError::Cancelled { url: self.url.clone() }),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// How long JetStream remembers a `Nats-Msg-Id` to drop a repeated publish.
pub const PLATE_DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long plate events are kept for consumers that were away.
pub const PLATE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Creates the plate-event stream if it does not exist yet. Safe to call from
/// every replica of every service that needs it.
pub async fn ensure_plate_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<jetstream::stream::Stream, BusError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: subjects::PLATE_STREAM.to_string(),
        description: Some("ANPR plate events (public topic)".to_string()),
        subjects: vec![subjects::PLATE_STREAM_SUBJECTS.to_string()],
        storage: jetstream::stream::StorageType::File,
        duplicate_window: PLATE_DEDUP_WINDOW,
        max_age: PLATE_RETENTION,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|source| BusError::Stream {
        name: subjects::PLATE_STREAM.to_string(),
        source,
    })
}

/// How a key-value bucket is made by [`open_kv_bucket`].
#[derive(Debug, Clone)]
pub struct BucketSpec<'a> {
    pub bucket: &'a str,
    pub description: &'a str,
    /// Values kept per key (1 = latest only).
    pub history: i64,
    /// Entries older than this are dropped; `None` keeps them forever.
    pub max_age: Option<Duration>,
    pub replicas: usize,
}

/// Opens the key-value bucket, creating it if it does not exist yet. Safe to
/// call from every replica at once.
pub async fn open_kv_bucket(
    js: &jetstream::Context,
    spec: BucketSpec<'_>,
) -> Result<jetstream::kv::Store, BusError> {
    // The bucket's stream is created here rather than with
    // `create_key_value`: that one first reads the account info, which
    // async-nats 0.51 cannot parse from nats-server 2.9 (no
    // `reserved_memory`). The stream follows the KV conventions (ADR-8).
    let stream = jetstream::stream::Config {
        name: format!("KV_{}", spec.bucket),
        description: Some(spec.description.to_string()),
        subjects: vec![format!("$KV.{}.>", spec.bucket)],
        max_messages_per_subject: spec.history,
        max_age: spec.max_age.unwrap_or_default(),
        storage: jetstream::stream::StorageType::File,
        num_replicas: spec.replicas,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|source| BusError::Stream {
            name: format!("KV_{}", spec.bucket),
            source,
        })?;
    js.get_key_value(spec.bucket)
        .await
        .map_err(|source| BusError::Bucket {
            bucket: spec.bucket.to_string(),
            source,
        })
}

/// Longest a service waits at shutdown for a last NATS round trip
/// (unsubscribing, flushing what the client still buffers).
pub const SHUTDOWN_NATS_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs one last NATS round trip of a stopping service, giving up after
/// [`SHUTDOWN_NATS_TIMEOUT`]: with the server unreachable, async-nats waits
/// for a reconnection that may never come, and SIGTERM must still stop the
/// service. `what` names the step in the log line of a failure.
pub async fn at_shutdown<T, E: fmt::Display>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, E>>,
) {
    match tokio::time::timeout(SHUTDOWN_NATS_TIMEOUT, step).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "{what} at shutdown failed"),
        Err(_) => tracing::warn!(
            timeout_s = SHUTDOWN_NATS_TIMEOUT.as_secs(),
            "{what} at shutdown: NATS did not answer; stopping anyway"
        ),
    }
}
