//! The durable JetStream consumer of one VMS target on `ANPR_PLATES`.
//!
//! Ordering and replicas: every bridge replica pulls from the same durable
//! consumer, so JetStream shares a target's events among the replicas. With
//! `max_ack_pending = 1` the server hands out the next event only after the
//! previous one was acknowledged, whichever replica held it. That keeps the
//! events of a camera (indeed of the whole target) in stream order even with
//! several replicas, and a retrying replica keeps its event by sending
//! `AckKind::Progress` well within `ack_wait`, so it is not redelivered to
//! another replica meanwhile. The price is one event in flight per target,
//! which a VMS on a LAN easily absorbs; targets do not wait for each other.

use std::time::Duration;

use anpr_common::proto::{EventSelection, PlateEventKind};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;

/// Durable consumer name of a target (target names are valid NATS names).
pub fn durable_name(target: &str) -> String {
    format!("vms-bridge-{target}")
}

/// The stream filter of an event selection. nats-server 2.9 has no
/// multi-subject filters, so "both" takes every kind and the worker skips
/// UPDATE events.
pub fn filter_subject(selection: EventSelection) -> &'static str {
    match selection {
        EventSelection::Detect | EventSelection::Unspecified => "anpr.v1.plates.*.detect",
        EventSelection::Lost => "anpr.v1.plates.*.lost",
        EventSelection::Both => "anpr.v1.plates.>",
    }
}

/// Whether a target with `selection` delivers events of `kind`.
pub fn wants(selection: EventSelection, kind: PlateEventKind) -> bool {
    match selection {
        EventSelection::Detect | EventSelection::Unspecified => kind == PlateEventKind::Detect,
        EventSelection::Lost => kind == PlateEventKind::Lost,
        EventSelection::Both => matches!(kind, PlateEventKind::Detect | PlateEventKind::Lost),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("reading consumer {name}: {message}")]
    Info { name: String, message: String },
    #[error("deleting consumer {name}: {message}")]
    Delete { name: String, message: String },
    #[error("creating consumer {name}: {message}")]
    Create { name: String, message: String },
}

/// Opens the target's consumer, creating it, or re-creating it when its
/// filter or delivery settings differ (the operator changed the event
/// choice). New consumers start with events published from now on.
pub async fn ensure(
    stream: &Stream,
    target: &str,
    selection: EventSelection,
    ack_wait: Duration,
) -> Result<PullConsumer, ConsumerError> {
    let name = durable_name(target);
    let desired = pull::Config {
        durable_name: Some(name.clone()),
        description: Some(format!("vms-bridge delivery to VMS target {target}")),
        filter_subject: filter_subject(selection).to_string(),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: 1,
        // Never give up on an event: failures the VMS will never accept are
        // dead-lettered by the bridge itself.
        max_deliver: -1,
        ..Default::default()
    };
    match stream.consumer_info(&name).await {
        Ok(info) => {
            let same = info.config.filter_subject == desired.filter_subject
                && info.config.max_ack_pending == 1
                && info.config.ack_wait == ack_wait;
            if same {
                return get(stream, &name).await;
            }
            tracing::info!(consumer = %name, old = %info.config.filter_subject, new = %desired.filter_subject, "re-creating consumer for the changed event choice");
            delete(stream, target).await?;
        }
        Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {}
        Err(err) => {
            return Err(ConsumerError::Info {
                name,
                message: err.to_string(),
            })
        }
    }
    match stream.create_consumer(desired).await {
        Ok(consumer) => Ok(consumer),
        // Another replica created it at the same moment.
        Err(create) => get(stream, &name).await.map_err(|_| ConsumerError::Create {
            name,
            message: create.to_string(),
        }),
    }
}

async fn get(stream: &Stream, name: &str) -> Result<PullConsumer, ConsumerError> {
    stream
        .get_consumer(name)
        .await
        .map_err(|err| ConsumerError::Info {
            name: name.to_string(),
            message: err.to_string(),
        })
}

/// Deletes the target's consumer; a missing one is fine.
pub async fn delete(stream: &Stream, target: &str) -> Result<(), ConsumerError> {
    let name = durable_name(target);
    match stream.delete_consumer(&name).await {
        Ok(_) => Ok(()),
        Err(err) if err.to_string().contains("not found") => Ok(()),
        Err(err) => Err(ConsumerError::Delete {
            name,
            message: err.to_string(),
        }),
    }
}

/// Events selected for the target and not yet acknowledged.
pub async fn queue_depth(stream: &Stream, target: &str) -> Option<u64> {
    let info = stream.consumer_info(durable_name(target)).await.ok()?;
    Some(info.num_pending + info.num_ack_pending as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_map_to_filters_and_kinds() {
        assert_eq!(
            filter_subject(EventSelection::Detect),
            "anpr.v1.plates.*.detect"
        );
        assert_eq!(
            filter_subject(EventSelection::Unspecified),
            "anpr.v1.plates.*.detect"
        );
        assert_eq!(
            filter_subject(EventSelection::Lost),
            "anpr.v1.plates.*.lost"
        );
        assert_eq!(filter_subject(EventSelection::Both), "anpr.v1.plates.>");
        assert!(wants(EventSelection::Both, PlateEventKind::Lost));
        assert!(!wants(EventSelection::Both, PlateEventKind::Update));
        assert!(!wants(EventSelection::Detect, PlateEventKind::Lost));
        assert!(!wants(EventSelection::Lost, PlateEventKind::Detect));
        assert_eq!(durable_name("nx-main"), "vms-bridge-nx-main");
    }
}
