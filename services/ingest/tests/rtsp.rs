//! Ingest of a real RTSP stream (GStreamer's RTSP server serving a looped
//! H.264 clip, see `anpr_testkit::rtsp`): frames arrive; when the server goes
//! away and comes back, the worker reconnects and frames resume.

mod common;

use std::time::{Duration, SystemTime};

use anpr_common::proto::Camera;
use anpr_testkit::clip::{plate_clip, ClipSpec};
use anpr_testkit::RtspServer;
use common::{metric, take_frames, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_frames_arrive_and_resume_after_the_camera_comes_back() {
    let clip = tokio::task::spawn_blocking(|| {
        plate_clip(&ClipSpec {
            plates: vec!["7ABC123".into()],
            seconds_per_plate: 2.0,
            gap_seconds: 1.0,
            width: 640,
            height: 360,
            fps: 25,
        })
    })
    .await
    .expect("rendering the clip");
    let mut server = tokio::task::spawn_blocking(move || RtspServer::start(&clip.path))
        .await
        .expect("starting the RTSP server");
    let stack = Stack::start().await;
    let mut frames = stack.frames("gate").await;
    stack
        .add_camera(Camera {
            id: "gate".into(),
            rtsp_url: server.url(),
            sample_fps: Some(5.0),
            ..Default::default()
        })
        .await;

    let first = take_frames(&mut frames, 10).await;
    for (index, r) in first.iter().enumerate() {
        assert_eq!(r.frame.sequence, index as u64);
        assert_eq!(
            r.frame.camera_ip, "127.0.0.1",
            "the URL's host, as configured"
        );
        assert_eq!((r.frame.width, r.frame.height), (640, 360));
        turbojpeg::read_header(&r.frame.jpeg).expect("a JPEG");
        assert!(r.traceparent.is_some());
        // Capture times are wall-clock times (receive time, then the RTCP
        // sender reports' clock, which is this machine's here): a broken
        // mapping would be off by years, not seconds.
        let captured: SystemTime = r
            .frame
            .capture_time
            .expect("capture time")
            .try_into()
            .expect("valid time");
        let off = SystemTime::now()
            .duration_since(captured)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_secs(60), "capture time off by {off:?}");
    }
    let status = stack
        .wait_status("gate", "connected", |s| {
            s.connected && s.stream == "h264 640x360"
        })
        .await;
    assert_eq!(status.reconnects, 0);

    // The camera goes away for a few seconds.
    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .expect("stopping the server");
    let down = stack
        .wait_status("gate", "the loss noticed", |s| {
            !s.connected && !s.last_error.is_empty()
        })
        .await;
    assert!(!down.last_error.is_empty());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .expect("restarting the server");

    // A new connection: frames numbered from 0 again.
    let mut resumed = false;
    for _ in 0..500 {
        let next = take_frames(&mut frames, 1).await;
        if next[0].frame.sequence == 0 {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "frames did not resume with a new connection");
    take_frames(&mut frames, 5).await;
    let back = stack
        .wait_status("gate", "reconnected", |s| s.connected && s.reconnects >= 1)
        .await;
    assert!(back.last_error.is_empty(), "{back:?}");
    let text = stack.metrics().await;
    assert!(
        metric(&text, "anpr_ingest_reconnects_total{camera=\"gate\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "anpr_ingest_camera_connected{camera=\"gate\"}"),
        Some(1.0)
    );
}
