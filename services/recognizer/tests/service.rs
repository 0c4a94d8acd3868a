//! The recognizer service as the pipeline meets it: a real nats-server, the
//! real models (`scripts/fetch-models`), the service in-process, frames
//! published on core NATS and FrameReads read back from the reads subjects;
//! and the `image` subcommand through the real binary. Nothing asserts
//! timings: waits have generous deadlines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use ab_glyph::FontVec;
use anpr_common::bus::NatsArgs;
use anpr_common::proto::{Frame, FrameReads};
use anpr_common::telemetry::TelemetryGuard;
use anpr_common::{subjects, trace_context};
use anpr_recognizer::service::{self, Running, ServiceOptions};
use anpr_recognizer::ModelConfig;
use anpr_testkit::NatsServer;
use futures::StreamExt as _;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// Long enough for anything that works, even a debug build reading frames on
/// a busy machine; a test waiting this long has failed.
const DEADLINE: Duration = Duration::from_secs(120);
const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const PLATE: &str = "ABC1234";
const CAMERA: &str = "gate-1";
const CAMERA_IP: &str = "192.0.2.10";

/// The process-wide subscriber with OpenTelemetry ids on spans, so trace
/// context is extracted and injected as in the real service.
fn telemetry() {
    static GUARD: OnceLock<Option<TelemetryGuard>> = OnceLock::new();
    GUARD.get_or_init(|| anpr_common::telemetry::init("anpr-recognizer-test").ok());
}

fn font() -> FontVec {
    let bytes = std::fs::read(FONT).unwrap_or_else(|error| {
        panic!("{FONT}: {error} (scripts/setup installs fonts-dejavu-core)")
    });
    FontVec::try_from_vec(bytes).expect("DejaVuSans-Bold is a valid font")
}

/// A grey scene with a white plate, black border and black `text` in
/// DejaVuSans-Bold; returns the picture and the plate's rectangle.
fn plate_scene(width: u32, height: u32, text: &str) -> (RgbImage, Rect) {
    let font = font();
    let scale = 56.0;
    let (text_width, text_height) = text_size(scale, &font, text);
    let (pad_x, pad_y) = (24, 16);
    let plate_width = text_width + 2 * pad_x;
    let plate_height = text_height + 2 * pad_y;
    let x = (width - plate_width) / 2;
    let y = (height - plate_height) / 2;
    let mut picture = RgbImage::from_pixel(width, height, Rgb([96, 100, 104]));
    let plate = Rect::at(x as i32, y as i32).of_size(plate_width, plate_height);
    draw_filled_rect_mut(&mut picture, plate, Rgb([250, 250, 250]));
    draw_hollow_rect_mut(&mut picture, plate, Rgb([10, 10, 10]));
    draw_text_mut(
        &mut picture,
        Rgb([10, 10, 10]),
        (x + pad_x) as i32,
        (y + pad_y) as i32,
        scale,
        &font,
        text,
    );
    (picture, plate)
}

fn jpeg(picture: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(picture)
        .expect("JPEG encodes");
    bytes
}

/// A small, valid JPEG whose frame header (SOF0) is rewritten to declare
/// `width` x `height`: what a decoder sees of a picture that size. A real
/// 10000x10000 JPEG is over a megabyte even when uniform, past NATS's default
/// payload limit, and the recognizer must refuse it from the header anyway.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(&RgbImage::from_pixel(16, 16, Rgb([128, 128, 128])));
    let sof = bytes
        .windows(2)
        .position(|marker| marker == [0xff, 0xc0])
        .expect("a baseline JPEG has an SOF0 marker");
    // Marker (2), length (2), precision (1), then height and width, big-endian.
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

fn frame(sequence: u64, width: u32, height: u32, jpeg: Vec<u8>) -> Frame {
    Frame {
        camera_id: CAMERA.into(),
        sequence,
        capture_time: Some(timestamp(SystemTime::now())),
        width,
        height,
        jpeg,
        camera_ip: CAMERA_IP.into(),
    }
}

/// NATS and a client on it that publishes frames and watches reads.
struct Bus {
    nats: NatsServer,
    client: async_nats::Client,
    reads: async_nats::Subscriber,
}

impl Bus {
    async fn start() -> Self {
        telemetry();
        let nats = NatsServer::start();
        let client = async_nats::connect(nats.url())
            .await
            .expect("test client connects");
        let reads = client
            .subscribe(subjects::ALL_READS)
            .await
            .expect("subscribing to reads");
        client.flush().await.expect("reads subscription in place");
        Bus {
            nats,
            client,
            reads,
        }
    }

    async fn publish(&self, frame: &Frame, headers: async_nats::HeaderMap) {
        self.client
            .publish_with_headers(
                subjects::frames(&frame.camera_id),
                headers,
                frame.encode_to_vec().into(),
            )
            .await
            .expect("publishing a frame");
        self.client.flush().await.expect("flushing frames");
    }

    /// The next FrameReads on any reads subject, with its subject and headers.
    async fn next_reads(&mut self) -> (String, FrameReads, async_nats::HeaderMap) {
        let message = tokio::time::timeout(DEADLINE, self.reads.next())
            .await
            .expect("FrameReads within the deadline")
            .expect("reads subscription open");
        let reads = FrameReads::decode(message.payload).expect("a FrameReads");
        (
            message.subject.to_string(),
            reads,
            message.headers.unwrap_or_default(),
        )
    }

    fn options(&self) -> ServiceOptions {
        let mut options = ServiceOptions::new(
            NatsArgs::plain(self.nats.url()),
            ModelConfig {
                models_dir: PathBuf::from(MODELS),
                ..ModelConfig::default()
            },
        );
        options.http_listen = "127.0.0.1:0".parse().expect("socket address");
        // Debug builds on a shared machine read slowly: only frames that are
        // meant to be stale should ever be too old here.
        options.max_frame_age = Duration::from_secs(60);
        options
    }

    /// Starts a recognizer with `options` and waits until it is ready.
    async fn recognizer(&self, options: ServiceOptions) -> Recognizer {
        let shutdown = CancellationToken::new();
        let running = service::start(options, shutdown.clone())
            .await
            .expect("recognizer starts");
        let recognizer = Recognizer {
            http: running.http_addr,
            running: Some(running),
            shutdown,
        };
        let deadline = Instant::now() + DEADLINE;
        while recognizer.http_get("/readyz").await.0 != 200 {
            assert!(Instant::now() < deadline, "recognizer never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        recognizer
    }
}

struct Recognizer {
    http: SocketAddr,
    running: Option<Running>,
    shutdown: CancellationToken,
}

impl Recognizer {
    async fn http_get(&self, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.http)
            .await
            .expect("connecting to the health endpoint");
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .expect("sending request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("reading response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("HTTP status line");
        (status, response)
    }

    async fn metric(&self, name: &str) -> f64 {
        let (status, body) = self.http_get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        metric(&body, name)
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(DEADLINE, running.wait())
                .await
                .expect("recognizer stops in time")
                .expect("recognizer stops cleanly");
        }
    }
}

impl Drop for Recognizer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The value of the sample `name` (with its labels, if any) in a metrics
/// text; 0 when absent (a labelled counter appears on first use).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|value| value.trim().parse().ok())
        .next()
        .unwrap_or(0.0)
}

/// Sum of every sample of the labelled counter `name`.
fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum()
}

fn sequence_of(reads: &FrameReads) -> u64 {
    reads.frame.as_ref().expect("frame ref").sequence
}

/// 32 hex digits of a `traceparent`'s trace id.
fn trace_id(traceparent: &str) -> &str {
    traceparent
        .split('-')
        .nth(1)
        .expect("traceparent has a trace id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_on_nats_become_reads_on_the_cameras_subject() {
    let mut bus = Bus::start().await;
    let mut recognizer = bus.recognizer(bus.options()).await;

    let (picture, plate) = plate_scene(800, 450, PLATE);
    let with_plate = frame(1, 800, 450, jpeg(&picture));
    let mut headers = async_nats::HeaderMap::new();
    let incoming_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    headers.insert(
        "traceparent",
        format!("00-{incoming_trace}-00f067aa0ba902b7-01").as_str(),
    );
    bus.publish(&with_plate, headers).await;

    let (subject, reads, headers) = bus.next_reads().await;
    assert_eq!(subject, subjects::reads(CAMERA));
    let frame_ref = reads.frame.clone().expect("frame ref");
    assert_eq!(
        (frame_ref.camera_id.as_str(), frame_ref.sequence),
        (CAMERA, 1)
    );
    assert_eq!(reads.capture_time, with_plate.capture_time);
    assert_eq!(reads.camera_ip, CAMERA_IP);
    assert_eq!((reads.width, reads.height), (800, 450));
    let texts: Vec<&str> = reads.reads.iter().map(|read| read.text.as_str()).collect();
    assert_eq!(texts.first().copied(), Some(PLATE), "reads: {texts:?}");
    let read = &reads.reads[0];
    assert_eq!(read.camera_id, CAMERA);
    assert_eq!(read.frame, reads.frame);
    assert_eq!(read.capture_time, with_plate.capture_time);
    assert_eq!(read.char_confidences.len(), PLATE.len());
    assert!(read
        .char_confidences
        .iter()
        .all(|confidence| (0.0..=1.0).contains(confidence)));
    assert!(read.confidence > 0.0 && read.confidence <= 1.0);
    assert!(!read.raw_text.is_empty());
    // The box is on the plate drawn: its centre lies inside the plate.
    let bbox = read.bbox.expect("bbox");
    let (cx, cy) = (bbox.x + bbox.width / 2.0, bbox.y + bbox.height / 2.0);
    assert!(
        (plate.left() as f32..plate.right() as f32).contains(&cx)
            && (plate.top() as f32..plate.bottom() as f32).contains(&cy),
        "bbox {bbox:?} is not on the plate {plate:?}"
    );
    let crop = read.crop_jpeg.as_deref().expect("a plate crop");
    let crop = image::load_from_memory_with_format(crop, image::ImageFormat::Jpeg)
        .expect("the crop is a JPEG");
    assert!(crop.width() > 0 && crop.height() > 0);
    // The reply continues the frame's trace.
    let traceparent = trace_context::traceparent(&headers).expect("reads carry a traceparent");
    assert_eq!(trace_id(traceparent), incoming_trace);

    // A frame with no plate is answered too, with no reads.
    let empty = RgbImage::from_pixel(640, 360, Rgb([96, 100, 104]));
    bus.publish(
        &frame(2, 640, 360, jpeg(&empty)),
        async_nats::HeaderMap::new(),
    )
    .await;
    let (subject, reads, _) = bus.next_reads().await;
    assert_eq!(subject, subjects::reads(CAMERA));
    assert_eq!(sequence_of(&reads), 2);
    assert!(reads.reads.is_empty(), "{:?}", reads.reads);
    assert_eq!((reads.width, reads.height), (640, 360));

    assert_eq!(
        recognizer
            .metric("anpr_recognizer_frames_processed_total")
            .await,
        2.0
    );
    assert!(recognizer.metric("anpr_recognizer_plates_read_total").await >= 1.0);
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_stage_duration_seconds_count{stage=\"detect\"}")
            .await,
        2.0
    );
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_pictures_get_empty_reads_and_the_service_goes_on() {
    let mut bus = Bus::start().await;
    let mut recognizer = bus.recognizer(bus.options()).await;

    let mut corrupt = b"\xff\xd8\xff\xe0".to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 2000));
    let bad = [
        ("corrupt JPEG", frame(1, 640, 360, corrupt), "decode"),
        ("zero-size JPEG", frame(2, 0, 0, jpeg_declaring(0, 0)), ""),
        ("no bytes", frame(3, 0, 0, Vec::new()), "decode"),
        (
            "10000x10000 JPEG",
            frame(4, 10_000, 10_000, jpeg_declaring(10_000, 10_000)),
            "too_large",
        ),
    ];
    for (what, frame, kind) in &bad {
        bus.publish(frame, async_nats::HeaderMap::new()).await;
        let (subject, reads, _) = bus.next_reads().await;
        assert_eq!(subject, subjects::reads(CAMERA), "{what}");
        assert_eq!(sequence_of(&reads), frame.sequence, "{what}");
        assert!(reads.reads.is_empty(), "{what}: {:?}", reads.reads);
        assert_eq!(
            (reads.width, reads.height),
            (frame.width, frame.height),
            "{what}: the size the frame declared"
        );
        if !kind.is_empty() {
            let name = format!("anpr_recognizer_read_errors_total{{kind=\"{kind}\"}}");
            assert!(recognizer.metric(&name).await >= 1.0, "{what}: {name}");
        }
    }
    let (_, body) = recognizer.http_get("/metrics").await;
    assert_eq!(
        metric_sum(&body, "anpr_recognizer_read_errors_total"),
        bad.len() as f64,
        "{body}"
    );

    // A message that is not a Frame is counted and skipped.
    bus.client
        .publish(subjects::frames(CAMERA), "not protobuf \u{1}\u{2}".into())
        .await
        .expect("publishing garbage");

    // The service still reads the next frame.
    let (picture, _) = plate_scene(800, 450, PLATE);
    bus.publish(
        &frame(5, 800, 450, jpeg(&picture)),
        async_nats::HeaderMap::new(),
    )
    .await;
    let (_, reads, _) = bus.next_reads().await;
    assert_eq!(sequence_of(&reads), 5);
    assert_eq!(
        reads.reads.first().map(|read| read.text.as_str()),
        Some(PLATE)
    );
    assert_eq!(recognizer.http_get("/readyz").await.0, 200);
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_malformed_frames_total{reason=\"protobuf\"}")
            .await,
        1.0
    );
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_frames_processed_total")
            .await,
        5.0
    );
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_frames_each_read_once() {
    let mut bus = Bus::start().await;
    let mut options = bus.options();
    // Every frame is published at once: room for all of them, so each one
    // is read by exactly one replica rather than pushed out of a queue.
    options.queue = 64;
    let mut first = bus.recognizer(options.clone()).await;
    let mut second = bus.recognizer(options).await;

    const FRAMES: u64 = 20;
    let empty = jpeg(&RgbImage::from_pixel(320, 240, Rgb([96, 100, 104])));
    for sequence in 1..=FRAMES {
        bus.publish(
            &frame(sequence, 320, 240, empty.clone()),
            async_nats::HeaderMap::new(),
        )
        .await;
    }
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for _ in 0..FRAMES {
        let (_, reads, _) = bus.next_reads().await;
        *seen.entry(sequence_of(&reads)).or_default() += 1;
    }
    // Each frame was delivered to one replica and answered once.
    let received = "anpr_recognizer_frames_received_total";
    let processed = "anpr_recognizer_frames_processed_total";
    assert_eq!(
        first.metric(received).await + second.metric(received).await,
        FRAMES as f64
    );
    let (a, b) = (
        first.metric(processed).await,
        second.metric(processed).await,
    );
    assert_eq!(a + b, FRAMES as f64);
    assert_eq!(seen.len() as u64, FRAMES, "{seen:?}");
    assert!(seen.values().all(|count| *count == 1), "{seen:?}");
    // The queue group split the frames (all 20 to one replica: 1 in 500000).
    assert!(a >= 1.0 && b >= 1.0, "first read {a}, second {b}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_frames_are_dropped_and_counted() {
    let mut bus = Bus::start().await;
    let mut options = bus.options();
    options.max_frame_age = Duration::from_secs(2);
    let mut recognizer = bus.recognizer(options).await;

    let picture = jpeg(&RgbImage::from_pixel(320, 240, Rgb([96, 100, 104])));
    let mut stale = frame(1, 320, 240, picture.clone());
    stale.capture_time = Some(timestamp(SystemTime::now() - Duration::from_secs(10)));
    bus.publish(&stale, async_nats::HeaderMap::new()).await;
    bus.publish(&frame(2, 320, 240, picture), async_nats::HeaderMap::new())
        .await;
    // Frames are taken in order: when the fresh one is answered, the stale
    // one was handled before it, and was not answered.
    let (_, reads, _) = bus.next_reads().await;
    assert_eq!(sequence_of(&reads), 2);
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_frames_dropped_total{reason=\"too_old\"}")
            .await,
        1.0
    );
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_frames_received_total")
            .await,
        2.0
    );
    assert_eq!(
        recognizer
            .metric("anpr_recognizer_frames_processed_total")
            .await,
        1.0
    );
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_its_oldest_frames_and_never_backs_up() {
    let mut bus = Bus::start().await;
    let mut options = bus.options();
    options.workers = 1;
    options.queue = 1;
    let mut recognizer = bus.recognizer(options).await;

    const FRAMES: u64 = 8;
    let (picture, _) = plate_scene(800, 450, PLATE);
    let picture = jpeg(&picture);
    for sequence in 1..=FRAMES {
        bus.publish(
            &frame(sequence, 800, 450, picture.clone()),
            async_nats::HeaderMap::new(),
        )
        .await;
    }
    // Every frame is either read or dropped; wait until all are accounted.
    let deadline = Instant::now() + DEADLINE;
    let (processed, dropped) = loop {
        let (_, body) = recognizer.http_get("/metrics").await;
        let processed = metric(&body, "anpr_recognizer_frames_processed_total");
        let dropped = metric(
            &body,
            "anpr_recognizer_frames_dropped_total{reason=\"queue_full\"}",
        );
        if processed + dropped >= FRAMES as f64 {
            break (processed, dropped);
        }
        assert!(Instant::now() < deadline, "frames unaccounted for: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(processed + dropped, FRAMES as f64);
    // Eight frames published back to back while one worker reads: a queue
    // of one must overflow.
    assert!(dropped >= 1.0, "processed {processed}, dropped {dropped}");
    // The newest frame is never the one pushed out, and every processed
    // frame is answered once, in order.
    let mut sequences = Vec::new();
    for _ in 0..processed as usize {
        let (_, reads, _) = bus.next_reads().await;
        sequences.push(sequence_of(&reads));
    }
    assert_eq!(sequences.last().copied(), Some(FRAMES), "{sequences:?}");
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "{sequences:?}"
    );
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_reads_on_after_a_nats_restart() {
    let mut bus = Bus::start().await;
    let mut recognizer = bus.recognizer(bus.options()).await;

    bus.nats.restart();
    // Both sides reconnect and subscribe again on their own; core NATS drops
    // what is published before that, so send frames until one is answered.
    let picture = jpeg(&RgbImage::from_pixel(320, 240, Rgb([96, 100, 104])));
    let deadline = Instant::now() + DEADLINE;
    let mut sequence = 0;
    let answered = loop {
        assert!(
            Instant::now() < deadline,
            "no frame answered after the restart"
        );
        sequence += 1;
        let frame = frame(sequence, 320, 240, picture.clone());
        // While the client is reconnecting a publish may fail: try again.
        let _ = bus
            .client
            .publish(subjects::frames(CAMERA), frame.encode_to_vec().into())
            .await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), bus.reads.next()).await
        {
            break FrameReads::decode(message.payload).expect("a FrameReads");
        }
    };
    assert!(answered.reads.is_empty());
    assert!(sequence_of(&answered) <= sequence);
    while recognizer.http_get("/readyz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_models_refuses_to_start_naming_the_fix() {
    let bus = Bus::start().await;
    let mut options = bus.options();
    let empty = tempfile::tempdir().expect("temporary folder");
    options.models.models_dir = empty.path().to_path_buf();
    let error = match service::start(options, CancellationToken::new()).await {
        Ok(_) => panic!("started without models"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("scripts/fetch-models"), "{error}");
    assert!(
        error.contains(&empty.path().display().to_string()),
        "{error}"
    );
}

#[test]
fn the_image_subcommand_prints_one_json_line_per_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let (picture, _) = plate_scene(800, 450, PLATE);
    let png = folder.path().join("plate.png");
    picture.save(&png).expect("PNG written");
    let missing = folder.path().join("missing.jpg");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_anpr-recognizer"))
        .args(["image", "--models-dir", MODELS])
        .arg(&png)
        .arg(&missing)
        .env("LOG_FORMAT", "text")
        .output()
        .expect("running anpr-recognizer image");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}: {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");

    let read = &lines[0];
    assert_eq!(read["file"], png.display().to_string());
    assert_eq!(
        (read["width"].as_u64(), read["height"].as_u64()),
        (Some(800), Some(450))
    );
    assert_eq!(read["plates"][0]["plate"], PLATE, "{read}");
    assert!(read["plates"][0]["confidence"].is_f64(), "{read}");
    for field in ["x", "y", "width", "height"] {
        assert!(read["plates"][0]["bbox"][field].is_f64(), "{read}");
    }
    assert!(read["plates"][0]["candidates"].is_array(), "{read}");
    for stage in ["decode", "detect", "recognize", "total"] {
        assert!(read["timings_ms"][stage].is_f64(), "{read}");
    }

    let failed = &lines[1];
    assert_eq!(failed["file"], missing.display().to_string());
    assert!(failed["error"].is_string(), "{failed}");

    // Without models: a clear message and exit code 2.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_anpr-recognizer"))
        .args(["image", "--models-dir"])
        .arg(folder.path())
        .arg(&png)
        .output()
        .expect("running anpr-recognizer image");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/fetch-models"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cameras_mask_regions_hide_text_from_the_config_on() {
    use anpr_common::config_watch::{ConfigState, ConfigWatch};
    use anpr_common::proto::{Camera, MaskRegion};

    let mut bus = Bus::start().await;
    let (width, height) = (800, 450);
    let (picture, plate) = plate_scene(width, height, PLATE);
    // The plate's rectangle with a margin, in fractions of the picture, as
    // an operator gives it (`anprctl camera update --mask`).
    let margin = 10.0;
    let region = MaskRegion {
        x: (plate.left() as f32 - margin) / width as f32,
        y: (plate.top() as f32 - margin) / height as f32,
        width: (plate.width() as f32 + 2.0 * margin) / width as f32,
        height: (plate.height() as f32 + 2.0 * margin) / height as f32,
    };
    let camera = |masks: Vec<MaskRegion>| Camera {
        id: CAMERA.into(),
        mask_regions: masks,
        ..Default::default()
    };
    let state = |camera: Camera| {
        let mut state = ConfigState {
            loaded: true,
            ..ConfigState::default()
        };
        state.cameras.insert(camera.id.clone(), camera);
        state
    };
    let (config, watch) = ConfigWatch::manual(state(camera(vec![region])));
    let mut options = bus.options();
    options.config = Some(watch);
    let mut recognizer = bus.recognizer(options).await;

    let picture = jpeg(&picture);
    bus.publish(
        &frame(1, width, height, picture.clone()),
        async_nats::HeaderMap::new(),
    )
    .await;
    let (_, reads, _) = bus.next_reads().await;
    assert_eq!(sequence_of(&reads), 1);
    assert!(
        reads.reads.is_empty(),
        "the masked plate was read: {:?}",
        reads.reads
    );

    // The operator removes the mask: the same picture is read again.
    config
        .send(std::sync::Arc::new(state(camera(Vec::new()))))
        .expect("the service holds the watch");
    bus.publish(
        &frame(2, width, height, picture),
        async_nats::HeaderMap::new(),
    )
    .await;
    let (_, reads, _) = bus.next_reads().await;
    assert_eq!(sequence_of(&reads), 2);
    let texts: Vec<&str> = reads.reads.iter().map(|read| read.text.as_str()).collect();
    assert_eq!(texts.first().copied(), Some(PLATE), "reads: {texts:?}");
    recognizer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_stops_when_told_even_with_nats_gone() {
    let mut bus = Bus::start().await;
    let mut recognizer = bus.recognizer(bus.options()).await;
    bus.nats.stop();
    // Without a bound on the last round trips, the service would wait
    // forever for NATS to come back; stop() fails after the deadline.
    recognizer.stop().await;
}
