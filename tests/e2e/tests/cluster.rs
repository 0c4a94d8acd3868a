//! Horizontal scaling on a NATS cluster, with every service a process: a
//! real 3-node nats-server cluster (streams and KV buckets with 3 replicas),
//! 3 anpr-ingest, 2 anpr-analytic and 2 anpr-vms-bridge replicas, one
//! recognizer, 6 cameras. Each camera plays the same rendered clip as a live
//! camera (`rate=live`: the scene follows the wall clock, whoever reads it),
//! so that a replica taking a camera over sees what a real camera would show.
//!
//! The clip has three cars, each in its own 30 s slot (5 s in the picture,
//! 25 s of empty road: after a node loss, nats-server 2.9 needs 10-25 s to
//! elect new leaders for every stream and bucket). Between the cars:
//! - after the first: one ingest and one analytic replica are killed
//!   (SIGKILL); their cameras must be taken over within the lease TTL;
//! - after the second: the nats-server leading the plate stream is killed.
//!
//! Every car on every camera must reach the VMS simulator as exactly one
//! Detect and one Lost, in that order, and at no moment may two ingest
//! replicas read the same camera.
//!
//! Runs the release binaries (`cargo build --release --bins` first), and
//! needs nats-server, ffmpeg and the recognizer's models.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anpr_common::subjects;
use anpr_e2e::binaries::{models_dir, release_dir};
use anpr_e2e::processes::{self, http_get, unix_millis, Services};
use anpr_testkit::clip::{self, ClipSpec, DEFAULT_PLATES};
use anpr_testkit::NatsCluster;
use anpr_vms_sim::RecordedEvent;
use tokio_stream::StreamExt as _;

const CAMERAS: usize = 6;
const INGESTS: [&str; 3] = ["ingest-a", "ingest-b", "ingest-c"];
const ANALYTICS: [&str; 2] = ["analytic-a", "analytic-b"];
const BRIDGES: [&str; 2] = ["bridge-a", "bridge-b"];
const KILLED_INGEST: &str = "ingest-b";
const KILLED_ANALYTIC: &str = "analytic-a";
/// Lease TTL of ingest and analytic.
const LEASE_TTL: Duration = Duration::from_secs(5);
/// Longest the test waits for one read of a lease bucket.
const LEASE_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// VMS cameras of the simulator's fixture, by IP: two ANPR cameras each.
const VMS_CAMERA_IPS: [&str; 3] = ["192.168.1.21", "192.168.1.22", "192.168.1.23"];
const VMS_PASSWORD: &str = "cluster-password";
/// Time for every process to start and the leases to settle before the
/// clip's first pass begins.
const STARTUP: Duration = Duration::from_secs(45);
/// In the picture, then empty road, per car.
const ON_ROAD: f64 = 5.0;
const GAP: f64 = 25.0;
/// The analytic's lost timeout.
const LOST_TIMEOUT: Duration = Duration::from_millis(3_000);

fn camera_id(index: usize) -> String {
    format!("cam-{}", index + 1)
}

fn camera_name(index: usize) -> String {
    format!("Cam {}", index + 1)
}

#[test]
fn six_cameras_on_a_nats_cluster_survive_replica_crashes_and_a_node_loss() {
    let started = Instant::now();
    let log = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let spec = ClipSpec {
        plates: DEFAULT_PLATES.iter().map(|p| p.to_string()).collect(),
        seconds_per_plate: ON_ROAD,
        gap_seconds: GAP,
        width: 800,
        height: 450,
        fps: 10,
    };
    let clip = clip::plate_clip(&spec);
    let slot = Duration::from_secs_f64(spec.slot_seconds());
    log("clip ready");

    let mut cluster = NatsCluster::start(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _runtime = runtime.enter();
    let nats = runtime
        .block_on(async_nats::connect(cluster.urls().as_slice()))
        .expect("connecting to the cluster");
    let js = async_nats::jetstream::new(nats);
    log("NATS cluster of 3 up");

    let mut services = Services::new(release_dir());
    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("NATS_URL", cluster.url()),
            ("NATS_REPLICAS", "3".to_string()),
            ("LOG_FORMAT", "json".to_string()),
            ("RUST_LOG", "info,anpr_common::lease=debug".to_string()),
        ];
        env.extend(extra.iter().cloned());
        env
    };
    let config_url = services
        .start_config(&env(&[]))
        .unwrap_or_else(|err| panic!("{err:#}"));
    let vms_port = services
        .start_vms_sim(VMS_PASSWORD)
        .unwrap_or_else(|err| panic!("{err:#}"));
    let anprctl = |args: &[&str], stdin: Option<&str>| {
        processes::anprctl(services.bin_dir(), &config_url, args, stdin)
            .unwrap_or_else(|err| panic!("{err:#}"))
    };
    processes::add_simulator_target(
        services.bin_dir(),
        &config_url,
        "nx",
        vms_port,
        VMS_PASSWORD,
    )
    .unwrap_or_else(|err| panic!("{err:#}"));
    // Every camera plays the clip from the same moment, as live cameras
    // watching the same road would.
    let epoch = SystemTime::now() + STARTUP;
    let epoch_ms = unix_millis(epoch);
    let url = format!("file://{}?rate=live&epoch={epoch_ms}", clip.path.display());
    for index in 0..CAMERAS {
        anprctl(
            &[
                "camera",
                "add",
                &camera_id(index),
                "--url",
                &url,
                "--name",
                &camera_name(index),
                "--ip",
                VMS_CAMERA_IPS[index % VMS_CAMERA_IPS.len()],
                "--fps",
                "2",
            ],
            None,
        );
    }
    anprctl(
        &[
            "analytic",
            "set",
            "--skip-first",
            "1",
            "--min-confidence",
            "0.7",
            "--lost-timeout-ms",
            &LOST_TIMEOUT.as_millis().to_string(),
        ],
        None,
    );

    let ttl = LEASE_TTL.as_millis().to_string();
    let mut ingest_ports = BTreeMap::new();
    let result = (|| -> anyhow::Result<()> {
        let base = env(&[("ANPR_CONFIG_URL", config_url.clone())]);
        for name in BRIDGES {
            services.start_with_http_as(name, "anpr-vms-bridge", &[], &base)?;
        }
        for name in ANALYTICS {
            let mut env = base.clone();
            env.extend([
                ("ANPR_INSTANCE", name.to_string()),
                ("ANPR_LEASE_TTL_MS", ttl.clone()),
            ]);
            services.start_with_http_as(name, "anpr-analytic", &[], &env)?;
        }
        let models = models_dir().display().to_string();
        services.start_with_http("anpr-recognizer", &["--models-dir".into(), models], &base)?;
        services.wait_output(
            "anpr-recognizer",
            "anpr-recognizer started",
            Duration::from_secs(60),
        )?;
        for name in INGESTS {
            let mut env = base.clone();
            env.extend([
                ("ANPR_INSTANCE", name.to_string()),
                ("ANPR_LEASE_TTL_MS", ttl.clone()),
            ]);
            let port = services.start_with_http_as(name, "anpr-ingest", &[], &env)?;
            ingest_ports.insert(name.to_string(), port);
        }
        Ok(())
    })();
    if let Err(err) = result {
        panic!("{err:#}\n{}", services.tails(30));
    }
    log("every service started");

    // Who reads which camera, sampled from every live ingest's metrics all
    // through the run.
    let monitor = OwnershipMonitor::start(ingest_ports.clone());
    let fail = |services: &Services, message: String| -> ! {
        if let Some(dir) = services.save_outputs() {
            eprintln!("service outputs saved in {}", dir.display());
        }
        panic!("{message}\n{}", services.tails(40))
    };

    // Settled before the first car: every camera read by one replica, two each.
    let settled = wait_until(epoch, || {
        let owners = monitor.latest();
        let counts: Vec<usize> = INGESTS
            .iter()
            .map(|name| {
                owners
                    .values()
                    .filter(|owner| owner.as_str() == *name)
                    .count()
            })
            .collect();
        owners.len() == CAMERAS && counts == [2, 2, 2]
    });
    if !settled {
        fail(
            &services,
            format!(
                "cameras not spread 2/2/2 over the ingest replicas before the clip began: {:?}",
                monitor.latest()
            ),
        );
    }
    log(&format!("cameras spread: {:?}", monitor.latest()));

    let plates = &spec.plates;
    let car_done = |car: usize| -> SystemTime {
        epoch + slot * car as u32 + Duration::from_secs_f64(ON_ROAD) + LOST_TIMEOUT
    };
    // The events of one car's slot in the first pass (earlier passes ran
    // while the services started).
    let slot_ms = unix_millis_of(slot);
    let in_slot = |car: usize| {
        let from = epoch_ms + slot_ms * car as i64;
        move |event: &RecordedEvent| {
            event
                .timestamp_ms
                .is_some_and(|at| at >= from && at < from + slot_ms)
        }
    };
    let all_delivered = |car: usize| {
        let events: Vec<RecordedEvent> = vms_events(vms_port)
            .into_iter()
            .filter(in_slot(car))
            .collect();
        (0..CAMERAS).all(|camera| {
            ["Detect", "Lost"]
                .iter()
                .all(|kind| count(&events, camera, &plates[car], kind) >= 1)
        })
    };

    // Car 1 everywhere, then two replicas crash.
    if !wait_until(car_done(0) + Duration::from_secs(4), || all_delivered(0)) {
        fail(
            &services,
            format!(
                "car 1 not delivered on every camera: {}",
                summary(&vms_events(vms_port), plates)
            ),
        );
    }
    log("car 1: Detect and Lost from every camera");
    let ingest_before = monitor.latest();
    let orphaned: BTreeSet<String> = ingest_before
        .iter()
        .filter(|(_, owner)| owner.as_str() == KILLED_INGEST)
        .map(|(camera, _)| camera.clone())
        .collect();
    let analytic_orphans: BTreeSet<String> = (0..5)
        .map(|_| runtime.block_on(lease_holders(&js, subjects::ANALYTIC_LEASE_BUCKET)))
        .find(|holders| !holders.is_empty())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, holder)| holder == KILLED_ANALYTIC)
        .map(|(camera, _)| camera)
        .collect();
    monitor.forget(KILLED_INGEST);
    let sampled_before_kill = monitor.samples();
    let killed_at = Instant::now();
    services
        .kill(KILLED_INGEST)
        .unwrap_or_else(|err| panic!("{err:#}"));
    services
        .kill(KILLED_ANALYTIC)
        .unwrap_or_else(|err| panic!("{err:#}"));
    log(&format!(
        "killed {KILLED_INGEST} (cameras {orphaned:?}) and {KILLED_ANALYTIC} (cameras {analytic_orphans:?})"
    ));
    assert_eq!(orphaned.len(), 2, "{KILLED_INGEST} read {orphaned:?}");
    assert!(
        !analytic_orphans.is_empty(),
        "{KILLED_ANALYTIC} held no camera"
    );

    // Takeover: the leases first, then frames flowing from the new readers.
    let mut ingest_lease_takeover = None;
    let mut analytic_takeover = None;
    let mut ingest_reading = None;
    let next_car = epoch + slot;
    while SystemTime::now() < next_car
        && (ingest_lease_takeover.is_none()
            || analytic_takeover.is_none()
            || ingest_reading.is_none())
    {
        let ingest_leases = runtime.block_on(lease_holders(&js, subjects::INGEST_LEASE_BUCKET));
        if ingest_lease_takeover.is_none()
            && orphaned.iter().all(|camera| {
                ingest_leases
                    .get(camera)
                    .is_some_and(|holder| holder != KILLED_INGEST)
            })
        {
            ingest_lease_takeover = Some(killed_at.elapsed());
        }
        let analytic_leases = runtime.block_on(lease_holders(&js, subjects::ANALYTIC_LEASE_BUCKET));
        if analytic_takeover.is_none()
            && (0..CAMERAS).all(|camera| {
                analytic_leases.get(&camera_id(camera)).map(String::as_str) == Some(ANALYTICS[1])
            })
        {
            analytic_takeover = Some(killed_at.elapsed());
        }
        if ingest_reading.is_none()
            && monitor.samples() > sampled_before_kill + 1
            && orphaned
                .iter()
                .all(|camera| monitor.connected().contains(camera))
        {
            ingest_reading = Some(killed_at.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    log(&format!(
        "takeover after the crash (lease TTL {LEASE_TTL:?}): ingest leases {ingest_lease_takeover:?}, \
         cameras read again {ingest_reading:?}, analytic leases {analytic_takeover:?}"
    ));
    let (Some(ingest_lease), Some(analytic_lease), Some(_)) =
        (ingest_lease_takeover, analytic_takeover, ingest_reading)
    else {
        fail(
            &services,
            "the crashed replicas' cameras were not taken over".to_string(),
        );
    };
    assert!(
        ingest_lease < LEASE_TTL && analytic_lease < LEASE_TTL,
        "takeover took longer than the lease TTL: ingest {ingest_lease:?}, analytic {analytic_lease:?}"
    );

    // Car 2 everywhere, then the plate stream's leader node dies.
    if !wait_until(car_done(1) + Duration::from_secs(4), || all_delivered(1)) {
        fail(
            &services,
            format!(
                "car 2 not delivered on every camera after the crashes: {}",
                summary(&vms_events(vms_port), plates)
            ),
        );
    }
    log("car 2: Detect and Lost from every camera");
    let leader = runtime
        .block_on(async {
            let mut stream = js.get_stream(subjects::PLATE_STREAM).await.ok()?;
            let info = stream.info().await.ok()?;
            info.cluster.as_ref()?.leader.clone()
        })
        .unwrap_or_else(|| fail(&services, "the plate stream has no leader".to_string()));
    let node = (0..cluster.len())
        .find(|&i| cluster.node_name(i) == leader)
        .unwrap_or_else(|| fail(&services, format!("no node named {leader}")));
    cluster.stop_node(node);
    log(&format!(
        "killed nats-server {leader}, leader of {}",
        subjects::PLATE_STREAM
    ));

    // Car 3 everywhere, with one NATS node down.
    if !wait_until(car_done(2) + Duration::from_secs(8), || all_delivered(2)) {
        fail(
            &services,
            format!(
                "car 3 not delivered on every camera with a NATS node down: {}",
                summary(&vms_events(vms_port), plates)
            ),
        );
    }
    log("car 3: Detect and Lost from every camera");
    // Late duplicates would come within this.
    std::thread::sleep(Duration::from_secs(3));

    // Exactly once, in order, and one reader per camera throughout.
    let events: Vec<RecordedEvent> = vms_events(vms_port)
        .into_iter()
        .filter(|event| {
            event
                .timestamp_ms
                .is_some_and(|at| at >= epoch_ms && at < epoch_ms + slot_ms * 3)
        })
        .collect();
    let mut problems = Vec::new();
    for camera in 0..CAMERAS {
        for plate in plates {
            for kind in ["Detect", "Lost"] {
                let n = count(&events, camera, plate, kind);
                if n != 1 {
                    problems.push(format!("{} {plate} {kind}: {n} times", camera_name(camera)));
                }
            }
            let at = |kind: &str| {
                events
                    .iter()
                    .find(|e| is(e, camera, plate, kind))
                    .map(|e| e.received_at_ms)
            };
            if let (Some(detect), Some(lost)) = (at("Detect"), at("Lost")) {
                if lost < detect {
                    problems.push(format!(
                        "{} {plate}: Lost before Detect",
                        camera_name(camera)
                    ));
                }
            }
        }
    }
    let others: Vec<String> = events
        .iter()
        .filter(|e| !plates.contains(&e.caption))
        .map(|e| format!("{} {}", e.source, e.description))
        .collect();
    if !others.is_empty() {
        // Misreads are the recognizer's business, not this test's.
        eprintln!("note: the VMS also got events for plates not in the clip: {others:?}");
    }
    let violations = monitor.stop();
    log(&format!(
        "{} events checked; ownership sampled {} times",
        events.len(),
        violations.samples
    ));
    if !violations.doubles.is_empty() {
        fail(
            &services,
            format!(
                "cameras read by two ingest replicas at once: {:?}",
                violations.doubles
            ),
        );
    }
    if !problems.is_empty() {
        fail(&services, format!("not exactly once: {problems:#?}"));
    }
    eprintln!(
        "RESULT lease TTL {LEASE_TTL:?}: ingest takeover {ingest_lease:?} (lease), analytic takeover \
         {analytic_lease:?}; {} events, each expected one exactly once",
        CAMERAS * plates.len() * 2
    );
    services.save_outputs();
    let unclean = services.stop();
    assert!(unclean.is_empty(), "did not stop cleanly: {unclean:?}");
}

fn unix_millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Polls `done` every 200 ms until it holds or `deadline` passes.
fn wait_until(deadline: SystemTime, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if SystemTime::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn vms_events(port: u16) -> Vec<RecordedEvent> {
    let body = http_get(port, "/_fake/events").unwrap_or_else(|err| panic!("{err:#}"));
    serde_json::from_str(&body).unwrap_or_else(|err| panic!("/_fake/events: {err}: {body}"))
}

fn is(event: &RecordedEvent, camera: usize, plate: &str, kind: &str) -> bool {
    event.source == camera_name(camera)
        && event.caption == plate
        && event.description.starts_with(&format!("ANPR {kind} "))
}

fn count(events: &[RecordedEvent], camera: usize, plate: &str, kind: &str) -> usize {
    events.iter().filter(|e| is(e, camera, plate, kind)).count()
}

/// Per camera: the plates and kinds seen, for failure messages.
fn summary(events: &[RecordedEvent], plates: &[String]) -> String {
    let mut out = String::new();
    for camera in 0..CAMERAS {
        let seen: Vec<String> = events
            .iter()
            .filter(|e| e.source == camera_name(camera))
            .map(|e| {
                e.description
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(&format!("\n  {}: {seen:?}", camera_name(camera)));
    }
    out.push_str(&format!("\n  (clip plates {plates:?})"));
    out
}

/// `camera → holder` of a lease bucket; empty when it cannot be read within
/// [`LEASE_READ_TIMEOUT`]. A JetStream read can stall for seconds (in one CI
/// run the test saw the takeover 31 s after the crash, while the replicas'
/// logs show it done in 3: the polling loop had been waiting on these
/// reads), and the takeover is timed by them: callers poll again instead.
/// The services bound their own bucket reads the same way (`common::lease`).
async fn lease_holders(
    js: &async_nats::jetstream::Context,
    bucket: &str,
) -> BTreeMap<String, String> {
    tokio::time::timeout(LEASE_READ_TIMEOUT, read_lease_holders(js, bucket))
        .await
        .unwrap_or_default()
}

async fn read_lease_holders(
    js: &async_nats::jetstream::Context,
    bucket: &str,
) -> BTreeMap<String, String> {
    let mut holders = BTreeMap::new();
    let Ok(kv) = js.get_key_value(bucket).await else {
        return holders;
    };
    let Ok(mut keys) = kv.keys().await else {
        return holders;
    };
    let mut names = Vec::new();
    while let Some(Ok(key)) = keys.next().await {
        names.push(key);
    }
    for key in names {
        if let Some(camera) = key.strip_prefix("camera.") {
            if let Ok(Some(value)) = kv.get(key.clone()).await {
                holders.insert(
                    camera.to_string(),
                    String::from_utf8_lossy(&value).into_owned(),
                );
            }
        }
    }
    holders
}

/// Samples which ingest replica runs a worker for which camera (its
/// per-camera metrics), and records every moment a camera had two.
struct OwnershipMonitor {
    state: Arc<Mutex<MonitorState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct MonitorState {
    replicas: BTreeMap<String, u16>,
    latest: BTreeMap<String, String>,
    /// Cameras whose stream delivers frames, at the latest sample.
    connected: BTreeSet<String>,
    doubles: Vec<String>,
    samples: usize,
}

struct Violations {
    doubles: Vec<String>,
    samples: usize,
}

impl OwnershipMonitor {
    fn start(replicas: BTreeMap<String, u16>) -> Self {
        let state = Arc::new(Mutex::new(MonitorState {
            replicas,
            ..MonitorState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let replicas = state.lock().expect("monitor lock").replicas.clone();
                    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    let mut connected = BTreeSet::new();
                    for (name, port) in &replicas {
                        let Ok(metrics) = http_get(*port, "/metrics") else {
                            continue;
                        };
                        for (camera, streaming) in cameras_in_metrics(&metrics) {
                            if streaming {
                                connected.insert(camera.clone());
                            }
                            owners.entry(camera).or_default().push(name.clone());
                        }
                    }
                    let mut state = state.lock().expect("monitor lock");
                    state.samples += 1;
                    for (camera, readers) in &owners {
                        if readers.len() > 1 {
                            let at = unix_millis(SystemTime::now());
                            state.doubles.push(format!("{at}: {camera} in {readers:?}"));
                        }
                    }
                    state.connected = connected;
                    state.latest = owners
                        .into_iter()
                        .map(|(camera, mut readers)| (camera, readers.remove(0)))
                        .collect();
                    drop(state);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        OwnershipMonitor {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `camera → replica` at the latest sample.
    fn latest(&self) -> BTreeMap<String, String> {
        self.state.lock().expect("monitor lock").latest.clone()
    }

    /// Cameras delivering frames at the latest sample.
    fn connected(&self) -> BTreeSet<String> {
        self.state.lock().expect("monitor lock").connected.clone()
    }

    /// Samples taken so far.
    fn samples(&self) -> usize {
        self.state.lock().expect("monitor lock").samples
    }

    /// Stops asking a replica that is about to be killed.
    fn forget(&self, replica: &str) {
        self.state
            .lock()
            .expect("monitor lock")
            .replicas
            .remove(replica);
    }

    fn stop(mut self) -> Violations {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let state = self.state.lock().expect("monitor lock");
        Violations {
            doubles: state.doubles.clone(),
            samples: state.samples,
        }
    }
}

/// Cameras with a worker in one ingest's metrics text, and whether their
/// stream delivers frames (`anpr_ingest_camera_connected` 1).
fn cameras_in_metrics(metrics: &str) -> BTreeMap<String, bool> {
    metrics
        .lines()
        .filter(|line| line.starts_with("anpr_ingest_camera_connected{"))
        .filter_map(|line| {
            let camera = line.split("camera=\"").nth(1)?.split('"').next()?;
            let value = line.rsplit(' ').next()?.trim();
            Some((camera.to_string(), value == "1"))
        })
        .collect()
}
