//! Delivery under faults: a VMS that is down, a bridge restart, a hanging
//! VMS next to a healthy one, and events the VMS refuses for good.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use anpr_common::proto::{EventSelection, PlateEventKind};
use anpr_vms_sim::{Fault, RecordedEvent, SimUser};
use common::*;

const CAMS: [(&str, &str); 4] = [
    ("gate", "192.168.1.21"),
    ("exit", "192.168.1.22"),
    ("yard", "192.168.1.23"),
    ("ghost", "10.9.9.9"),
];

async fn add_cameras(stack: &mut Stack) {
    for (id, ip) in CAMS {
        stack.add_camera(id, id, ip, |_| {}).await;
    }
}

/// Publishes events `range` round-robin over the cameras; the caption is
/// `P<seq>` so order and uniqueness can be checked at the VMS.
async fn produce(stack: &Stack, range: std::ops::Range<u32>) {
    for seq in range {
        let (camera, _) = CAMS[seq as usize % CAMS.len()];
        stack
            .publish(camera, PlateEventKind::Detect, &format!("P{seq}"), seq)
            .await;
    }
}

/// Every caption exactly once, and per camera in publishing order.
fn assert_complete_and_ordered(events: &[RecordedEvent], count: u32) {
    let captions: Vec<&str> = events.iter().map(|e| e.caption.as_str()).collect();
    let unique: BTreeSet<&str> = captions.iter().copied().collect();
    assert_eq!(
        unique.len(),
        captions.len(),
        "duplicates delivered: {captions:?}"
    );
    assert_eq!(captions.len() as u32, count, "{captions:?}");
    let mut per_camera: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for event in events {
        let seq: u32 = event.caption[1..].parse().expect("P<seq> caption");
        per_camera
            .entry(event.source.as_str())
            .or_default()
            .push(seq);
    }
    for (camera, seqs) in per_camera {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{camera} out of order: {seqs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vms_down_while_100_events_are_produced_loses_and_repeats_nothing() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-down", &sim, EventSelection::Detect, |_| {})
        .await;
    // Down for 30 s, longer than the consumer's ack wait: the event being
    // retried must stay with this bridge (progress acks), not be redelivered.
    let down_since = std::time::Instant::now();
    sim.stop().await;
    for burst in 0..10u32 {
        produce(&stack, burst * 10..burst * 10 + 10).await;
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    }
    stack
        .wait_for_status("nx-down", "the VMS being unreachable", |s| {
            !s.last_error.is_empty()
        })
        .await;
    let outage = std::time::Duration::from_secs(30);
    if let Some(rest) = outage.checked_sub(down_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert!(sim.events().is_empty());
    sim.resume().await.expect("simulator resumes");
    let events = wait_for_events(&sim, 100).await;
    assert_complete_and_ordered(&events, 100);
    let status = stack
        .wait_for_status("nx-down", "all delivered", |s| {
            s.delivered == 100 && s.queue_depth == 0
        })
        .await;
    assert!(status.last_error.is_empty(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_restart_mid_stream_loses_and_repeats_nothing() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-restart", &sim, EventSelection::Detect, |_| {})
        .await;
    produce(&stack, 0..40).await;
    wait_for_events(&sim, 10).await;
    stack.stop_bridge().await;
    produce(&stack, 40..80).await;
    stack.start_bridge().await;
    produce(&stack, 80..100).await;
    let events = wait_for_events(&sim, 100).await;
    assert_complete_and_ordered(&events, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vms_does_not_hold_up_another_target() {
    let hanging = simulator(|_| {}).await;
    let healthy = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    hanging.set_fault(Fault::Hang);
    stack
        .add_target("nx-hang", &hanging, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-ok", &healthy, EventSelection::Detect, |_| {})
        .await;
    produce(&stack, 0..20).await;
    let events = wait_for_events(&healthy, 20).await;
    assert_complete_and_ordered(&events, 20);
    assert!(hanging.events().is_empty());
    let status = stack
        .wait_for_status("nx-hang", "the timeout", |s| !s.last_error.is_empty())
        .await;
    assert!(status.last_error.contains("timed out"), "{status:?}");
    hanging.set_fault(Fault::None);
    let events = wait_for_events(&hanging, 20).await;
    assert_complete_and_ordered(&events, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_dead_lettered_and_later_ones_still_flow() {
    let no_permission = simulator(|c| {
        c.users = vec![SimUser {
            generate_events: false,
            ..SimUser::new("admin", PASSWORD)
        }]
    })
    .await;
    let bad_request = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-noperm", &no_permission, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-400", &bad_request, EventSelection::Detect, |_| {})
        .await;

    let first = stack.publish("gate", PlateEventKind::Detect, "P0", 0).await;
    wait_for_events(&bad_request, 1).await;
    bad_request.set_fault(Fault::Status(400));
    let second = stack.publish("gate", PlateEventKind::Detect, "P1", 1).await;

    let deadline_what = "two dead letters";
    wait_for(deadline_what, || async {
        stack.dead_letters().await.len() >= 3
    })
    .await;
    let letters = stack.dead_letters().await;
    let of = |target: &str| -> Vec<_> {
        letters
            .iter()
            .filter(|l| l.target == target)
            .cloned()
            .collect()
    };
    let noperm = of("nx-noperm");
    assert_eq!(noperm.len(), 2, "{letters:#?}");
    assert_eq!(
        noperm[0].event.as_ref().map(|e| e.event_id.as_str()),
        Some(first.event_id.as_str())
    );
    assert_eq!(noperm[0].http_status, 403);
    assert!(
        noperm[0].reason.contains("forbidden") || noperm[0].reason.contains("403"),
        "{:?}",
        noperm[0]
    );
    let bad = of("nx-400");
    assert_eq!(bad.len(), 1, "{letters:#?}");
    assert_eq!(
        bad[0].event.as_ref().map(|e| e.event_id.as_str()),
        Some(second.event_id.as_str())
    );
    assert_eq!(bad[0].http_status, 400);
    assert!(bad[0].reason.starts_with("HTTP 400"), "{:?}", bad[0]);
    let status = stack
        .wait_for_status("nx-noperm", "two dead letters", |s| s.dead_lettered == 2)
        .await;
    assert!(status.last_error.contains("dead-lettered"), "{status:?}");

    // The target keeps going after a refusal.
    bad_request.set_fault(Fault::None);
    stack.publish("gate", PlateEventKind::Detect, "P2", 2).await;
    let events = wait_for_events(&bad_request, 2).await;
    assert_eq!(events[1].caption, "P2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_target_without_duplicates_or_reordering() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-shared", &sim, EventSelection::Detect, |_| {})
        .await;
    let second = stack.spawn_extra_bridge();
    produce(&stack, 0..60).await;
    let events = wait_for_events(&sim, 60).await;
    assert_complete_and_ordered(&events, 60);
    second.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dead_lettered_and_does_not_stop_the_target() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    add_cameras(&mut stack).await;
    stack
        .add_target("nx-garbage", &sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .js
        .publish(
            "anpr.v1.plates.gate.detect",
            "\u{1}not protobuf\u{ff}".into(),
        )
        .await
        .expect("publishing")
        .await
        .expect("stored");
    stack.publish("gate", PlateEventKind::Detect, "P1", 1).await;
    let events = wait_for_events(&sim, 1).await;
    assert_eq!(events[0].caption, "P1");
    wait_for("the dead letter", || async {
        !stack.dead_letters().await.is_empty()
    })
    .await;
    let letters = stack.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].target, "nx-garbage");
    assert!(letters[0].event.is_none());
    assert!(
        letters[0].reason.starts_with("undecodable plate event"),
        "{:?}",
        letters[0]
    );
}
