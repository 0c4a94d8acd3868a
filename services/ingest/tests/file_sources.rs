//! Ingest of file sources against a real NATS and config service: frames
//! arrive as the camera is configured, sampled, with their metadata, as
//! JPEGs that keep white white; configuration changes restart or stop the
//! worker; a broken camera reports its error and disturbs nobody.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use anpr_common::proto::Camera;
use common::{
    collect_until_quiet, file_camera, metric, patch_rgb, render_clip, take_frames, Stack,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mp4_clip_is_decoded_sampled_and_published_as_jpeg_frames() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // 3 s at 25 fps = 75 pictures, sampled at 5 fps.
    let clip = render_clip(dir.path(), "clip.mp4", 3, 25);
    let mut frames = stack.frames("clip-mp4").await;
    stack
        .add_camera(file_camera(
            "clip-mp4",
            &clip,
            "?rate=fast",
            "192.0.2.10",
            5.0,
        ))
        .await;

    let received = collect_until_quiet(&mut frames, Duration::from_secs(5), 1000).await;
    // About 3 s x 5 fps, whatever the decoding speed (rate=fast): sampling
    // follows the clip's timestamps, not the wall clock.
    assert!(
        (13..=17).contains(&received.len()),
        "{} frames published",
        received.len()
    );
    for (index, r) in received.iter().enumerate() {
        let f = &r.frame;
        assert_eq!(r.subject, "anpr.v1.frames.clip-mp4");
        assert_eq!(f.camera_id, "clip-mp4");
        assert_eq!(f.camera_ip, "192.0.2.10");
        assert_eq!(
            f.sequence, index as u64,
            "sequence numbers from 0, in order"
        );
        assert_eq!((f.width, f.height), (320, 240));
        assert!(f.capture_time.is_some());
        let header = turbojpeg::read_header(&f.jpeg).expect("a JPEG");
        assert_eq!((header.width, header.height), (320, 240));
        let traceparent = r.traceparent.as_deref().expect("a traceparent header");
        assert!(
            traceparent.starts_with("00-") && traceparent.len() == 55,
            "{traceparent}"
        );
    }
    // Each frame starts its own trace.
    assert_ne!(received[0].traceparent, received[1].traceparent);
    // The box is limited-range white (235) in the video; the JPEG must show
    // it as full white, and the grey background stays grey.
    let white = patch_rgb(&received[0].frame.jpeg, 100, 82, 6);
    assert!(
        white.iter().all(|&c| c >= 250.0),
        "white box came out as {white:?}"
    );
    let grey = patch_rgb(&received[0].frame.jpeg, 20, 20, 6);
    assert!(
        grey.iter().all(|&c| (50.0..=90.0).contains(&c)),
        "grey came out as {grey:?}"
    );

    // Every picture was decoded, only the sampled ones published.
    let text = stack.metrics().await;
    assert_eq!(
        metric(
            &text,
            "anpr_ingest_frames_decoded_total{camera=\"clip-mp4\"}"
        ),
        Some(75.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "anpr_ingest_frames_published_total{camera=\"clip-mp4\"}"
        ),
        Some(received.len() as f64)
    );
    let bytes: usize = received.iter().map(|r| r.frame.jpeg.len()).sum();
    assert_eq!(
        metric(
            &text,
            "anpr_ingest_published_jpeg_bytes_total{camera=\"clip-mp4\"}"
        ),
        Some(bytes as f64)
    );
    assert!(text.contains("anpr_ingest_decode_seconds_count{camera=\"clip-mp4\"}"));
    assert!(text.contains("anpr_ingest_jpeg_encode_seconds_count{camera=\"clip-mp4\"}"));

    // Played once (no loop): the worker says what it streamed, and is idle.
    let status = stack
        .wait_status("clip-mp4", "the stream described and not connected", |s| {
            s.stream == "h264 320x240" && !s.connected
        })
        .await;
    assert!(status.last_error.is_empty(), "{status:?}");
    assert_eq!(status.ingest_instance, "ingest-test");
    assert_eq!(status.dropped_frames, 0);
    assert!(status.last_frame_at.is_some() && status.updated_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looped_ts_clip_restarts_on_change_and_stops_when_disabled() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // One second: more than 5 frames at 5 fps prove it loops.
    let clip = render_clip(dir.path(), "clip.ts", 1, 25);
    let mut frames = stack.frames("clip-ts").await;
    stack
        .add_camera(file_camera(
            "clip-ts",
            &clip,
            "?loop=true",
            "192.0.2.11",
            5.0,
        ))
        .await;
    let first = take_frames(&mut frames, 12).await;
    let sequences: Vec<u64> = first.iter().map(|r| r.frame.sequence).collect();
    assert_eq!(sequences, (0..12).collect::<Vec<_>>());
    stack
        .wait_status("clip-ts", "connected", |s| {
            s.connected && s.stream == "h264 320x240"
        })
        .await;

    // A changed setting restarts the worker: a new connection, numbered from 0.
    stack
        .update_camera("clip-ts", |camera| camera.sample_fps = Some(10.0))
        .await;
    let mut restarted = false;
    for _ in 0..200 {
        let next = take_frames(&mut frames, 1).await;
        if next[0].frame.sequence == 0 {
            restarted = true;
            break;
        }
    }
    assert!(restarted, "no frame numbered 0 after the change");
    take_frames(&mut frames, 5).await;

    // Disabled: the worker stops, its status and metric series go.
    stack
        .update_camera("clip-ts", |camera| camera.enabled = Some(false))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.status_of("clip-ts").await.is_some() {
        assert!(std::time::Instant::now() < deadline, "status not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut after = stack.frames("clip-ts").await;
    let late = collect_until_quiet(&mut after, Duration::from_secs(3), 100).await;
    assert!(late.is_empty(), "{} frames after disabling", late.len());
    let text = stack.metrics().await;
    assert!(!text.contains("camera=\"clip-ts\""), "{text}");
    assert!(text.contains("anpr_ingest_workers 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_camera_reports_its_error_and_does_not_disturb_another() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = render_clip(dir.path(), "good.ts", 1, 25);
    let mut all = stack.frames(">").await;

    // Nothing listens on this port: connection refused, again and again.
    let closed = anpr_testkit::free_port();
    stack
        .add_camera(Camera {
            id: "bad-rtsp".into(),
            rtsp_url: format!("rtsp://127.0.0.1:{closed}/stream"),
            rtsp_username: "admin".into(),
            rtsp_password: "s3cret-pw".into(),
            ..Default::default()
        })
        .await;
    stack
        .add_camera(file_camera(
            "bad-file",
            std::path::Path::new("/nonexistent/clip.mp4"),
            "",
            "192.0.2.21",
            5.0,
        ))
        .await;
    stack
        .add_camera(file_camera(
            "bad-option",
            &clip,
            "?loop=maybe",
            "192.0.2.22",
            5.0,
        ))
        .await;
    stack
        .add_camera(file_camera("good", &clip, "?loop=true", "192.0.2.20", 5.0))
        .await;

    let refused = stack
        .wait_status("bad-rtsp", "an error after retrying", |s| {
            !s.last_error.is_empty() && s.reconnects >= 1
        })
        .await;
    assert!(!refused.connected);
    assert!(refused.last_error_at.is_some());
    assert!(!refused.last_error.contains("s3cret-pw"), "{refused:?}");
    let missing = stack
        .wait_status("bad-file", "an error", |s| !s.last_error.is_empty())
        .await;
    assert!(
        missing.last_error.contains("/nonexistent/clip.mp4"),
        "{missing:?}"
    );
    let option = stack
        .wait_status("bad-option", "an error", |s| !s.last_error.is_empty())
        .await;
    assert!(option.last_error.contains("loop"), "{option:?}");

    // Meanwhile the good camera streams, and only it.
    let received = take_frames(&mut all, 15).await;
    assert!(received.iter().all(|r| r.frame.camera_id == "good"));
    let good = stack
        .wait_status("good", "connected", |s| s.connected)
        .await;
    assert!(good.last_error.is_empty(), "{good:?}");
    let text = stack.metrics().await;
    assert!(
        metric(&text, "anpr_ingest_reconnects_total{camera=\"bad-rtsp\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "anpr_ingest_camera_connected{camera=\"good\"}"),
        Some(1.0)
    );
    assert!(!text.contains("s3cret-pw"));
    // The subscription saw no other camera's frames at all.
    let counts = received.iter().fold(BTreeMap::new(), |mut counts, r| {
        *counts.entry(r.frame.camera_id.clone()).or_insert(0) += 1;
        counts
    });
    assert_eq!(counts.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_jpegs_is_published_in_name_order() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut encoder = turbojpeg::Compressor::new().expect("encoder");
    let mut written = BTreeMap::new();
    for (name, width, height) in [("b.jpg", 96, 64), ("a.jpg", 64, 48), ("c.jpeg", 128, 96)] {
        let pixels = vec![200u8; width * height * 3];
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width,
            pitch: width * 3,
            height,
            format: turbojpeg::PixelFormat::RGB,
        };
        let jpeg = encoder.compress_to_vec(image).expect("encodes");
        std::fs::write(dir.path().join(name), &jpeg).expect("write");
        written.insert(name, jpeg);
    }
    std::fs::write(dir.path().join("readme.txt"), "not a picture").expect("write");
    let mut frames = stack.frames("folder").await;
    stack
        .add_camera(file_camera(
            "folder",
            dir.path(),
            "?rate=fast",
            "192.0.2.30",
            5.0,
        ))
        .await;
    let received = collect_until_quiet(&mut frames, Duration::from_secs(3), 100).await;
    let sizes: Vec<_> = received
        .iter()
        .map(|r| (r.frame.sequence, r.frame.width, r.frame.height))
        .collect();
    assert_eq!(sizes, [(0, 64, 48), (1, 96, 64), (2, 128, 96)]);
    // Small enough for the bus: published byte for byte.
    assert_eq!(received[0].frame.jpeg, written["a.jpg"]);
    assert_eq!(received[2].frame.jpeg, written["c.jpeg"]);
    assert!(received.iter().all(|r| r.frame.camera_ip == "192.0.2.30"));
}
