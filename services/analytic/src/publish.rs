//! Publishing plate events to the JetStream plate stream: acknowledged,
//! deduplicated by event id, retried until stored.

use std::time::Duration;

use anpr_common::proto::PlateEvent;
use anpr_common::{subjects, trace_context};
use async_nats::jetstream;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::metrics::{KindLabels, Metrics};

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("event {event_id} has no kind and cannot be published")]
    NoKind { event_id: String },
    #[error(
        "gave up publishing event {event_id} at the shutdown deadline (last error: {last_error})"
    )]
    Abandoned {
        event_id: String,
        last_error: String,
    },
}

pub struct Publisher {
    js: jetstream::Context,
    metrics: Metrics,
}

impl Publisher {
    pub fn new(js: jetstream::Context, metrics: Metrics) -> Self {
        Publisher { js, metrics }
    }

    /// Publishes `event` with `Nats-Msg-Id` = its event id and the trace
    /// context of the current span, and waits for JetStream's acknowledgement.
    /// A failed attempt is retried with back-off and the same id, so a publish
    /// whose acknowledgement was lost is stored once. Only `give_up` (the
    /// shutdown deadline) ends the retries.
    pub async fn publish(
        &self,
        event: &PlateEvent,
        give_up: &CancellationToken,
    ) -> Result<(), PublishError> {
        let kind = event.kind();
        let (Some(subject), Some(kind_label)) = (
            subjects::plates(&event.camera_id, kind),
            kind.subject_token(),
        ) else {
            return Err(PublishError::NoKind {
                event_id: event.event_id.clone(),
            });
        };
        let mut headers = trace_context::current_headers();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
        let payload = bytes::Bytes::from(event.encode_to_vec());

        let mut delay = RETRY_FIRST;
        loop {
            let error = match self
                .js
                .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(ack) => {
                        self.metrics
                            .events_published
                            .get_or_create(&KindLabels { kind: kind_label })
                            .inc();
                        tracing::info!(
                            event_id = %event.event_id,
                            track_id = %event.track_id,
                            camera = %event.camera_id,
                            kind = kind_label,
                            plate = %event.plate_text,
                            duplicate = ack.duplicate,
                            "plate event published"
                        );
                        return Ok(());
                    }
                    Err(error) => error.to_string(),
                },
                Err(error) => error.to_string(),
            };
            if give_up.is_cancelled() {
                return Err(PublishError::Abandoned {
                    event_id: event.event_id.clone(),
                    last_error: error,
                });
            }
            self.metrics.publish_retries.inc();
            tracing::warn!(
                event_id = %event.event_id,
                %error,
                retry_in_ms = delay.as_millis() as u64,
                "publishing plate event failed; retrying"
            );
            tokio::select! {
                _ = give_up.cancelled() => {}
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(RETRY_MAX);
        }
    }
}
