//! The analytic as the pipeline meets it: a real nats-server, the config
//! service in-process over real gRPC, the analytic in-process, reads
//! published on core NATS and plate events read back from the JetStream
//! stream. Nothing asserts timings: waits have generous deadlines.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anpr_analytic::{Options, Running};
use anpr_common::bus::{self, BucketSpec, NatsArgs};
use anpr_common::lease::{self, Timing};
use anpr_common::proto::config_client::ConfigClient;
use anpr_common::proto::{
    AnalyticSettings, BoundingBox, Camera, CreateCameraRequest, FrameReads, FrameRef, PlateEvent,
    PlateEventKind, PlateRead, SetAnalyticSettingsRequest,
};
use anpr_common::telemetry::TelemetryGuard;
use anpr_common::{subjects, trace_context};
use anpr_config::server::{self, RunningServer, ServerOptions};
use anpr_testkit::NatsServer;
use async_nats::jetstream;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// Long enough for anything that works; a test waiting this long has failed.
const DEADLINE: Duration = Duration::from_secs(30);
/// Lease TTL of the replicas started here; a lease nobody renews outlives
/// every test.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// The process-wide subscriber with OpenTelemetry ids on spans, so trace
/// context can be injected and extracted as in the real services.
fn telemetry() {
    static GUARD: OnceLock<Option<TelemetryGuard>> = OnceLock::new();
    GUARD.get_or_init(|| anpr_common::telemetry::init("anpr-analytic-test").ok());
}

/// NATS, the config service, and a client on the bus.
struct Stack {
    nats: NatsServer,
    shutdown: CancellationToken,
    _config: RunningServer,
    config_url: String,
    nats_url: String,
    client: async_nats::Client,
}

impl Stack {
    async fn start() -> Self {
        telemetry();
        let nats = NatsServer::start();
        let shutdown = CancellationToken::new();
        let loopback = "127.0.0.1:0".parse().expect("socket address");
        let config = server::start(
            ServerOptions {
                grpc_listen: loopback,
                http_listen: loopback,
                nats: NatsArgs::plain(nats.url()),
            },
            shutdown.clone(),
        )
        .await
        .expect("config service starts");
        let config_url = format!("http://{}", config.grpc_addr);
        let client = async_nats::connect(nats.url())
            .await
            .expect("test client connects");
        Stack {
            nats_url: nats.url(),
            nats,
            shutdown,
            _config: config,
            config_url,
            client,
        }
    }

    async fn config(&self) -> ConfigClient<tonic::transport::Channel> {
        ConfigClient::connect(self.config_url.clone())
            .await
            .expect("connecting to the config service")
    }

    async fn add_camera(&self, id: &str) {
        self.config()
            .await
            .create_camera(CreateCameraRequest {
                camera: Some(Camera {
                    id: id.into(),
                    rtsp_url: "rtsp://192.0.2.10:554/stream".into(),
                    ..Camera::default()
                }),
            })
            .await
            .expect("camera created");
    }

    async fn set_analytic(&self, camera: &str, settings: AnalyticSettings) {
        self.config()
            .await
            .set_analytic_settings(SetAnalyticSettingsRequest {
                camera_id: camera.into(),
                settings: Some(settings),
                expected_revision: None,
            })
            .await
            .expect("analytic settings set");
    }

    /// Starts the analytic and waits until it is ready.
    async fn start_analytic(&self) -> Analytic {
        self.start_analytic_named(&lease::default_instance()).await
    }

    /// Starts a replica named `instance` (its name in the camera leases).
    async fn start_analytic_named(&self, instance: &str) -> Analytic {
        let shutdown = self.shutdown.child_token();
        let mut options = Options::new(NatsArgs::plain(&self.nats_url), &self.config_url);
        options.http_listen = "127.0.0.1:0".parse().expect("socket address");
        options.instance = instance.to_string();
        options.lease_ttl = LEASE_TTL;
        options.sweep_interval = Duration::from_millis(50);
        let running = anpr_analytic::start(options, shutdown.clone())
            .await
            .expect("analytic starts");
        let analytic = Analytic {
            http: running.http_addr,
            running: Some(running),
            shutdown,
        };
        let deadline = Instant::now() + DEADLINE;
        while analytic.http_get("/readyz").await.0 != 200 {
            assert!(Instant::now() < deadline, "analytic never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        analytic
    }

    /// Publishes one frame's reads as the recognizer does, with `headers`.
    async fn publish_frame(
        &self,
        subject_camera: &str,
        frame: &FrameReads,
        headers: async_nats::HeaderMap,
    ) {
        self.client
            .publish_with_headers(
                subjects::reads(subject_camera),
                headers,
                frame.encode_to_vec().into(),
            )
            .await
            .expect("publishing reads");
        self.client.flush().await.expect("flushing reads");
    }

    /// Sends empty frames of `camera` until the analytic has handled one:
    /// core NATS drops what is published before the subscription is in place.
    async fn until_subscribed(&self, analytic: &Analytic, camera: &str) {
        let deadline = Instant::now() + DEADLINE;
        let mut sequence = 0;
        while metric(
            &analytic.metrics().await,
            "anpr_analytic_frames_received_total",
        ) < 1.0
        {
            assert!(Instant::now() < deadline, "analytic never received a frame");
            sequence += 1;
            let empty = frame_reads(camera, sequence, &[]);
            self.publish_frame(camera, &empty, async_nats::HeaderMap::new())
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes a lease on `camera` for `holder`, a replica that is not
    /// running (no membership), as it would have left it.
    async fn lease_camera_elsewhere(&self, camera: &str, holder: &str) {
        let js = jetstream::new(self.client.clone());
        let kv = bus::open_kv_bucket(
            &js,
            BucketSpec {
                bucket: subjects::ANALYTIC_LEASE_BUCKET,
                description: "ANPR camera leases: which replica handles which camera",
                history: 1,
                max_age: Some(Timing::for_ttl(LEASE_TTL).expiry),
                replicas: 1,
            },
        )
        .await
        .expect("lease bucket");
        kv.create(format!("camera.{camera}"), holder.to_string().into())
            .await
            .expect("lease written");
    }

    /// A consumer of every stored plate event of `camera`, from the start.
    async fn plate_events(&self, camera: &str) -> PlateEvents {
        let js = jetstream::new(self.client.clone());
        let stream = js
            .get_stream(subjects::PLATE_STREAM)
            .await
            .expect("plate stream exists");
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: format!("{}.plates.{camera}.>", subjects::PREFIX),
                ..Default::default()
            })
            .await
            .expect("consumer created");
        PlateEvents {
            messages: consumer.messages().await.expect("consumer messages"),
            seen: Default::default(),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Analytic {
    http: std::net::SocketAddr,
    running: Option<Running>,
    shutdown: CancellationToken,
}

impl Analytic {
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

    async fn metrics(&self) -> String {
        let (status, body) = self.http_get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sends the shutdown signal and waits for the flush and the exit.
    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(DEADLINE, running.wait())
                .await
                .expect("analytic stops in time")
                .expect("analytic stops cleanly");
        }
    }
}

/// The value of the sample `name` (with its labels, if any) in a metrics text.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|value| value.trim().parse().ok())
        .next()
        .unwrap_or(0.0)
}

struct PlateEvents {
    messages: jetstream::consumer::pull::Stream,
    /// Stream sequences already returned: a message redelivered because its
    /// ack was lost (NATS restarted) is the same stored event, not a new one.
    seen: std::collections::HashSet<u64>,
}

impl PlateEvents {
    /// The next stored event with its `Nats-Msg-Id` and `traceparent`.
    async fn next(&mut self) -> (PlateEvent, Option<String>, Option<String>) {
        let message = loop {
            let message = tokio::time::timeout(DEADLINE, self.messages.next())
                .await
                .expect("a plate event within the deadline")
                .expect("consumer stream open")
                .expect("consumer message");
            let sequence = message
                .info()
                .expect("JetStream message info")
                .stream_sequence;
            if self.seen.insert(sequence) {
                break message;
            }
            message.ack().await.expect("ack");
        };
        let event = PlateEvent::decode(message.payload.clone()).expect("a PlateEvent");
        let headers = message.headers.clone().unwrap_or_default();
        let msg_id = headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string());
        let traceparent = trace_context::traceparent(&headers).map(str::to_string);
        message.ack().await.expect("ack");
        (event, msg_id, traceparent)
    }

    /// Events up to and including the next Lost.
    async fn until_lost(&mut self) -> Vec<(PlateEvent, Option<String>, Option<String>)> {
        let mut events = Vec::new();
        loop {
            let next = self.next().await;
            let lost = next.0.kind() == PlateEventKind::Lost;
            events.push(next);
            if lost {
                return events;
            }
        }
    }
}

fn frame_reads(camera: &str, sequence: u64, reads: &[(&str, f32)]) -> FrameReads {
    let capture_time = prost_types::Timestamp::from(SystemTime::now());
    FrameReads {
        frame: Some(FrameRef {
            camera_id: camera.into(),
            sequence,
        }),
        capture_time: Some(capture_time),
        camera_ip: "192.0.2.10".into(),
        width: 1920,
        height: 1080,
        reads: reads
            .iter()
            .enumerate()
            .map(|(index, (text, confidence))| PlateRead {
                camera_id: camera.into(),
                frame: Some(FrameRef {
                    camera_id: camera.into(),
                    sequence,
                }),
                capture_time: Some(capture_time),
                text: text.to_string(),
                char_confidences: vec![*confidence; text.len()],
                confidence: *confidence,
                bbox: Some(BoundingBox {
                    x: 200.0 + 800.0 * index as f32 + sequence as f32,
                    y: 600.0,
                    width: 140.0,
                    height: 35.0,
                }),
                crop_jpeg: Some(format!("jpeg-{text}-{sequence}").into_bytes()),
                raw_text: text.to_string(),
            })
            .collect(),
    }
}

fn kinds(events: &[(PlateEvent, Option<String>, Option<String>)]) -> Vec<PlateEventKind> {
    events.iter().map(|(event, _, _)| event.kind()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_become_one_detect_and_one_lost_with_the_voted_text() {
    let stack = Stack::start().await;
    let camera = "gate-1";
    stack.add_camera(camera).await;
    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(2),
                lost_timeout_ms: Some(300),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut analytic = stack.start_analytic().await;
    let mut events = stack.plate_events(camera).await;
    stack.until_subscribed(&analytic, camera).await;

    // The recognizer's span: the plate event must continue its trace.
    let recognizer = tracing::info_span!("recognizer");
    let mut headers = async_nats::HeaderMap::new();
    trace_context::inject(&recognizer, &mut headers);
    let incoming = trace_context::traceparent(&headers)
        .expect("the test's span has a traceparent")
        .to_string();
    let trace_id = incoming.split('-').nth(1).expect("trace id").to_string();

    // No single read is right; the vote over all of them is.
    let reads = ["ABC123", "A8C123", "ABC123", "ABC1Z3", "ABC123"];
    for (index, text) in reads.iter().enumerate() {
        let frame = frame_reads(camera, 100 + index as u64, &[(text, 0.9)]);
        stack.publish_frame(camera, &frame, headers.clone()).await;
    }

    let received = events.until_lost().await;
    assert_eq!(
        kinds(&received),
        [PlateEventKind::Detect, PlateEventKind::Lost]
    );
    let (detect, detect_id, detect_trace) = &received[0];
    let (lost, lost_id, lost_trace) = &received[1];
    // Detect on the first read after the two skipped ones.
    assert_eq!(detect.read_count, 3);
    assert_eq!(detect.plate_text, "ABC123");
    assert_eq!(lost.plate_text, "ABC123");
    assert_eq!(lost.raw_text, "ABC123");
    assert_eq!(lost.read_count, 5);
    let mut candidates: Vec<_> = lost.candidates.iter().map(|c| c.text.as_str()).collect();
    candidates.sort();
    assert_eq!(candidates, ["A8C123", "ABC1Z3"]);
    assert_eq!(lost.track_id, detect.track_id);
    assert_ne!(lost.event_id, detect.event_id);
    assert_eq!(lost.camera_id, camera);
    assert_eq!(lost.camera_ip, "192.0.2.10");
    assert!(lost.best_bbox.is_some() && lost.best_crop_jpeg.is_some());
    assert_eq!(lost.event_time, lost.last_seen);
    let seconds = |t: Option<prost_types::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    assert!(seconds(lost.first_seen) < seconds(lost.last_seen));
    // Stored with the event id as message id, so a retried publish is stored once.
    assert_eq!(detect_id.as_deref(), Some(detect.event_id.as_str()));
    assert_eq!(lost_id.as_deref(), Some(lost.event_id.as_str()));
    // Same trace as the reads, new span.
    let outgoing = detect_trace
        .as_deref()
        .expect("the event carries a traceparent");
    assert_eq!(outgoing.split('-').nth(1), Some(trace_id.as_str()));
    assert_ne!(outgoing, incoming);
    // The Lost comes from the sweep (no frame follows), and still belongs to
    // the plate's trace.
    let lost_trace = lost_trace
        .as_deref()
        .expect("the Lost carries a traceparent");
    assert_eq!(lost_trace.split('-').nth(1), Some(trace_id.as_str()));

    // The Lost is in the stream as soon as NATS stored it; the analytic counts
    // it once the acknowledgement is back.
    let deadline = Instant::now() + DEADLINE;
    let body = loop {
        let body = analytic.metrics().await;
        if metric(&body, "anpr_analytic_events_published_total{kind=\"lost\"}") >= 1.0 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the Lost was never counted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        metric(
            &body,
            "anpr_analytic_events_published_total{kind=\"detect\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&body, "anpr_analytic_events_published_total{kind=\"lost\"}"),
        1.0
    );
    assert_eq!(metric(&body, "anpr_analytic_tracks_opened_total"), 1.0);
    assert_eq!(metric(&body, "anpr_analytic_reads_received_total"), 5.0);
    assert_eq!(metric(&body, "anpr_analytic_open_tracks"), 0.0);
    analytic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_applies_without_restart() {
    let stack = Stack::start().await;
    let camera = "lane-2";
    stack.add_camera(camera).await;
    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(2),
                lost_timeout_ms: Some(300),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut analytic = stack.start_analytic().await;
    let mut events = stack.plate_events(camera).await;
    stack.until_subscribed(&analytic, camera).await;

    let mut sequence = 100;
    for _ in 0..3 {
        sequence += 1;
        let frame = frame_reads(camera, sequence, &[("OLD111", 0.9)]);
        stack
            .publish_frame(camera, &frame, async_nats::HeaderMap::new())
            .await;
    }
    let before = events.until_lost().await;
    assert_eq!(before[0].0.kind(), PlateEventKind::Detect);
    assert_eq!(before[0].0.read_count, 3);

    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(0),
                ..AnalyticSettings::default()
            },
        )
        .await;
    // Each plate gets a single read. Once the change has reached the
    // analytic, such a plate is detected on that read, which skip 2 never
    // allows; plates read before that expire silently.
    let plates = ["KXW802", "PRT417", "MZD935", "FGH260", "JVN573", "TLE648"];
    let deadline = Instant::now() + DEADLINE;
    let detected = 'outer: loop {
        for plate in plates {
            assert!(
                Instant::now() < deadline,
                "the settings change never applied"
            );
            sequence += 1;
            let frame = frame_reads(camera, sequence, &[(plate, 0.9)]);
            stack
                .publish_frame(camera, &frame, async_nats::HeaderMap::new())
                .await;
            if let Ok((event, _, _)) =
                tokio::time::timeout(Duration::from_millis(500), events.next()).await
            {
                break 'outer event;
            }
        }
    };
    assert_eq!(detected.kind(), PlateEventKind::Detect);
    assert_eq!(detected.read_count, 1);
    assert!(plates.contains(&detected.plate_text.as_str()));
    analytic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_and_skipped() {
    let stack = Stack::start().await;
    let camera = "gate-3";
    stack.add_camera(camera).await;
    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(0),
                lost_timeout_ms: Some(300),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut analytic = stack.start_analytic().await;
    let mut events = stack.plate_events(camera).await;
    stack.until_subscribed(&analytic, camera).await;

    let none = async_nats::HeaderMap::new;
    stack
        .client
        .publish(
            subjects::reads(camera),
            b"\x0a\xff\xff\xff not protobuf".as_ref().into(),
        )
        .await
        .expect("publishing garbage");
    // A frame of another camera on this camera's subject.
    stack
        .publish_frame(
            camera,
            &frame_reads("gate-4", 1, &[("XYZ987", 0.9)]),
            none(),
        )
        .await;
    let mut no_time = frame_reads(camera, 2, &[("XYZ987", 0.9)]);
    no_time.capture_time = None;
    stack.publish_frame(camera, &no_time, none()).await;
    // A read whose confidences do not match its text is repaired and used.
    let mut uneven = frame_reads(camera, 3, &[("GOOD42", 0.9)]);
    uneven.reads[0].char_confidences.truncate(2);
    stack.publish_frame(camera, &uneven, none()).await;

    // Still working: the good read is detected, then lost.
    let received = events.until_lost().await;
    assert_eq!(
        kinds(&received),
        [PlateEventKind::Detect, PlateEventKind::Lost]
    );
    assert_eq!(received[0].0.plate_text, "GOOD42");

    let body = analytic.metrics().await;
    for reason in ["decode", "camera_mismatch", "missing_capture_time"] {
        let name = format!("anpr_analytic_malformed_messages_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&body, &name), 1.0, "{name} in\n{body}");
    }
    assert_eq!(metric(&body, "anpr_analytic_reads_repaired_total"), 1.0);
    assert_eq!(analytic.http_get("/readyz").await.0, 200);
    analytic.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_replica_ends_open_tracks_at_shutdown_and_skips_cameras_leased_elsewhere() {
    let stack = Stack::start().await;
    let (mine, theirs) = ("dock-a", "dock-b");
    for camera in [mine, theirs] {
        stack.add_camera(camera).await;
    }
    // Another replica's lease on `theirs`, but no live member: this replica
    // is the last one, and must end its tracks itself at shutdown.
    stack.lease_camera_elsewhere(theirs, "gone-replica").await;
    // Default timeout (5 s) and more: only the shutdown can end the track.
    stack
        .set_analytic(
            "",
            AnalyticSettings {
                skip_first_reads: Some(0),
                lost_timeout_ms: Some(600_000),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut analytic = stack.start_analytic().await;
    let mut mine_events = stack.plate_events(mine).await;
    let mut theirs_events = stack.plate_events(theirs).await;
    stack.until_subscribed(&analytic, mine).await;

    for sequence in 1..=2 {
        let headers = async_nats::HeaderMap::new;
        stack
            .publish_frame(
                theirs,
                &frame_reads(theirs, sequence, &[("NOTME1", 0.9)]),
                headers(),
            )
            .await;
        stack
            .publish_frame(
                mine,
                &frame_reads(mine, sequence, &[("DOCK77", 0.9)]),
                headers(),
            )
            .await;
    }
    let (detect, _, _) = mine_events.next().await;
    assert_eq!(detect.kind(), PlateEventKind::Detect);
    // The Detect comes from the first frame of `mine`; the second frame of
    // `theirs` may still be on its way.
    let deadline = Instant::now() + DEADLINE;
    let body = loop {
        let body = analytic.metrics().await;
        if metric(&body, "anpr_analytic_frames_not_owned_total") >= 2.0 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "frames of the other camera not counted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(metric(&body, "anpr_analytic_frames_not_owned_total"), 2.0);
    assert_eq!(metric(&body, "anpr_analytic_open_tracks"), 1.0);

    analytic.stop().await;
    let (lost, msg_id, _) = mine_events.next().await;
    assert_eq!(lost.kind(), PlateEventKind::Lost);
    assert_eq!(lost.track_id, detect.track_id);
    assert_eq!(lost.plate_text, "DOCK77");
    assert_eq!(lost.read_count, 2);
    assert_eq!(msg_id.as_deref(), Some(lost.event_id.as_str()));
    // The camera leased elsewhere produced nothing here.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), theirs_events.next())
            .await
            .is_err(),
        "events for a camera leased by another replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_a_camera_over_continues_its_open_track() {
    let stack = Stack::start().await;
    let camera = "gate-9";
    stack.add_camera(camera).await;
    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(0),
                lost_timeout_ms: Some(1_500),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut first = stack.start_analytic_named("first").await;
    let mut events = stack.plate_events(camera).await;
    stack.until_subscribed(&first, camera).await;
    let mut sequence = 100;
    let mut read = |stack_frame: &mut Vec<anpr_common::proto::FrameReads>| {
        sequence += 1;
        stack_frame.push(frame_reads(camera, sequence, &[("GATE99", 0.9)]));
    };
    let mut frames = Vec::new();
    for _ in 0..3 {
        read(&mut frames);
    }
    for frame in frames.drain(..) {
        stack
            .publish_frame(camera, &frame, async_nats::HeaderMap::new())
            .await;
    }
    let (detect, _, _) = events.next().await;
    assert_eq!(detect.kind(), PlateEventKind::Detect);

    // A second replica joins (it gets no camera: one camera, already held),
    // then the first stops: it hands the open track over instead of ending it.
    let second = stack.start_analytic_named("second").await;
    first.stop().await;
    // The plate is still in view: the second replica's reads continue the
    // same track once it holds the camera.
    let deadline = Instant::now() + DEADLINE;
    while metric(
        &second.metrics().await,
        "anpr_analytic_tracks_resumed_total",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the second replica never took the track over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        read(&mut frames);
    }
    for frame in frames.drain(..) {
        stack
            .publish_frame(camera, &frame, async_nats::HeaderMap::new())
            .await;
    }
    // No second Detect: the next event is the track's Lost, from the second
    // replica, after the timeout.
    let (lost, msg_id, _) = events.next().await;
    assert_eq!(lost.kind(), PlateEventKind::Lost, "got {lost:?}");
    assert_eq!(lost.track_id, detect.track_id);
    assert_eq!(lost.plate_text, "GATE99");
    assert_eq!(msg_id.as_deref(), Some(lost.event_id.as_str()));
    assert_ne!(lost.event_id, detect.event_id);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.next())
            .await
            .is_err(),
        "more events than one Detect and one Lost"
    );
    let body = second.metrics().await;
    assert_eq!(metric(&body, "anpr_analytic_open_tracks"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flush_retries_until_nats_is_back() {
    let mut stack = Stack::start().await;
    let camera = "exit-5";
    stack.add_camera(camera).await;
    stack
        .set_analytic(
            camera,
            AnalyticSettings {
                skip_first_reads: Some(0),
                lost_timeout_ms: Some(600_000),
                ..AnalyticSettings::default()
            },
        )
        .await;
    let mut analytic = stack.start_analytic().await;
    let mut events = stack.plate_events(camera).await;
    stack.until_subscribed(&analytic, camera).await;
    let frame = frame_reads(camera, 1, &[("EXIT55", 0.9)]);
    stack
        .publish_frame(camera, &frame, async_nats::HeaderMap::new())
        .await;
    let (detect, _, _) = events.next().await;
    assert_eq!(detect.kind(), PlateEventKind::Detect);

    // NATS goes away, then the service is told to stop: the Lost cannot be
    // stored, so it is retried (the endpoint still answers during the flush).
    stack.nats.stop();
    analytic.shutdown.cancel();
    let deadline = Instant::now() + DEADLINE;
    while metric(
        &analytic.metrics().await,
        "anpr_analytic_publish_retries_total",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no publish retry while NATS was down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(analytic.http_get("/readyz").await.0, 503);
    stack.nats.restart();
    analytic.stop().await;

    // Stored once, with the same event id, however many attempts it took.
    let (lost, msg_id, _) = events.next().await;
    assert_eq!(lost.kind(), PlateEventKind::Lost);
    assert_eq!(lost.track_id, detect.track_id);
    assert_eq!(msg_id.as_deref(), Some(lost.event_id.as_str()));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.next())
            .await
            .is_err(),
        "the Lost was stored more than once"
    );
}
