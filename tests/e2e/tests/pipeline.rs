//! Plate reads published on NATS become Generic Events in the VMS: the
//! analytic and the vms-bridge on a real nats-server, delivering over real
//! HTTP into VMS simulators.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anpr_common::proto::{AnalyticSettings, EventSelection, GetVmsTargetRequest};
use anpr_e2e::passages::SyntheticCamera;
use anpr_e2e::stack::Stack;
use anpr_vms_sim::{RecordedEvent, SimConfig, Simulator, GATE1_ID};

const WAIT: Duration = Duration::from_secs(30);

async fn simulator() -> Simulator {
    Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
        .await
        .expect("start the VMS simulator")
}

/// Waits until `sim` has recorded at least `count` events and returns them.
async fn events(sim: &Simulator, count: usize) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + WAIT;
    loop {
        let events = sim.events();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_become_one_detect_and_one_lost_in_the_vms_camera_by_ip() {
    let stack = Stack::start().await.expect("pipeline");
    let detect_vms = simulator().await;
    let lost_vms = simulator().await;
    stack
        .set_analytic(AnalyticSettings {
            skip_first_reads: Some(2),
            min_confidence: Some(0.7),
            lost_timeout_ms: Some(500),
            ..Default::default()
        })
        .await
        .expect("analytic settings");
    // The fixture's "Gate 1" camera is registered in the VMS as bare IP 192.168.1.21.
    stack
        .add_camera("gate-1", "Gate 1 entry", "192.168.1.21")
        .await
        .expect("camera");
    stack
        .add_target("nx-detect", detect_vms.port(), EventSelection::Detect)
        .await
        .expect("detect target");
    stack
        .add_target("nx-lost", lost_vms.port(), EventSelection::Lost)
        .await
        .expect("lost target");
    stack
        .wait_for_delivery_to("nx-detect")
        .await
        .expect("consumer");
    stack
        .wait_for_delivery_to("nx-lost")
        .await
        .expect("consumer");

    // Ten frames of one car; two of the later reads confuse B with 8.
    let start = SystemTime::now();
    let interval = Duration::from_millis(100);
    let mut camera = SyntheticCamera::new("gate-1", "192.168.1.21", 3);
    camera.misread_rate = 0.0;
    let mut frames = camera.passage("ABC1234", 10, start, interval);
    for index in [5, 7] {
        let read = &mut frames[index].reads[0];
        read.text = "A8C1234".into();
        read.char_confidences[1] = 0.55;
    }
    // Then the road is empty for longer than the lost timeout.
    for i in 10..18 {
        frames.push(camera.empty_frame(start + interval * i));
    }
    for frame in &frames {
        stack.publish_reads(frame).await.expect("publish");
    }

    let detected = events(&detect_vms, 1).await;
    let lost = events(&lost_vms, 1).await;
    // Let anything that should not come arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detected_all = detect_vms.events();
    let lost_all = lost_vms.events();
    assert_eq!(detected_all.len(), 1, "detect target got {detected_all:#?}");
    assert_eq!(lost_all.len(), 1, "lost target got {lost_all:#?}");
    assert_eq!(detected, detected_all);
    assert_eq!(lost, lost_all);

    let detect = &detected[0];
    assert_eq!(detect.api, "v4", "a 6.1 server gets the REST v4 call");
    assert_eq!(detect.caption, "ABC1234");
    assert_eq!(detect.source, "Gate 1 entry");
    assert_eq!(detect.resolved_camera_ids, [GATE1_ID]);
    // Two reads skipped: the third read is the Detect, at its capture time.
    assert_eq!(detect.timestamp_ms, Some(millis(start + interval * 2)));
    assert!(detect.description.contains("ABC1234"), "{detect:?}");

    let final_result = &lost[0];
    assert_eq!(final_result.caption, "ABC1234", "the voted text");
    assert_eq!(final_result.resolved_camera_ids, [GATE1_ID]);
    assert_eq!(final_result.source, "Gate 1 entry");
    // Lost carries the time the plate was last seen.
    assert_eq!(
        final_result.timestamp_ms,
        Some(millis(start + interval * 9))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_the_vms_does_not_know_is_sent_without_refs_and_reported() {
    let stack = Stack::start().await.expect("pipeline");
    let vms = simulator().await;
    stack
        .set_analytic(AnalyticSettings {
            skip_first_reads: Some(0),
            lost_timeout_ms: Some(300),
            ..Default::default()
        })
        .await
        .expect("analytic settings");
    stack
        .add_camera("side", "Side road", "10.20.30.40")
        .await
        .expect("camera");
    stack
        .add_target("nx1", vms.port(), EventSelection::Detect)
        .await
        .expect("target");
    stack.wait_for_delivery_to("nx1").await.expect("consumer");

    let mut camera = SyntheticCamera::new("side", "10.20.30.40", 5);
    camera.misread_rate = 0.0;
    for frame in camera.passage("XYZ9876", 3, SystemTime::now(), Duration::from_millis(100)) {
        stack.publish_reads(&frame).await.expect("publish");
    }
    let received = events(&vms, 1).await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].caption, "XYZ9876");
    assert!(received[0].camera_refs.is_empty(), "{:?}", received[0]);

    // The operator sees why: the target's status names the camera.
    let mut config = stack.config().await.expect("config client");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let target = config
            .get_vms_target(GetVmsTargetRequest { name: "nx1".into() })
            .await
            .expect("get target")
            .into_inner();
        match target.status {
            Some(status) if !status.camera_problems.is_empty() && status.last_success.is_some() => {
                break status
            }
            _ if Instant::now() > deadline => panic!("no camera problem reported: {target:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(
        status
            .camera_problems
            .iter()
            .any(|p| p.contains("side") && p.contains("10.20.30.40")),
        "{status:?}"
    );
}
