//! The worker of one VMS target: pulls its plate events from the durable
//! consumer, posts each to the VMS, and acknowledges it only once it was
//! delivered or refused for good (dead-lettered). While a delivery is being
//! retried the message is kept with `AckKind::Progress`, so nothing is lost
//! while the VMS is down and the next event waits (order is kept).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anpr_common::config_watch::ConfigWatch;
use anpr_common::prost_types::Timestamp;
use anpr_common::proto::{DeadLetter, PlateEvent, StoredSecret, VmsAuth, VmsTarget};
use anpr_common::{subjects, trace_context};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt as _;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::backoff::Backoff;
use crate::consumer;
use crate::dedupe::Delivered;
use crate::metrics::{Metrics, TargetMetrics};
use crate::nx::auth::{AuthMethod, Secret};
use crate::nx::client::{ClientOptions, Endpoint, NxClient, NxError};
use crate::nx::devices::CameraKey;
use crate::nx::events::generic_event;
use crate::nx::tls::Trust;
use crate::status::{self, StatusBoard};

/// Tunables of the delivery loop.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The consumer's ack wait. Default 30 s.
    pub ack_wait: Duration,
    /// How often a held message is kept with `AckKind::Progress`; well below
    /// `ack_wait`. Default 10 s.
    pub progress_every: Duration,
    /// First retry wait. Default 250 ms.
    pub backoff_base: Duration,
    /// Longest retry wait. Default 30 s.
    pub backoff_cap: Duration,
    /// Status is written at least this often. Default 5 s.
    pub status_every: Duration,
    /// How long one pull request waits for an event; also the longest a
    /// worker takes to stop when idle. Default 5 s.
    pub pull_expiry: Duration,
    pub client: ClientOptions,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            ack_wait: Duration::from_secs(30),
            progress_every: Duration::from_secs(10),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            status_every: Duration::from_secs(5),
            pull_expiry: Duration::from_secs(5),
            client: ClientOptions::default(),
        }
    }
}

/// What every worker shares.
pub struct Shared {
    pub js: jetstream::Context,
    pub plates: jetstream::stream::Stream,
    pub status_kv: jetstream::kv::Store,
    pub delivered: Delivered,
    pub metrics: Metrics,
    pub config: ConfigWatch,
    pub settings: DeliverySettings,
}

#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error("{0}")]
    Setup(String),
    #[error("plate consumer failed: {0}")]
    Consumer(String),
}

/// Runs the target until `shutdown`, restarting its set-up after failures
/// (no password yet, NATS away, consumer deleted) with back-off.
pub async fn run_target(shared: Arc<Shared>, target: VmsTarget, shutdown: CancellationToken) {
    let name = target.name.clone();
    let board = Arc::new(StatusBoard::default());
    let publisher_stop = shutdown.child_token();
    let publisher = tokio::spawn(status::publish_loop(
        board.clone(),
        shared.status_kv.clone(),
        shared.plates.clone(),
        name.clone(),
        shared.settings.status_every,
        publisher_stop.clone(),
    ));
    let mut backoff = Backoff::new(shared.settings.backoff_base, shared.settings.backoff_cap);
    loop {
        match run_once(&shared, &target, &board, &shutdown).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(target_name = %name, error = %err, "VMS target worker failed; restarting");
                board.error(&err.to_string());
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
    publisher_stop.cancel();
    let _ = publisher.await;
}

async fn read_password(js: &jetstream::Context, target: &str) -> Result<Secret, WorkerError> {
    let secrets = js
        .get_key_value(subjects::SECRETS_BUCKET)
        .await
        .map_err(|err| WorkerError::Setup(format!("opening the secrets bucket: {err}")))?;
    let entry = secrets
        .get(format!("vms.{target}"))
        .await
        .map_err(|err| WorkerError::Setup(format!("reading the target's password: {err}")))?
        .ok_or_else(|| WorkerError::Setup("no password stored for this target".into()))?;
    let stored = StoredSecret::decode(entry)
        .map_err(|_| WorkerError::Setup("stored password record is unreadable".into()))?;
    Ok(Secret::new(stored.password))
}

fn endpoint(target: &VmsTarget, password: Secret) -> Result<Endpoint, WorkerError> {
    use anpr_common::proto::TlsTrust;
    let trust = match target.tls_trust() {
        TlsTrust::Unspecified | TlsTrust::Verify => Trust::Verify,
        TlsTrust::Insecure => Trust::Insecure,
        TlsTrust::Pinned => Trust::pinned(&target.pinned_cert_sha256)
            .map_err(|err| WorkerError::Setup(err.to_string()))?,
    };
    let auth = match target.auth() {
        VmsAuth::Unspecified | VmsAuth::Auto => None,
        VmsAuth::Bearer => Some(AuthMethod::Bearer),
        VmsAuth::Digest => Some(AuthMethod::Digest),
        VmsAuth::Basic => Some(AuthMethod::Basic),
    };
    Ok(Endpoint {
        target: target.name.clone(),
        host: target.host.clone(),
        port: target
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(7001),
        use_ssl: target.use_ssl,
        trust,
        login: target.login.clone(),
        password,
        auth,
    })
}

async fn run_once(
    shared: &Shared,
    target: &VmsTarget,
    board: &StatusBoard,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    let password = read_password(&shared.js, &target.name).await?;
    let mut client = NxClient::new(endpoint(target, password)?, shared.settings.client.clone())
        .map_err(|err| WorkerError::Setup(err.to_string()))?;
    let consumer = consumer::ensure(
        &shared.plates,
        &target.name,
        target.events(),
        shared.settings.ack_wait,
    )
    .await
    .map_err(|err| WorkerError::Consumer(err.to_string()))?;
    tracing::info!(target_name = %target.name, filter = consumer::filter_subject(target.events()), "delivering to VMS target");
    let mut worker = Worker {
        shared,
        target,
        board,
        metrics: shared.metrics.for_target(&target.name),
        client: &mut client,
        logins_seen: 0,
    };
    // One pull request for one message at a time, each left to finish even
    // when shutdown comes: a request abandoned on the server would take the
    // next event to a subscriber that is gone, and it would sit unacked for
    // a whole ack_wait. Shutdown therefore waits at most `pull_expiry`.
    while !shutdown.is_cancelled() {
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(shared.settings.pull_expiry)
            .messages()
            .await
            .map_err(|err| WorkerError::Consumer(err.to_string()))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|err| WorkerError::Consumer(err.to_string()))?;
            if shutdown.is_cancelled() {
                ack(&message, AckKind::Nak(None)).await;
                continue;
            }
            if worker.handle(message, shutdown).await == Handled::Stopped {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Handled {
    Done,
    Stopped,
}

/// How one event ended.
enum Fate {
    Delivered,
    Refused { reason: String, http_status: u16 },
    Stopped,
}

struct Worker<'a> {
    shared: &'a Shared,
    target: &'a VmsTarget,
    board: &'a StatusBoard,
    metrics: TargetMetrics,
    client: &'a mut NxClient,
    logins_seen: u64,
}

impl Worker<'_> {
    async fn handle(
        &mut self,
        message: jetstream::Message,
        shutdown: &CancellationToken,
    ) -> Handled {
        let name = &self.target.name;
        let event = match PlateEvent::decode(message.payload.clone()) {
            Ok(event) => event,
            Err(err) => {
                let reason = format!("undecodable plate event: {err}");
                return self.refuse(&message, None, &reason, 0, shutdown).await;
            }
        };
        if !consumer::wants(self.target.events(), event.kind()) {
            ack(&message, AckKind::Ack).await;
            return Handled::Done;
        }
        match self.shared.delivered.contains(name, &event.event_id).await {
            Ok(true) => {
                tracing::debug!(target_name = %name, event_id = %event.event_id, "already delivered; skipping");
                self.metrics.duplicates_skipped.inc();
                ack(&message, AckKind::Ack).await;
                return Handled::Done;
            }
            Ok(false) => {}
            // Not knowing is no reason to hold the event: deliver it.
            Err(err) => {
                tracing::warn!(target_name = %name, error = %err, "delivered-events check failed")
            }
        }

        let span = tracing::info_span!(
            "vms.deliver",
            target_name = %name,
            event_id = %event.event_id,
            camera_id = %event.camera_id,
            kind = ?event.kind(),
        );
        trace_context::set_parent_from(&span, message.headers.as_ref());

        // Keep the message ours while the delivery (with its retries) runs.
        let progress_every = self.shared.settings.progress_every;
        let fate = {
            let delivery = self.deliver(&event, shutdown).instrument(span.clone());
            tokio::pin!(delivery);
            let mut ticker = tokio::time::interval_at(
                tokio::time::Instant::now() + progress_every,
                progress_every,
            );
            loop {
                tokio::select! {
                    fate = &mut delivery => break fate,
                    _ = ticker.tick() => ack(&message, AckKind::Progress).await,
                }
            }
        };
        match fate {
            Fate::Delivered => {
                if let Err(err) = self.shared.delivered.mark(name, &event.event_id).await {
                    // Acked anyway: holding the event would post it twice.
                    tracing::warn!(target_name = %name, error = %err, "recording the delivery failed");
                }
                ack(&message, AckKind::Ack).await;
                self.metrics.delivered.inc();
                self.board.success();
                Handled::Done
            }
            Fate::Refused {
                reason,
                http_status,
            } => {
                let _entered = span.enter();
                tracing::warn!(target_name = %name, event_id = %event.event_id, %reason, "VMS refused the event for good; dead-lettering it");
                drop(_entered);
                self.refuse(&message, Some(event), &reason, http_status, shutdown)
                    .await
            }
            Fate::Stopped => {
                // Back to the stream at once, for another replica or the restart.
                ack(&message, AckKind::Nak(None)).await;
                Handled::Stopped
            }
        }
    }

    /// Posts the event, retrying transient failures until success, a
    /// permanent refusal, or shutdown.
    async fn deliver(&mut self, event: &PlateEvent, shutdown: &CancellationToken) -> Fate {
        let settings = &self.shared.settings;
        let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_cap);
        loop {
            let result = self.attempt(event).await;
            self.sync_client_state();
            match result {
                Ok(()) => return Fate::Delivered,
                Err(NxError::Permanent {
                    reason,
                    http_status,
                }) => {
                    return Fate::Refused {
                        reason,
                        http_status,
                    }
                }
                Err(NxError::Transient(reason)) => {
                    self.metrics.retries.inc();
                    self.board.error(&reason);
                    let wait = backoff.next_delay();
                    tracing::warn!(target_name = %self.target.name, error = %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Fate::Stopped,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn attempt(&mut self, event: &PlateEvent) -> Result<(), NxError> {
        let config = self.shared.config.current();
        let camera = config.cameras.get(&event.camera_id);
        let key = CameraKey {
            camera_id: event.camera_id.clone(),
            ip_address: camera
                .map(|c| c.ip_address.clone())
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| event.camera_ip.clone()),
            vms_camera_id: camera.map(|c| c.vms_camera_id.clone()).unwrap_or_default(),
            encoder_channel: camera.and_then(|c| c.encoder_channel),
        };
        let source = camera
            .map(|c| c.name.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| event.camera_id.clone());
        let mapping = self.client.map_camera(&key).await?;
        let problem = mapping.problem();
        if self.board.camera_problem(&event.camera_id, problem) {
            match problem {
                Some(text) => {
                    tracing::warn!(target_name = %self.target.name, problem = %text, "camera not mapped to a VMS camera; sending without camera references")
                }
                None => {
                    tracing::info!(target_name = %self.target.name, camera_id = %event.camera_id, "camera mapped to a VMS camera again")
                }
            }
        }
        if problem.is_some() {
            self.metrics.camera_mapping_misses.inc();
        }
        let Some(generic) = generic_event(event, &source, self.target.prolonged, mapping.refs())
        else {
            // Filtered out before; an UPDATE here has nothing to send.
            return Ok(());
        };
        let started = Instant::now();
        let result = self.client.post_event(&generic).await;
        self.metrics
            .post_latency
            .observe(started.elapsed().as_secs_f64());
        result
    }

    fn sync_client_state(&mut self) {
        if let Some(server) = self.client.server_info() {
            self.board.set_server(&server.describe());
        }
        let logins = self.client.logins;
        if logins > self.logins_seen {
            self.metrics.logins.inc_by(logins - self.logins_seen);
            self.logins_seen = logins;
        }
    }

    /// Dead-letters the event, then acks it; on shutdown before the letter
    /// was stored, hands the event back instead.
    async fn refuse(
        &mut self,
        message: &jetstream::Message,
        event: Option<PlateEvent>,
        reason: &str,
        http_status: u16,
        shutdown: &CancellationToken,
    ) -> Handled {
        if self.dead_letter(event, reason, http_status, shutdown).await {
            ack(message, AckKind::Ack).await;
            Handled::Done
        } else {
            ack(message, AckKind::Nak(None)).await;
            Handled::Stopped
        }
    }

    /// Publishes a `DeadLetter` into its stream, retrying until it is stored,
    /// and counts it. False if shutdown came first.
    async fn dead_letter(
        &mut self,
        event: Option<PlateEvent>,
        reason: &str,
        http_status: u16,
        shutdown: &CancellationToken,
    ) -> bool {
        let name = &self.target.name;
        let letter = DeadLetter {
            target: name.clone(),
            event,
            reason: reason.to_string(),
            http_status: u32::from(http_status),
            failed_at: Some(Timestamp::from(SystemTime::now())),
        };
        let payload = bytes::Bytes::from(letter.encode_to_vec());
        let mut backoff = Backoff::new(
            self.shared.settings.backoff_base,
            self.shared.settings.backoff_cap,
        );
        loop {
            let stored = match self
                .shared
                .js
                .publish_with_headers(
                    subjects::dead_letter(name),
                    trace_context::current_headers(),
                    payload.clone(),
                )
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match stored {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(target_name = %name, error = %err, "storing a dead letter failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
        self.metrics.dead_lettered.inc();
        self.board.dead_lettered(reason);
        true
    }
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        tracing::warn!(error = %err, "acknowledging a plate event failed");
    }
}
