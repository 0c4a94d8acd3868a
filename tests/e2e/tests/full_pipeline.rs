//! Every service as its own process, from a camera to the VMS: an RTSP
//! server loops a rendered clip in which cars with known plates drive past;
//! anpr-ingest pulls it, anpr-recognizer reads the plates, anpr-analytic
//! turns reads into Detect and Lost, anpr-vms-bridge posts them to the
//! simulated Nx Witness server (anpr-vms-sim), all configured through
//! anpr-config with anprctl, as an operator would.
//!
//! Runs the release binaries (`cargo build --release --bins` first;
//! `$ANPR_BIN_DIR` overrides where they are) and needs nats-server, ffmpeg,
//! GStreamer's RTSP server for Python and the recognizer's models.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anpr_common::proto::{PlateEvent, PlateEventKind};
use anpr_e2e::binaries::{models_dir, release_bin, release_dir};
use anpr_e2e::otlp::OtlpCollector;
use anpr_e2e::processes::{self, http_get, unix_millis, Services};
use anpr_testkit::clip::{self, ClipSpec, PlateClip};
use anpr_testkit::{NatsServer, RtspServer};
use anpr_vms_sim::{RecordedEvent, GATE1_ID};
use prost::Message as _;
use tokio_stream::StreamExt as _;

const CAMERA: &str = "gate-1";
const CAMERA_NAME: &str = "Gate 1 entry";
/// The simulator's fixture camera "Gate 1" is known by this bare IP.
const CAMERA_IP: &str = "192.168.1.21";
const VMS_PASSWORD: &str = "e2e-password";

/// From the first frame to every plate's Detect and Lost in the VMS.
const FIRST_PASS: Duration = Duration::from_secs(120);
/// How long the camera is away.
const OUTAGE: Duration = Duration::from_secs(10);
/// From the camera's return to every plate's Detect and Lost again.
const AFTER_OUTAGE: Duration = Duration::from_secs(120);
/// Services the plate's trace must run through.
const TRACED_SERVICES: [&str; 4] = [
    "anpr-ingest",
    "anpr-recognizer",
    "anpr-analytic",
    "anpr-vms-bridge",
];

#[test]
fn the_recognizer_reads_every_plate_of_the_test_clip() {
    let clip = clip::plate_clip(&ClipSpec::default());
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut files = Vec::new();
    let mut expected = BTreeMap::new();
    for (index, plate) in clip.plates.iter().enumerate() {
        for (n, at) in clip.mid_crossing_times(index, 3).into_iter().enumerate() {
            let name = format!("plate{index}-{n}.jpg");
            clip.extract_frame(at, &dir.path().join(&name));
            expected.insert(name.clone(), plate.clone());
            files.push(dir.path().join(name));
        }
    }
    let output = Command::new(release_bin("anpr-recognizer"))
        .arg("image")
        .arg("--models-dir")
        .arg(models_dir())
        .args(&files)
        .env("LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .output()
        .expect("running anpr-recognizer image");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "anpr-recognizer image failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut read = BTreeMap::new();
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
        let file = value["file"].as_str().unwrap_or_default();
        let name = Path::new(file)
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_string();
        let plates: Vec<String> = value["plates"]
            .as_array()
            .map(|plates| {
                plates
                    .iter()
                    .filter_map(|plate| plate["plate"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        read.insert(name, plates);
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(file, plate)| read.get(*file).map(Vec::as_slice) != Some(&[plate.to_string()]))
        .map(|(file, plate)| format!("{file}: expected [{plate}], read {:?}", read.get(file)))
        .collect();
    assert!(wrong.is_empty(), "misread frames:\n{}", wrong.join("\n"));
}

#[test]
fn plates_from_an_rtsp_camera_reach_the_vms_through_every_service_and_survive_an_outage() {
    let started = Instant::now();
    let clip = clip::plate_clip(&ClipSpec::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut pipeline = Pipeline::start(&clip, &runtime);
    eprintln!("[{:>5.1?}] every service started", started.elapsed());

    // Every plate: a Detect and a Lost with its text, on the right camera.
    let first_pass = pipeline.wait_for_every_plate(&clip.plates, 0, FIRST_PASS);
    eprintln!(
        "[{:>5.1?}] first pass: every plate detected and lost",
        started.elapsed()
    );

    // The camera goes away for a while and comes back on the same address.
    pipeline.rtsp.stop();
    eprintln!("[{:>5.1?}] camera stopped", started.elapsed());
    std::thread::sleep(OUTAGE);
    pipeline.rtsp.restart();
    let back_at = unix_millis(SystemTime::now());
    eprintln!("[{:>5.1?}] camera back", started.elapsed());
    pipeline.wait_for_every_plate(&clip.plates, back_at, AFTER_OUTAGE);
    eprintln!(
        "[{:>5.1?}] after the outage: every plate detected and lost again",
        started.elapsed()
    );

    // Nothing went anywhere but the camera the VMS knows by the camera's IP.
    let events = pipeline.vms_events();
    let misaddressed: Vec<&RecordedEvent> = events
        .iter()
        .filter(|event| event.resolved_camera_ids != [GATE1_ID] || event.source != CAMERA_NAME)
        .collect();
    assert!(
        misaddressed.is_empty(),
        "events not addressed to Gate 1: {misaddressed:#?}"
    );
    let unexpected: BTreeSet<&str> = events
        .iter()
        .map(|event| event.caption.as_str())
        .filter(|caption| !clip.plates.iter().any(|plate| plate == caption))
        .collect();
    if !unexpected.is_empty() {
        // Misreads are the recognizer's business, not this test's; shown
        // for whoever tunes the clip.
        eprintln!("note: the VMS also got plates not in the clip: {unexpected:?}");
    }

    // One trace per plate passage, through every service.
    pipeline.check_trace(&first_pass);
    eprintln!("[{:>5.1?}] trace checked", started.elapsed());
    pipeline.stop();
}

/// Every process of the pipeline, and what the test sees of it.
struct Pipeline {
    // Dropped in this order: the services before the things they talk to.
    services: Services,
    rtsp: RtspServer,
    vms_port: u16,
    otlp: OtlpCollector,
    bus: Arc<Mutex<BusLog>>,
    _nats: NatsServer,
}

/// What the test saw on NATS.
#[derive(Default)]
struct BusLog {
    /// Plate events: kind, text, trace id of their `traceparent` (if any).
    plates: Vec<(PlateEventKind, String, Option<String>)>,
    frames_with_trace: usize,
    frames_without_trace: usize,
    frame_traces: BTreeSet<String>,
    reads_with_trace: usize,
    reads_without_trace: usize,
}

/// A Detect in the VMS, for the trace check.
struct Passage {
    plate: String,
}

impl Pipeline {
    fn start(clip: &PlateClip, runtime: &tokio::runtime::Runtime) -> Pipeline {
        let nats = NatsServer::start();
        let otlp = runtime
            .block_on(OtlpCollector::start())
            .expect("OTLP receiver");
        let bus = Arc::new(Mutex::new(BusLog::default()));
        runtime.block_on(watch_bus(&nats.url(), bus.clone()));

        let mut services = Services::new(release_dir());
        let common_env = |extra: &[(&'static str, String)]| {
            let mut env = vec![
                ("NATS_URL", nats.url()),
                ("LOG_FORMAT", "json".to_string()),
                ("RUST_LOG", "info".to_string()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
                // Export spans every half second instead of every five.
                ("OTEL_BSP_SCHEDULE_DELAY", "500".to_string()),
            ];
            env.extend(extra.iter().cloned());
            env
        };

        let config_url = services
            .start_config(&common_env(&[]))
            .unwrap_or_else(|err| panic!("{err:#}"));
        let vms_port = services
            .start_vms_sim(VMS_PASSWORD)
            .unwrap_or_else(|err| panic!("{err:#}"));

        let rtsp = RtspServer::start(&clip.path);

        // The operator's session.
        let anprctl = |args: &[&str], stdin: Option<&str>| {
            processes::anprctl(services.bin_dir(), &config_url, args, stdin)
                .unwrap_or_else(|err| panic!("{err:#}"))
        };
        processes::add_simulator_target(
            services.bin_dir(),
            &config_url,
            "nx-gate",
            vms_port,
            VMS_PASSWORD,
        )
        .unwrap_or_else(|err| panic!("{err:#}"));
        anprctl(
            &[
                "camera",
                "add",
                CAMERA,
                "--url",
                &rtsp.url(),
                "--name",
                CAMERA_NAME,
                "--ip",
                CAMERA_IP,
                "--fps",
                "5",
            ],
            None,
        );
        anprctl(
            &[
                "analytic",
                "set",
                "--skip-first",
                "1",
                "--min-confidence",
                "0.7",
                "--lost-timeout-ms",
                "1500",
            ],
            None,
        );

        let service_env = common_env(&[("ANPR_CONFIG_URL", config_url.clone())]);
        let started = (|| -> anyhow::Result<()> {
            for name in ["anpr-vms-bridge", "anpr-analytic"] {
                services.start_with_http(name, &[], &service_env)?;
            }
            // The bridge delivers the events published after its consumer exists.
            services.wait_output(
                "anpr-vms-bridge",
                "delivering to VMS target",
                Duration::from_secs(30),
            )?;
            let models = models_dir().display().to_string();
            services.start_with_http(
                "anpr-recognizer",
                &["--models-dir".into(), models],
                &service_env,
            )?;
            services.wait_output(
                "anpr-recognizer",
                "anpr-recognizer started",
                Duration::from_secs(60),
            )?;
            services.start_with_http(
                "anpr-ingest",
                &["--rtsp-transport".into(), "tcp".into()],
                &service_env,
            )?;
            Ok(())
        })();
        if let Err(err) = started {
            panic!("{err:#}");
        }

        Pipeline {
            services,
            rtsp,
            vms_port,
            otlp,
            bus,
            _nats: nats,
        }
    }

    /// The events the simulated VMS received so far.
    fn vms_events(&self) -> Vec<RecordedEvent> {
        let body = http_get(self.vms_port, "/_fake/events")
            .unwrap_or_else(|err| self.fail(&format!("GET /_fake/events: {err:#}")));
        serde_json::from_str(&body).unwrap_or_else(|err| {
            self.fail(&format!(
                "/_fake/events is not a list of events ({err}): {body}"
            ))
        })
    }

    /// Waits until the VMS received, after `since_ms` (Unix ms, simulator
    /// clock), a Detect and a Lost of every plate in `plates`, addressed to
    /// Gate 1. Returns the plates' Detects.
    fn wait_for_every_plate(
        &self,
        plates: &[String],
        since_ms: i64,
        timeout: Duration,
    ) -> Vec<Passage> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.vms_events();
            let seen = |kind: &str, plate: &str| {
                events.iter().any(|event| {
                    event.received_at_ms >= since_ms
                        && event.caption == plate
                        && event
                            .description
                            .starts_with(&format!("ANPR {kind} {plate} "))
                        && event.resolved_camera_ids == [GATE1_ID]
                        && event.source == CAMERA_NAME
                })
            };
            let missing: Vec<String> = plates
                .iter()
                .flat_map(|plate| {
                    ["Detect", "Lost"]
                        .into_iter()
                        .filter(|kind| !seen(kind, plate))
                        .map(move |kind| format!("{kind} {plate}"))
                })
                .collect();
            if missing.is_empty() {
                return plates
                    .iter()
                    .map(|plate| Passage {
                        plate: plate.clone(),
                    })
                    .collect();
            }
            if Instant::now() > deadline {
                let received: Vec<String> = events
                    .iter()
                    .map(|event| {
                        format!(
                            "  at {} on {:?}: {}",
                            event.received_at_ms, event.resolved_camera_ids, event.description
                        )
                    })
                    .collect();
                self.fail(&format!(
                    "within {timeout:?} (events after Unix ms {since_ms}) the VMS did not get: {}\n\
                     it received:\n{}",
                    missing.join(", "),
                    received.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The Detect and Lost of one passage share one trace, and that trace
    /// has spans from every service between the camera and the VMS.
    fn check_trace(&self, passages: &[Passage]) {
        let plate = &passages[0].plate;
        let (detect, lost) = {
            let bus = self.bus.lock().expect("bus log");
            let trace = |kind: PlateEventKind| {
                bus.plates
                    .iter()
                    .find(|(k, text, _)| *k == kind && text == plate)
                    .map(|(_, _, trace)| trace.clone())
            };
            let detect = trace(PlateEventKind::Detect);
            let lost = trace(PlateEventKind::Lost);
            eprintln!(
                "bus: frames with traceparent {}, without {}; reads with {}, without {}",
                bus.frames_with_trace,
                bus.frames_without_trace,
                bus.reads_with_trace,
                bus.reads_without_trace
            );
            (detect, lost)
        };
        let detect = detect
            .unwrap_or_else(|| self.fail(&format!("no Detect of {plate} seen on NATS")))
            .unwrap_or_else(|| {
                self.fail(&format!("the Detect of {plate} on NATS has no traceparent"))
            });
        let lost = lost
            .unwrap_or_else(|| self.fail(&format!("no Lost of {plate} seen on NATS")))
            .unwrap_or_else(|| {
                self.fail(&format!("the Lost of {plate} on NATS has no traceparent"))
            });
        assert_eq!(
            lost, detect,
            "the Lost of {plate} continues its Detect's trace"
        );

        let bus = self.bus.lock().expect("bus log");
        let from_a_frame = bus.frame_traces.contains(&detect);
        let (frames_with, frames_without) = (bus.frames_with_trace, bus.frames_without_trace);
        drop(bus);

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let services = self.otlp.services_in_trace(&detect);
            let missing: Vec<&str> = TRACED_SERVICES
                .into_iter()
                .filter(|service| !services.contains(*service))
                .collect();
            if missing.is_empty() {
                let names: BTreeSet<String> = self
                    .otlp
                    .trace(&detect)
                    .into_iter()
                    .map(|span| format!("{}:{}", span.service, span.name))
                    .collect();
                eprintln!("trace {detect} of {plate}: {names:?}");
                break;
            }
            if Instant::now() > deadline {
                let spans: Vec<String> = self
                    .otlp
                    .trace(&detect)
                    .iter()
                    .map(|span| {
                        format!(
                            "  {} {} (parent {:?})",
                            span.service, span.name, span.parent_span_id
                        )
                    })
                    .collect();
                self.fail(&format!(
                    "the trace {detect} of {plate} has no spans from {missing:?}.\n\
                     Its spans:\n{}\n\
                     Services that exported any span: {:?}\n\
                     The Detect's trace started at a frame published by anpr-ingest: {from_a_frame} \
                     (frames on NATS with a traceparent: {frames_with}, without: {frames_without})",
                    spans.join("\n"),
                    self.otlp.services()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(
            from_a_frame,
            "the trace {detect} of {plate} is not the trace of any frame anpr-ingest published"
        );
    }

    /// Stops the services in reverse order of start, politely.
    fn stop(mut self) {
        for name in self.services.stop() {
            eprintln!("{name} did not exit cleanly on SIGTERM");
        }
    }

    /// Panics with `message` and the tail of every service's output.
    fn fail(&self, message: &str) -> ! {
        let mut report = self.services.tails(40);
        report.push_str(&format!("\n===== RTSP server\n{}", self.rtsp.log()));
        panic!("{message}\n{report}");
    }
}

/// Records the plate events, frames and reads on NATS with their trace ids.
async fn watch_bus(url: &str, log: Arc<Mutex<BusLog>>) {
    let client = async_nats::connect(url)
        .await
        .expect("connecting the test's NATS client");
    let mut plates = client
        .subscribe("anpr.v1.plates.>")
        .await
        .expect("subscribing to plate events");
    let mut frames = client
        .subscribe("anpr.v1.frames.>")
        .await
        .expect("subscribing to frames");
    let mut reads = client
        .subscribe("anpr.v1.reads.>")
        .await
        .expect("subscribing to reads");
    client.flush().await.expect("flushing the subscriptions");
    let plate_log = log.clone();
    tokio::spawn(async move {
        while let Some(message) = plates.next().await {
            let trace = trace_id(message.headers.as_ref());
            if let Ok(event) = PlateEvent::decode(message.payload.as_ref()) {
                if let Ok(mut log) = plate_log.lock() {
                    log.plates
                        .push((event.kind(), event.plate_text.clone(), trace));
                }
            }
        }
    });
    let frame_log = log.clone();
    tokio::spawn(async move {
        while let Some(message) = frames.next().await {
            let trace = trace_id(message.headers.as_ref());
            if let Ok(mut log) = frame_log.lock() {
                match trace {
                    Some(trace) => {
                        log.frames_with_trace += 1;
                        log.frame_traces.insert(trace);
                    }
                    None => log.frames_without_trace += 1,
                }
            }
        }
    });
    tokio::spawn(async move {
        // Keep the client alive as long as the subscriptions.
        let _client = client;
        while let Some(message) = reads.next().await {
            let traced = trace_id(message.headers.as_ref()).is_some();
            if let Ok(mut log) = log.lock() {
                if traced {
                    log.reads_with_trace += 1;
                } else {
                    log.reads_without_trace += 1;
                }
            }
        }
    });
}

/// The trace id of a message's `traceparent` header.
fn trace_id(headers: Option<&async_nats::HeaderMap>) -> Option<String> {
    let traceparent = anpr_common::trace_context::traceparent(headers?)?;
    traceparent.split('-').nth(1).map(str::to_string)
}
