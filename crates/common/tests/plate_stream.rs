//! The plate-event stream against a real nats-server: created once, stores
//! each event id once, and gives the event back unchanged.

use std::time::Duration;

use anpr_common::bus::{ensure_plate_stream, NatsArgs, PLATE_DEDUP_WINDOW, PLATE_RETENTION};
use anpr_common::proto::{BoundingBox, PlateCandidate, PlateEvent, PlateEventKind};
use anpr_common::subjects;
use anpr_testkit::NatsServer;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, publish::PublishAck, stream::StorageType};
use async_nats::HeaderMap;
use prost::Message;
use prost_types::Timestamp;

async fn jetstream(server: &NatsServer) -> jetstream::Context {
    let client = NatsArgs::plain(server.url())
        .connect("test")
        .await
        .expect("connecting to the test nats-server");
    jetstream::new(client)
}

fn event(event_id: &str) -> PlateEvent {
    PlateEvent {
        event_id: event_id.into(),
        kind: PlateEventKind::Detect as i32,
        track_id: "0194f3c2-79f0-7d11-8c2b-5e9a0f1d3b77".into(),
        camera_id: "gate-1".into(),
        camera_ip: "192.0.2.17".into(),
        plate_text: "AB123CD".into(),
        raw_text: "AB 123 CD".into(),
        confidence: 0.93,
        candidates: vec![PlateCandidate {
            text: "A8123CD".into(),
            confidence: 0.22,
        }],
        first_seen: Some(Timestamp {
            seconds: 1_767_225_600,
            nanos: 125_000_000,
        }),
        last_seen: Some(Timestamp {
            seconds: 1_767_225_600,
            nanos: 125_000_000,
        }),
        read_count: 3,
        best_crop_jpeg: Some(vec![0xFF, 0xD8, 0x01, 0xFF, 0xD9]),
        best_bbox: Some(BoundingBox {
            x: 10.0,
            y: 20.0,
            width: 120.0,
            height: 30.0,
        }),
        event_time: Some(Timestamp {
            seconds: 1_767_225_600,
            nanos: 125_000_000,
        }),
    }
}

/// Publishes `event` on its subject the way the analytic must: with
/// `Nats-Msg-Id` = `event_id`. Returns the stream's ack.
async fn publish(js: &jetstream::Context, event: &PlateEvent) -> PublishAck {
    let subject =
        subjects::plates(&event.camera_id, event.kind()).expect("the event has a subject");
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, event.event_id.as_str());
    js.publish_with_headers(subject, headers, event.encode_to_vec().into())
        .await
        .expect("publishing to JetStream")
        .await
        .expect("JetStream acknowledges the event")
}

async fn stored_messages(stream: &mut jetstream::stream::Stream) -> u64 {
    stream.info().await.expect("stream info").state.messages
}

#[tokio::test]
async fn ensure_plate_stream_is_idempotent() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;

    let mut first = ensure_plate_stream(&js, 1)
        .await
        .expect("creating the stream");
    let created = first.info().await.expect("stream info").created;
    publish(&js, &event("0194f3c2-7a10-7c3e-9b1a-2f6d8e4c5a01")).await;

    let mut second = ensure_plate_stream(&js, 1)
        .await
        .expect("ensuring the existing stream");
    let info = second.info().await.expect("stream info").clone();
    assert_eq!(info.config.name, "ANPR_PLATES");
    assert_eq!(info.config.subjects, ["anpr.v1.plates.>"]);
    assert!(info.config.duplicate_window > Duration::ZERO);
    assert_eq!(info.config.duplicate_window, PLATE_DEDUP_WINDOW);
    assert_eq!(info.config.max_age, PLATE_RETENTION);
    assert_eq!(info.config.storage, StorageType::File);
    // Same stream, not a new one: same creation time, the event still there.
    assert_eq!(info.created, created);
    assert_eq!(info.state.messages, 1);

    let mut names = js.stream_names();
    let mut all = Vec::new();
    while let Some(name) = futures::StreamExt::next(&mut names).await {
        all.push(name.expect("stream name"));
    }
    assert_eq!(all, ["ANPR_PLATES"]);
}

#[tokio::test]
async fn an_event_id_is_stored_once() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let mut stream = ensure_plate_stream(&js, 1)
        .await
        .expect("creating the stream");

    let first = event("0194f3c2-7a10-7c3e-9b1a-2f6d8e4c5a01");
    let ack = publish(&js, &first).await;
    assert_eq!(ack.stream, "ANPR_PLATES");
    assert!(!ack.duplicate, "a new event id was taken for a duplicate");
    assert_eq!(stored_messages(&mut stream).await, 1);

    // A redelivery (e.g. the analytic retrying after a lost ack) keeps its id.
    let again = publish(&js, &first).await;
    assert!(again.duplicate, "the repeated event id was not recognised");
    assert_eq!(again.sequence, ack.sequence);
    assert_eq!(stored_messages(&mut stream).await, 1);

    let second = event("0194f3c2-7a11-7000-8000-000000000002");
    let other = publish(&js, &second).await;
    assert!(!other.duplicate);
    assert_ne!(other.sequence, ack.sequence);
    assert_eq!(stored_messages(&mut stream).await, 2);
}

#[tokio::test]
async fn a_stored_event_decodes_to_what_was_published() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let stream = ensure_plate_stream(&js, 1)
        .await
        .expect("creating the stream");

    let published = event("0194f3c2-7a10-7c3e-9b1a-2f6d8e4c5a01");
    let ack = publish(&js, &published).await;

    let stored = stream
        .get_raw_message(ack.sequence)
        .await
        .expect("reading the stored event");
    assert_eq!(stored.subject.as_str(), "anpr.v1.plates.gate-1.detect");
    assert_eq!(
        stored
            .headers
            .get(NATS_MESSAGE_ID)
            .map(|value| value.as_str()),
        Some(published.event_id.as_str())
    );
    let decoded = PlateEvent::decode(stored.payload).expect("decoding the stored event");
    assert_eq!(decoded, published);
}

#[tokio::test]
async fn the_stream_takes_only_plate_subjects() {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let mut stream = ensure_plate_stream(&js, 1)
        .await
        .expect("creating the stream");

    // Reads are core NATS only: no stream answers a JetStream publish there.
    let outside = js
        .publish(subjects::reads("gate-1"), "not an event".into())
        .await
        .expect("sending the publish")
        .await;
    assert!(
        outside.is_err(),
        "a stream stored {}",
        subjects::reads("gate-1")
    );
    assert_eq!(stored_messages(&mut stream).await, 0);
}
