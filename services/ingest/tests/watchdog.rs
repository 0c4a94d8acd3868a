//! The worker's resilience with a source of the test's own (through the
//! `SourceOpener` seam) and a real NATS: a stream that goes silent without
//! closing is detected by the watchdog and reconnected; each connection
//! numbers its frames from 0.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anpr_common::proto::Camera;
use anpr_ingest::camera_url::SourceSpec;
use anpr_ingest::decode::DecoderSetup;
use anpr_ingest::source::{
    BoxFuture, FrameSource, JpegUnit, OpenParams, SourceError, SourceItem, SourceOpener,
};
use common::{metric, take_frames, Stack};

/// Two pictures, then silence with the connection open (a stalled camera).
struct StallingSource {
    jpeg: Vec<u8>,
    left: usize,
}

impl FrameSource for StallingSource {
    fn take_decoder(&mut self) -> Option<DecoderSetup> {
        None
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<SourceItem>, SourceError>> {
        Box::pin(async move {
            if self.left == 0 {
                std::future::pending::<()>().await;
            }
            self.left -= 1;
            Ok(Some(SourceItem::Jpeg(JpegUnit {
                data: self.jpeg.clone(),
                capture_time: SystemTime::now(),
            })))
        })
    }
}

struct StallingOpener {
    opened: Arc<AtomicUsize>,
    jpeg: Vec<u8>,
}

impl SourceOpener for StallingOpener {
    fn open<'a>(
        &'a self,
        _spec: &'a SourceSpec,
        _params: &'a OpenParams,
    ) -> BoxFuture<'a, Result<Box<dyn FrameSource>, SourceError>> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let source = StallingSource {
            jpeg: self.jpeg.clone(),
            left: 2,
        };
        Box::pin(async move { Ok(Box::new(source) as Box<dyn FrameSource>) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_reconnected_by_the_watchdog() {
    let pixels = vec![128u8; 32 * 16 * 3];
    let jpeg = turbojpeg::compress(
        turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: 32,
            pitch: 32 * 3,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        },
        85,
        turbojpeg::Subsamp::Sub2x2,
    )
    .expect("encodes")
    .to_vec();
    let opened = Arc::new(AtomicUsize::new(0));
    let opener = Arc::new(StallingOpener {
        opened: opened.clone(),
        jpeg,
    });
    let stack = Stack::start_with(|options| {
        options.opener = opener;
        options.watchdog = Duration::from_secs(1);
    })
    .await;
    let mut frames = stack.frames("stalls").await;
    stack
        .add_camera(Camera {
            id: "stalls".into(),
            rtsp_url: "rtsp://192.0.2.40/stream".into(),
            sample_fps: Some(10.0),
            ..Default::default()
        })
        .await;

    // Two frames per connection, each connection numbered from 0.
    let received = take_frames(&mut frames, 6).await;
    let sequences: Vec<u64> = received.iter().map(|r| r.frame.sequence).collect();
    assert_eq!(sequences, [0, 1, 0, 1, 0, 1]);
    assert!(received.iter().all(|r| r.frame.camera_ip == "192.0.2.40"));
    assert!(opened.load(Ordering::SeqCst) >= 3);
    let status = stack
        .wait_status("stalls", "the watchdog's error", |s| {
            s.last_error.contains("no frame for") && s.reconnects >= 2
        })
        .await;
    assert_eq!(status.stream, "jpeg 32x16");
    let text = stack.metrics().await;
    assert!(
        metric(&text, "anpr_ingest_reconnects_total{camera=\"stalls\"}").unwrap_or(0.0) >= 2.0,
        "{text}"
    );
}
