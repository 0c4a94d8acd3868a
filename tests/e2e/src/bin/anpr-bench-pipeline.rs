//! Pipeline benchmark: N simultaneous 1280x720 25 fps RTSP cameras through
//! every service, each as its own release process (nats-server, anpr-config,
//! anpr-vms-sim, anpr-vms-bridge, anpr-analytic, anpr-recognizer,
//! anpr-ingest), N raised until ingest drops frames or decodes slower than
//! the cameras send.
//!
//! Each camera is one GStreamer RTSP server process (the test kit's
//! `rtsp_server.py`) looping the test kit's plate clip: three cars with
//! known plates, 4 s in the picture and 3 s of empty road each, 21 s a loop.
//! For every N a fresh pipeline is started, warmed up, then measured over a
//! fixed window:
//!
//! - CPU time (utime + stime from `/proc/<pid>/stat`) of every process,
//!   as % of one core: ingest, recognizer, the RTSP servers (apart, so they
//!   are not charged to ingest), the rest; and the whole machine from
//!   `/proc/stat`, so that load from outside the benchmark shows.
//! - ingest's `/metrics`: frames decoded and published per camera, frames
//!   dropped (by reason), reconnects.
//! - the recognizer's `/metrics`: frames processed, dropped as too old or
//!   pushed out of its full queue.
//! - the age of each frame on NATS (the benchmark's own subscriber): receive
//!   time minus the frame's capture time.
//! - the plate events the simulated VMS received (`GET /_fake/events`):
//!   camera-to-VMS latency = the simulator's receive time minus the Generic
//!   Event's `timestamp`, which is the capture time of the frame whose read
//!   caused the event; for Lost also with the lost timeout subtracted (a
//!   Lost waits for it by definition). Expected events: one Detect and one
//!   Lost per car passage, the passages known from each camera's first
//!   frame (the clip starts at each connection) and the clip's timing.
//!
//! `--ingest-only` runs no recognizer, analytic or bridge: the benchmark's
//! subscriber takes the frames, to find ingest's own limit.
//!
//! `--replicas 1,2` compares recognizer replica counts instead: a fixed
//! number of cameras sending more frames than one recognizer reads, and for
//! each replica count (and each `--recognizer-onnx-threads` value) one
//! full-pipeline run with that many `anpr-recognizer` processes, which share
//! the frames through their NATS queue group. It reports frames/s read by
//! all replicas together, plate events/s at the VMS, and their ratios to
//! the run with the fewest replicas.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anpr_common::proto::{Frame, FrameReads};
use anpr_e2e::binaries::{find_models_dir, release_dir};
use anpr_e2e::measure::{
    self, children, clock_ticks_per_second, comm_of, percentile, proc_stat, MachineCpu, Metrics,
};
use anpr_e2e::processes::{
    add_simulator_target, anprctl, http_get, no_panic, unix_millis, Services,
};
use anpr_testkit::clip::{self, ClipSpec, PlateClip};
use anpr_testkit::{NatsServer, RtspServer};
use anpr_vms_sim::RecordedEvent;
use anyhow::{bail, Context as _};
use clap::Parser;
use prost::Message as _;
use tokio_stream::StreamExt as _;

/// A section of docs/benchmarks.md this benchmark writes: `--docs`
/// replaces what lies between `begin` and `end`, or adds the section.
struct DocSection {
    heading: &'static str,
    begin: &'static str,
    end: &'static str,
    /// The text before the results when the section is new.
    intro: &'static str,
}

/// The camera-count sets' section.
const PIPELINE_DOC: DocSection = DocSection {
    heading: "## Pipeline: N cameras from RTSP to the VMS",
    begin: "<!-- anpr-bench-pipeline: results from here on are written by --docs; text outside them is kept -->",
    end: "<!-- anpr-bench-pipeline: end of results -->",
    intro: "`anpr-bench-pipeline` (in `tests/e2e`) runs N looped 1280x720 25 fps RTSP cameras \
            through every service as its own release process and measures ingest's CPU, frame rates and \
            drops, the recognizer's throughput and the camera-to-VMS latency of plate events.",
};

/// The replica comparison's section (`--replicas`).
const REPLICAS_DOC: DocSection = DocSection {
    heading: "## Recognizer replicas: 1 against 2 on this machine",
    begin: "<!-- anpr-bench-pipeline --replicas: results from here on are written by --docs; text outside them is kept -->",
    end: "<!-- anpr-bench-pipeline --replicas: end of results -->",
    intro: REPLICAS_INTRO,
};

const REPLICAS_INTRO: &str =
    "`anpr-bench-pipeline --replicas 1,2` (in `tests/e2e`) runs the full pipeline of the section
\"Pipeline: N cameras from RTSP to the VMS\" (every service a release process, looped 720p RTSP
cameras, the VMS simulator) with a fixed number of cameras, once with one `anpr-recognizer`
process and once with two. The replicas subscribe to the frames (`anpr.v1.frames.>`) in the NATS
queue group `recognizer`, so NATS hands each frame to one of them; each replica has its own queue
and workers. By default 6 cameras sample 5 fps each, 30 frames/s, several times what one replica
reads, so the recognizers are saturated in every run. Cameras are staggered, warm-up 20 s, window
60 s, analytic settings as in that section. Every replica gets the same `--onnx-threads`, always
passed, so that the runs compare like with like; `--recognizer-onnx-threads 2,1` runs the
comparison with 2 threads per replica (the service's default: two replicas then run four
inference threads on the machine's cores) and with 1 (two replicas then run as many inference
threads as one replica with 2). Each run is a fresh pipeline.

- **Frames/s offered**: frames ingest published over the window, all cameras together.
- **Frames/s in / read**: `anpr_recognizer_frames_received_total` and
  `anpr_recognizer_frames_processed_total` over the window, summed over the replicas, per second;
  each replica's frames/s read in brackets. **Drops**: `anpr_recognizer_frames_dropped_total` over
  the window by reason, summed over the replicas.
- **FrameReads out of capture order**: `FrameReads` of the window that reached the benchmark's NATS
  subscriber after the `FrameReads` of a later frame of the same camera. The analytic subscribes
  to the same subject and gets them in the same order. Replicas reading in parallel can finish out
  of order; one replica with one worker cannot.
- **Plate events/s, all**: the Detect and Lost Generic Events the VMS simulator recorded whose
  `timestamp` (the capture time of the frame whose read caused the event) lies in the window, per
  second of the window: camera to VMS through every service. **Passages' Detect + Lost**: car
  passages with a Detect plus car passages with a Lost, per second of the window: the events that
  stand for distinct passages. The difference is mostly **extra events**: a second track for the
  same passage, with its own Detect and Lost. The clip bounds the useful events: a car passage
  gives one Detect and one Lost, so the **ceiling** is two events per passage in the window; below
  it, passages were missed.
- **Car passages with a Detect**, **Detect latency**, **CPU**, **machine busy** and **other work**
  as in that section. Recognizer CPU is that of all replicas together.
- **Ratio**: a run's figure divided by that of the run with the fewest replicas at the same
  cameras and ONNX threads.";

/// The camera counts of the camera-count sets when `--cameras` is not given.
const DEFAULT_CAMERAS: [usize; 12] = [1, 2, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64];
/// The camera count of the replica comparison when `--cameras` is not given.
const DEFAULT_REPLICA_CAMERAS: usize = 6;
/// Frames per second per camera in the full pipeline when `--fps` is not given.
const DEFAULT_FPS: f64 = 2.0;
/// The same for the replica comparison: 6 cameras at 5 fps offer 30 frames/s,
/// several times what one or two replicas read on 2 cores.
const DEFAULT_REPLICA_FPS: f64 = 5.0;
/// The recognizer's own `--onnx-threads` default, passed explicitly in the
/// replica comparison when `--recognizer-onnx-threads` is not given.
const RECOGNIZER_DEFAULT_ONNX_THREADS: usize = 2;

/// Every camera is mapped to the simulator's fixture camera "Gate 1", known
/// by this bare IP: the mapping is not what is measured.
const VMS_CAMERA_IP: &str = "192.168.1.21";
const VMS_PASSWORD: &str = "bench-password";
/// How far from its passage an event's capture time may lie.
const EVENT_TOLERANCE_MS: i64 = 1000;
/// Decoding slower than this share of the source's frame rate counts as
/// falling behind.
const BEHIND_SHARE: f64 = 0.96;
/// Binaries copied before the first run, so a rebuild meanwhile changes nothing.
const BINARIES: [&str; 7] = [
    "anpr-config",
    "anpr-vms-sim",
    "anpr-vms-bridge",
    "anpr-analytic",
    "anpr-recognizer",
    "anpr-ingest",
    "anprctl",
];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// N simultaneous 720p RTSP cameras through every service: ingest CPU per
/// camera, frame rates and drops, recognizer throughput, camera-to-VMS
/// latency of plate events.
#[derive(Debug, Parser)]
#[command(name = "anpr-bench-pipeline", version)]
struct Args {
    /// Camera counts, in order. A run set stops after the first count at
    /// which ingest drops frames, reconnects, or decodes a camera at under
    /// 96 % of its 25 fps. Default: 1,2,4,8,12,16,20,24,32,40,48,64; with
    /// --replicas: 6.
    #[arg(long, value_delimiter = ',')]
    cameras: Vec<usize>,
    /// Only the ingest-only run set: no recognizer, analytic, bridge or VMS;
    /// the benchmark's NATS subscriber takes the frames.
    #[arg(long, conflicts_with = "full_only")]
    ingest_only: bool,
    /// Only the full-pipeline run set.
    #[arg(long)]
    full_only: bool,
    /// Compare these recognizer replica counts (e.g. 1,2) instead of the
    /// camera-count sets: one full-pipeline run for every camera count of
    /// --cameras, every value of --recognizer-onnx-threads and every replica
    /// count, in that nesting. --docs then writes the section "Recognizer
    /// replicas: 1 against 2 on this machine".
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with_all = ["ingest_only", "full_only", "keep_going"]
    )]
    replicas: Vec<usize>,
    /// Frames per second each camera sends to recognition in the full
    /// pipeline (the camera's sample rate). The recognizer reads about 5-7
    /// frames/s on 2 cores, all cameras together. Default 2; with
    /// --replicas 5, so that the recognizers are saturated.
    #[arg(long)]
    fps: Option<f64>,
    /// Sample rate per camera in the ingest-only set (the service's default
    /// for a camera is 10).
    #[arg(long, default_value_t = 10.0)]
    ingest_only_fps: f64,
    /// Seconds between starting ingest and the start of the window.
    #[arg(long, default_value_t = 20)]
    warmup_s: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    window_s: u64,
    /// The analytic's lost timeout (shorter than the clip's 3 s of empty
    /// road between cars, so each passage ends before the next begins).
    #[arg(long, default_value_t = 2000)]
    lost_timeout_ms: u32,
    /// Plate reads the analytic skips before a Detect.
    #[arg(long, default_value_t = 1)]
    skip_first: u32,
    /// The recognizer's `--workers` (frames read at the same time); its
    /// own default when not given.
    #[arg(long)]
    recognizer_workers: Option<usize>,
    /// The recognizer's `--onnx-threads` (threads per model, per replica);
    /// its own default (2) when not given. With --replicas a list (e.g. 2,1),
    /// each value compared on its own, and always passed: 2 when not given.
    #[arg(long, value_delimiter = ',')]
    recognizer_onnx_threads: Vec<usize>,
    /// Run every camera count, also after ingest dropped frames.
    #[arg(long)]
    keep_going: bool,
    /// Start every camera at once, so that their cars, key frames and
    /// sampled frames are in step (the worst case for bursts). By default
    /// the cameras are added one after the other, spread over one loop of
    /// the clip (21 s).
    #[arg(long)]
    in_phase: bool,
    /// Write the result tables into this Markdown file (docs/benchmarks.md),
    /// in the section "Pipeline: N cameras from RTSP to the VMS" (with
    /// --replicas: "Recognizer replicas: 1 against 2 on this machine"):
    /// between its result markers, or as a new section at the end.
    #[arg(long)]
    docs: Option<PathBuf>,
}

impl Args {
    /// Whether this is the replica comparison (`--replicas`).
    fn replica_mode(&self) -> bool {
        !self.replicas.is_empty()
    }

    fn camera_counts(&self) -> Vec<usize> {
        if !self.cameras.is_empty() {
            self.cameras.clone()
        } else if self.replica_mode() {
            vec![DEFAULT_REPLICA_CAMERAS]
        } else {
            DEFAULT_CAMERAS.to_vec()
        }
    }

    /// The sample rate per camera of the full pipeline.
    fn full_fps(&self) -> f64 {
        self.fps.unwrap_or(if self.replica_mode() {
            DEFAULT_REPLICA_FPS
        } else {
            DEFAULT_FPS
        })
    }

    /// The recognizer's `--onnx-threads` of each variant run; `None`: not
    /// passed (the service's default).
    fn onnx_thread_variants(&self) -> Vec<Option<usize>> {
        if !self.replica_mode() {
            vec![self.recognizer_onnx_threads.first().copied()]
        } else if self.recognizer_onnx_threads.is_empty() {
            vec![Some(RECOGNIZER_DEFAULT_ONNX_THREADS)]
        } else {
            self.recognizer_onnx_threads
                .iter()
                .copied()
                .map(Some)
                .collect()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    IngestOnly,
    Full,
}

/// What one run starts.
#[derive(Debug, Clone, Copy)]
struct RunSpec {
    mode: Mode,
    cameras: usize,
    /// `anpr-recognizer` processes (full pipeline only).
    replicas: usize,
    /// Their `--onnx-threads`; `None`: the service's default.
    onnx_threads: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("anpr-bench-pipeline: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    check_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.spawn(watch_signals());

    let bin_dir = binary_snapshot()?;
    let models = if args.ingest_only {
        None
    } else {
        Some(find_models_dir()?)
    };
    let clip = no_panic("rendering the test clip", || {
        clip::plate_clip(&ClipSpec::default())
    })?;
    let context = Bench {
        args,
        runtime: &runtime,
        bin_dir: bin_dir.path(),
        models,
        clip,
        ticks_per_second: clock_ticks_per_second(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };

    let machine = measure::machine_description();
    let load_before = measure::load_average();
    let started_at = SystemTime::now();
    eprintln!(
        "anpr-bench-pipeline: {machine}; load average {}; clip {}",
        fmt_opt(load_before, 2),
        context.clip.path.display()
    );
    let mut sets = Vec::new();
    let mut replica_set = None;
    if args.replica_mode() {
        replica_set = Some(run_replica_set(&context)?);
    } else {
        if !args.full_only {
            sets.push(run_set(&context, Mode::IngestOnly)?);
        }
        if !args.ingest_only {
            sets.push(run_set(&context, Mode::Full)?);
        }
    }
    let load_after = measure::load_average();

    let report = Report {
        command: command_line(),
        machine,
        started_at,
        load_before,
        load_after,
        args,
        sets,
        replica_set,
    };
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(path) = &args.docs {
        let section = if args.replica_mode() {
            &REPLICAS_DOC
        } else {
            &PIPELINE_DOC
        };
        let doc =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        std::fs::write(path, replace_results(&doc, section, &markdown))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("anpr-bench-pipeline: results written to {}", path.display());
    }
    Ok(())
}

fn check_args(args: &Args) -> anyhow::Result<()> {
    if let Some(bad) = args.cameras.iter().find(|&&n| n == 0 || n > 99) {
        bail!("--cameras: {bad} is not in 1-99");
    }
    if let Some(bad) = args.replicas.iter().find(|&&n| n == 0 || n > 8) {
        bail!("--replicas: {bad} is not in 1-8");
    }
    anyhow::ensure!(
        args.replica_mode() || args.recognizer_onnx_threads.len() <= 1,
        "--recognizer-onnx-threads: give one value (several only with --replicas)"
    );
    for (flag, fps) in [
        ("--fps", args.full_fps()),
        ("--ingest-only-fps", args.ingest_only_fps),
    ] {
        anyhow::ensure!(
            fps > 0.0 && fps <= 25.0,
            "{flag} must be in (0, 25], got {fps}"
        );
    }
    anyhow::ensure!(args.window_s >= 10, "--window-s must be at least 10");
    let threads = args.recognizer_onnx_threads.iter().copied();
    for (flag, value) in std::iter::once(("--recognizer-workers", args.recognizer_workers))
        .chain(threads.map(|value| ("--recognizer-onnx-threads", Some(value))))
    {
        if let Some(value) = value {
            anyhow::ensure!(
                (1..=16).contains(&value),
                "{flag} must be 1-16, got {value}"
            );
        }
    }
    anyhow::ensure!(
        (500..=2500).contains(&args.lost_timeout_ms),
        "--lost-timeout-ms must be 500-2500 (below the clip's 3 s between cars)"
    );
    Ok(())
}

/// Sets [`INTERRUPTED`] on Ctrl-C or SIGTERM; the waits notice it and the
/// run unwinds, dropping (killing) every child process.
async fn watch_signals() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("anpr-bench-pipeline: interrupted; stopping every process");
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Sleeps `duration`, or fails as soon as the benchmark is interrupted.
fn pause(duration: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + duration;
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

/// Copies the release binaries into a temporary folder: `$ANPR_BIN_DIR`,
/// else the folder of this benchmark's own binary when it holds them, else
/// the test kit's release folder.
fn binary_snapshot() -> anyhow::Result<tempfile::TempDir> {
    let source = std::env::var_os("ANPR_BIN_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_path_buf))
                .filter(|dir| dir.join("anpr-ingest").is_file())
        })
        .unwrap_or_else(release_dir);
    let snapshot = tempfile::Builder::new()
        .prefix("anpr-bench-pipeline-bin")
        .tempdir()
        .context("creating a temporary folder for the binaries")?;
    for name in BINARIES {
        let from = anpr_e2e::binaries::find_bin_in(&source, name)?;
        std::fs::copy(&from, snapshot.path().join(name))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(snapshot)
}

struct Bench<'a> {
    args: &'a Args,
    runtime: &'a tokio::runtime::Runtime,
    bin_dir: &'a Path,
    models: Option<PathBuf>,
    clip: PlateClip,
    ticks_per_second: f64,
    cores: usize,
}

impl Bench<'_> {
    fn fps(&self, mode: Mode) -> f64 {
        match mode {
            Mode::IngestOnly => self.args.ingest_only_fps,
            Mode::Full => self.args.full_fps(),
        }
    }

    fn source_fps(&self) -> f64 {
        f64::from(self.clip.spec.fps)
    }
}

/// Every camera count of one mode, until ingest fails to keep up.
struct RunSet {
    mode: Mode,
    fps: f64,
    runs: Vec<Run>,
    /// Why the set ended before its last camera count, if it did.
    stopped: Option<String>,
}

fn run_set(context: &Bench, mode: Mode) -> anyhow::Result<RunSet> {
    let mut set = RunSet {
        mode,
        fps: context.fps(mode),
        runs: Vec::new(),
        stopped: None,
    };
    for cameras in context.args.camera_counts() {
        eprintln!(
            "anpr-bench-pipeline: {} with {cameras} camera(s) at {} fps each...",
            mode_name(mode),
            set.fps
        );
        let spec = RunSpec {
            mode,
            cameras,
            replicas: 1,
            onnx_threads: context.args.onnx_thread_variants()[0],
        };
        let run = match run_once(context, spec) {
            Ok(run) => run,
            Err(err) if INTERRUPTED.load(Ordering::SeqCst) => return Err(err),
            Err(err) => {
                // Keep what was measured; the whole error goes to stderr.
                eprintln!("anpr-bench-pipeline: {cameras} camera(s) failed: {err:#}");
                let first_line = format!("{err:#}");
                let first_line = first_line.lines().next().unwrap_or_default().to_string();
                set.stopped = Some(format!(
                    "stopped at {cameras} cameras by an error: {first_line}"
                ));
                break;
            }
        };
        eprintln!("  {}", run.summary());
        let problems = run.ingest_problems(context.source_fps());
        set.runs.push(run);
        if !problems.is_empty() && !context.args.keep_going {
            set.stopped = Some(format!(
                "stopped at {cameras} cameras: {}",
                problems.join(", ")
            ));
            break;
        }
        // Let the machine settle between runs.
        pause(Duration::from_secs(3))?;
    }
    Ok(set)
}

/// The replica comparison: full-pipeline runs that differ in the number of
/// recognizer replicas (and their ONNX threads).
struct ReplicaSet {
    fps: f64,
    runs: Vec<Run>,
    /// The runs that failed, one line each.
    failures: Vec<String>,
}

fn run_replica_set(context: &Bench) -> anyhow::Result<ReplicaSet> {
    let mut set = ReplicaSet {
        fps: context.args.full_fps(),
        runs: Vec::new(),
        failures: Vec::new(),
    };
    for cameras in context.args.camera_counts() {
        for onnx_threads in context.args.onnx_thread_variants() {
            for &replicas in &context.args.replicas {
                let spec = RunSpec {
                    mode: Mode::Full,
                    cameras,
                    replicas,
                    onnx_threads,
                };
                eprintln!(
                    "anpr-bench-pipeline: {replicas} recognizer replica(s) with {} ONNX threads each, \
                     {cameras} camera(s) at {} fps each...",
                    threads_text(onnx_threads),
                    set.fps
                );
                match run_once(context, spec) {
                    Ok(run) => {
                        eprintln!("  {}", run.summary());
                        set.runs.push(run);
                    }
                    Err(err) if INTERRUPTED.load(Ordering::SeqCst) => return Err(err),
                    Err(err) => {
                        eprintln!("anpr-bench-pipeline: the run failed: {err:#}");
                        let text = format!("{err:#}");
                        set.failures.push(format!(
                            "{cameras} cameras, {} ONNX threads, {replicas} replicas: {}",
                            threads_text(onnx_threads),
                            text.lines().next().unwrap_or_default()
                        ));
                    }
                }
                pause(Duration::from_secs(3))?;
            }
        }
    }
    Ok(set)
}

fn threads_text(threads: Option<usize>) -> String {
    threads
        .map(|n| n.to_string())
        .unwrap_or_else(|| "default".into())
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::IngestOnly => "ingest only",
        Mode::Full => "full pipeline",
    }
}

/// What the benchmark's NATS subscriber saw of the frames.
#[derive(Default)]
struct FrameLog {
    per_camera: BTreeMap<String, u64>,
    /// Capture times (Unix ms) of the frames with sequence 0: the starts of
    /// each camera's connections, where the looped clip begins.
    connection_starts: BTreeMap<String, Vec<i64>>,
    /// Receive time minus capture time (ms) of the frames in the window.
    measuring: bool,
    ages_ms: Vec<f64>,
    /// `FrameReads` the recognizer published per camera in the window.
    reads_in_window: BTreeMap<String, u64>,
    /// Per camera: the latest capture time (Unix ms) of a `FrameReads`
    /// received so far.
    latest_read_capture: BTreeMap<String, f64>,
    /// `FrameReads` in the window whose frame was captured before that of
    /// an earlier `FrameReads` of the same camera: the order in which the
    /// analytic, subscribed to the same subject, gets them too. Recognizer
    /// replicas (or workers) reading in parallel can finish out of order.
    reads_out_of_order: u64,
    malformed: u64,
}

/// The processes of one run. Dropping it kills them all: the services
/// first, then the cameras, then NATS.
struct Stack {
    services: Services,
    rtsp: Vec<RtspServer>,
    subscriber: Option<tokio::task::JoinHandle<()>>,
    _nats: NatsServer,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(task) = self.subscriber.take() {
            task.abort();
        }
    }
}

async fn subscribe_frames(
    url: String,
    log: Arc<Mutex<FrameLog>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = async_nats::connect(&url)
        .await
        .with_context(|| format!("connecting the benchmark's NATS client to {url}"))?;
    let mut frames = client
        .subscribe(anpr_common::subjects::frames("*"))
        .await
        .context("subscribing to the frames")?;
    let mut reads = client
        .subscribe(anpr_common::subjects::reads("*"))
        .await
        .context("subscribing to the reads")?;
    client.flush().await.context("flushing the subscriptions")?;
    let reads_log = log.clone();
    let reads_task = tokio::spawn(async move {
        while let Some(message) = reads.next().await {
            let Some(camera) = anpr_common::subjects::camera_of(message.subject.as_str()) else {
                continue;
            };
            let capture_ms = FrameReads::decode(message.payload.as_ref())
                .ok()
                .and_then(|reads| reads.capture_time)
                .map(|t| t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1e6);
            let Ok(mut log) = reads_log.lock() else { break };
            let mut out_of_order = false;
            if let Some(capture_ms) = capture_ms {
                let latest = log
                    .latest_read_capture
                    .entry(camera.to_string())
                    .or_insert(capture_ms);
                out_of_order = capture_ms < *latest;
                *latest = latest.max(capture_ms);
            }
            if log.measuring {
                *log.reads_in_window.entry(camera.to_string()).or_default() += 1;
                log.reads_out_of_order += u64::from(out_of_order);
            }
        }
    });
    Ok(tokio::spawn(async move {
        let _client = client;
        // Stops the reads' task when this one is aborted.
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _reads = AbortOnDrop(reads_task);
        while let Some(message) = frames.next().await {
            let now_ms = millis_f64(SystemTime::now());
            let Ok(mut log) = log.lock() else { break };
            let Ok(frame) = Frame::decode(message.payload.as_ref()) else {
                log.malformed += 1;
                continue;
            };
            let capture_ms = frame
                .capture_time
                .as_ref()
                .map(|t| t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1e6);
            *log.per_camera.entry(frame.camera_id.clone()).or_default() += 1;
            if let Some(capture_ms) = capture_ms {
                if frame.sequence == 0 {
                    log.connection_starts
                        .entry(frame.camera_id.clone())
                        .or_default()
                        .push(capture_ms.round() as i64);
                }
                if log.measuring {
                    log.ages_ms.push(now_ms - capture_ms);
                }
            }
        }
    }))
}

fn millis_f64(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

fn camera_id(index: usize) -> String {
    format!("cam-{:02}", index + 1)
}

fn camera_name(index: usize) -> String {
    format!("Camera {:02}", index + 1)
}

/// Starts `count` RTSP servers, a few at a time (each takes about a second
/// to load GStreamer).
fn start_cameras(media: &Path, count: usize) -> anyhow::Result<Vec<RtspServer>> {
    let mut servers = Vec::with_capacity(count);
    while servers.len() < count {
        let batch = (count - servers.len()).min(8);
        let started: Vec<anyhow::Result<RtspServer>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..batch)
                .map(|_| {
                    scope.spawn(|| no_panic("starting an RTSP server", || RtspServer::start(media)))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("an RTSP server thread panicked")))
                })
                .collect()
        });
        for server in started {
            servers.push(server?);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
    }
    Ok(servers)
}

/// One measurement point: counters and CPU times at one instant.
struct Snapshot {
    at: Instant,
    wall_ms: i64,
    /// pid -> (role, CPU ticks).
    cpu: BTreeMap<u32, (&'static str, u64)>,
    machine: MachineCpu,
    ingest: Metrics,
    /// One per recognizer replica, in start order.
    recognizers: Vec<Metrics>,
}

/// Which part of the benchmark a child process is, by its name.
fn role_of(comm: &str, cmdline: &str) -> Option<&'static str> {
    if cmdline.contains("rtsp_server.py") {
        return Some("rtsp");
    }
    if comm == "nats-server" {
        return Some("nats");
    }
    [
        ("anpr-ingest", "ingest"),
        ("anpr-recognizer", "recognizer"),
        ("anpr-analytic", "analytic"),
        ("anpr-vms-bridge", "bridge"),
        ("anpr-config", "config"),
        ("anpr-vms-sim", "vms-sim"),
    ]
    .into_iter()
    .find(|(program, _)| comm == comm_of(program))
    .map(|(_, role)| role)
}

fn snapshot(ingest_http: u16, recognizer_http: &[u16]) -> anyhow::Result<Snapshot> {
    let at = Instant::now();
    let wall_ms = unix_millis(SystemTime::now());
    let mut cpu = BTreeMap::new();
    for child in children() {
        if let Some(role) = role_of(&child.comm, &child.cmdline) {
            cpu.insert(child.pid, (role, child.stat.cpu_ticks));
        }
    }
    let me = std::process::id();
    if let Some(stat) = proc_stat(me) {
        cpu.insert(me, ("bench", stat.cpu_ticks));
    }
    let machine = MachineCpu::read().context("reading /proc/stat")?;
    let ingest = Metrics::parse(
        &http_get(ingest_http, "/metrics").context("reading anpr-ingest's /metrics")?,
    );
    let recognizers = recognizer_http
        .iter()
        .enumerate()
        .map(|(index, &port)| {
            http_get(port, "/metrics")
                .map(|text| Metrics::parse(&text))
                .with_context(|| format!("reading /metrics of recognizer replica {}", index + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Snapshot {
        at,
        wall_ms,
        cpu,
        machine,
        ingest,
        recognizers,
    })
}

/// Fails when a process of the run exited (a zombie, not yet reaped, or gone).
fn check_alive(
    stack: &Stack,
    expected: &[&'static str],
    cameras: usize,
    replicas: usize,
) -> anyhow::Result<()> {
    let running: Vec<&'static str> = children()
        .into_iter()
        .filter(|child| child.stat.state != 'Z')
        .filter_map(|child| role_of(&child.comm, &child.cmdline))
        .collect();
    let mut missing = Vec::new();
    for role in expected {
        if !running.contains(role) {
            missing.push(role.to_string());
        }
    }
    let recognizers = running.iter().filter(|role| **role == "recognizer").count();
    if expected.contains(&"recognizer") && recognizers < replicas {
        missing.push(format!(
            "{} of {replicas} recognizer replicas",
            replicas - recognizers
        ));
    }
    let cameras_running = running.iter().filter(|role| **role == "rtsp").count();
    if cameras_running < cameras {
        missing.push(format!(
            "{} of {cameras} RTSP servers",
            cameras - cameras_running
        ));
    }
    if !missing.is_empty() {
        let mut rtsp_logs = String::new();
        for (index, server) in stack.rtsp.iter().enumerate() {
            let log = server.log();
            if !log.trim().is_empty() {
                let _ = write!(rtsp_logs, "\n===== RTSP server {}\n{log}", index + 1);
            }
        }
        bail!(
            "exited during the run: {}{}{rtsp_logs}",
            missing.join(", "),
            stack.services.tails(30)
        );
    }
    Ok(())
}

fn run_once(context: &Bench, spec: RunSpec) -> anyhow::Result<Run> {
    let args = context.args;
    let RunSpec { mode, cameras, .. } = spec;
    let fps = context.fps(mode);
    let nats = no_panic("starting nats-server", NatsServer::start)?;
    let nats_url = nats.url();
    let frames = Arc::new(Mutex::new(FrameLog::default()));
    let mut stack = Stack {
        services: Services::new(context.bin_dir),
        rtsp: Vec::new(),
        subscriber: None,
        _nats: nats,
    };
    stack.services.abort_when(&INTERRUPTED);
    stack.subscriber = Some(
        context
            .runtime
            .block_on(subscribe_frames(nats_url.clone(), frames.clone()))?,
    );

    let env = vec![
        ("NATS_URL", nats_url),
        ("LOG_FORMAT", "json".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    let config_url = stack.services.start_config(&env)?;
    let vms_port = match mode {
        Mode::Full => Some(stack.services.start_vms_sim(VMS_PASSWORD)?),
        Mode::IngestOnly => None,
    };
    stack.rtsp = start_cameras(&context.clip.path, cameras)?;

    let ctl = |args: &[&str], stdin: Option<&str>| {
        anprctl(context.bin_dir, &config_url, args, stdin).map(|_| ())
    };
    if let Some(port) = vms_port {
        add_simulator_target(context.bin_dir, &config_url, "bench", port, VMS_PASSWORD)?;
    }
    let service_env = {
        let mut env = env.clone();
        env.push(("ANPR_CONFIG_URL", config_url.clone()));
        env
    };
    let mut recognizer_http = Vec::new();
    if mode == Mode::Full {
        ctl(
            &[
                "analytic",
                "set",
                "--skip-first",
                &args.skip_first.to_string(),
                "--min-confidence",
                "0.7",
                "--lost-timeout-ms",
                &args.lost_timeout_ms.to_string(),
            ],
            None,
        )?;
        for name in ["anpr-vms-bridge", "anpr-analytic"] {
            stack.services.start_with_http(name, &[], &service_env)?;
        }
        // The bridge delivers the events published after its consumer exists.
        stack.services.wait_output(
            "anpr-vms-bridge",
            "delivering to VMS target",
            Duration::from_secs(30),
        )?;
        let models = context
            .models
            .as_ref()
            .context("no models folder for the recognizer")?;
        let mut recognizer_args = vec!["--models-dir".to_string(), models.display().to_string()];
        if let Some(workers) = args.recognizer_workers {
            recognizer_args.extend(["--workers".to_string(), workers.to_string()]);
        }
        if let Some(threads) = spec.onnx_threads {
            recognizer_args.extend(["--onnx-threads".to_string(), threads.to_string()]);
        }
        // Replicas share the frames through their NATS queue group; each
        // serves its /metrics on a port of its own.
        for replica in 1..=spec.replicas.max(1) {
            let name = recognizer_name(replica);
            recognizer_http.push(stack.services.start_with_http_as(
                &name,
                "anpr-recognizer",
                &recognizer_args,
                &service_env,
            )?);
            stack.services.wait_output(
                &name,
                "anpr-recognizer started",
                Duration::from_secs(60),
            )?;
        }
    }
    let ingest_http = stack.services.start_with_http(
        "anpr-ingest",
        &["--rtsp-transport".into(), "tcp".into()],
        &service_env,
    )?;

    // Cameras are added while ingest runs; each connection starts the clip
    // from its beginning. Staggered over one loop of the clip, cars, key
    // frames and sampled frames of different cameras are out of step, as
    // on real roads; --in-phase starts them all at once.
    let fps_text = fps.to_string();
    let spacing = if args.in_phase {
        Duration::ZERO
    } else {
        context.clip.duration / cameras as u32
    };
    for (index, server) in stack.rtsp.iter().enumerate() {
        let added = Instant::now();
        ctl(
            &[
                "camera",
                "add",
                &camera_id(index),
                "--url",
                &server.url(),
                "--name",
                &camera_name(index),
                "--ip",
                VMS_CAMERA_IP,
                "--fps",
                &fps_text,
            ],
            None,
        )?;
        if index + 1 < cameras {
            pause(spacing.saturating_sub(added.elapsed()))?;
        }
    }

    let mut expected: Vec<&'static str> = vec!["nats", "config", "ingest"];
    if mode == Mode::Full {
        expected.extend(["vms-sim", "bridge", "analytic", "recognizer"]);
    }

    let replicas = recognizer_http.len();
    pause(Duration::from_secs(args.warmup_s))?;
    check_alive(&stack, &expected, cameras, replicas)?;
    let before = snapshot(ingest_http, &recognizer_http)?;
    lock(&frames)?.measuring = true;
    pause(Duration::from_secs(args.window_s))?;
    let after = snapshot(ingest_http, &recognizer_http)?;
    lock(&frames)?.measuring = false;
    check_alive(&stack, &expected, cameras, replicas)?;

    let events = match vms_port {
        Some(port) => {
            // Events of frames captured in the window arrive later: a Lost
            // after the lost timeout, everything after its processing.
            pause(
                Duration::from_millis(u64::from(args.lost_timeout_ms)) + Duration::from_secs(10),
            )?;
            let body = http_get(port, "/_fake/events").context("GET /_fake/events")?;
            let events: Vec<RecordedEvent> = serde_json::from_str(&body)
                .with_context(|| format!("/_fake/events is not a list of events: {body}"))?;
            Some(events)
        }
        None => None,
    };
    let frame_log = std::mem::take(&mut *lock(&frames)?);
    drop(stack);

    Ok(Run::compute(
        context,
        spec,
        &before,
        &after,
        &frame_log,
        events.as_deref(),
    ))
}

/// The service name of recognizer replica `replica` (from 1): the first is
/// plain `anpr-recognizer`.
fn recognizer_name(replica: usize) -> String {
    if replica <= 1 {
        "anpr-recognizer".into()
    } else {
        format!("anpr-recognizer-{replica}")
    }
}

fn lock(frames: &Mutex<FrameLog>) -> anyhow::Result<std::sync::MutexGuard<'_, FrameLog>> {
    frames
        .lock()
        .map_err(|_| anyhow::anyhow!("the frame subscriber panicked"))
}

/// Median and 95th percentile.
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    median: Option<f64>,
    p95: Option<f64>,
    count: usize,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        Spread {
            median: percentile(&values, 50.0),
            p95: percentile(&values, 95.0),
            count: values.len(),
        }
    }

    fn cell(&self) -> String {
        match (self.median, self.p95) {
            (Some(median), Some(p95)) => format!("{median:.0} / {p95:.0}"),
            _ => "-".into(),
        }
    }

    /// The cell with the number of values, e.g. `310 / 520 (24)`.
    fn cell_n(&self) -> String {
        match self.count {
            0 => "-".into(),
            n => format!("{} ({n})", self.cell()),
        }
    }
}

/// Plate events of the window, against the passages of the clip.
#[derive(Debug, Default)]
struct Events {
    passages: usize,
    detected: usize,
    lost: usize,
    detect_text_right: usize,
    /// Events in the window that match no passage, or a second one for a
    /// passage that already had its Detect (Lost).
    extra: usize,
    detect_latency: Spread,
    lost_latency: Spread,
    lost_after_timeout: Spread,
    /// Per camera: passages with a Detect, passages.
    per_camera: Vec<(usize, usize)>,
}

impl Events {
    /// Detect and Lost events whose capture time lies in the window.
    fn in_window(&self) -> usize {
        self.detect_latency.count + self.lost_latency.count
    }

    /// [`in_window`](Self::in_window) per second of the window.
    fn all_per_s(&self, window_s: f64) -> f64 {
        self.in_window() as f64 / window_s
    }

    /// Passages with a Detect plus passages with a Lost, per second of the
    /// window: the events that stand for distinct car passages.
    fn passages_per_s(&self, window_s: f64) -> f64 {
        (self.detected + self.lost) as f64 / window_s
    }

    /// Passages with a Detect, in % of the passages.
    fn detected_share(&self) -> Option<f64> {
        (self.passages > 0).then(|| self.detected as f64 / self.passages as f64 * 100.0)
    }
}

/// One run: N cameras, one mode.
struct Run {
    cameras: usize,
    /// Recognizer replicas (1 in the camera-count sets).
    replicas: usize,
    /// Their `--onnx-threads`; `None`: the service's default.
    onnx_threads: Option<usize>,
    window_s: f64,
    /// Role -> % of one core.
    cpu: BTreeMap<&'static str, f64>,
    machine_busy: f64,
    /// Of `machine_busy`: interrupts, charged to no process.
    interrupts: f64,
    decoded_mean: f64,
    decoded_min: f64,
    published_mean: f64,
    published_min: f64,
    ingest_drops: BTreeMap<String, f64>,
    /// Cameras that had any of those drops.
    cameras_dropping: usize,
    reconnects: f64,
    frame_age: Spread,
    /// Cameras from which the subscriber got no frame at all.
    silent_cameras: usize,
    malformed_frames: u64,
    recognizer: Option<RecognizerFigures>,
    events: Option<Events>,
}

/// The recognizer's figures over the window, all replicas together.
struct RecognizerFigures {
    received_per_s: f64,
    processed_per_s: f64,
    /// Each replica's frames read per second, in start order.
    processed_per_replica: Vec<f64>,
    /// `FrameReads` of the window that reached NATS after a later frame's
    /// of the same camera.
    reads_out_of_order: u64,
    too_old: f64,
    queue_full: f64,
    /// Frames read per second for the camera that got the fewest and the
    /// most (`FrameReads` on NATS in the window).
    read_per_camera_min: f64,
    read_per_camera_max: f64,
}

fn delta_by_label(
    before: &Metrics,
    after: &Metrics,
    name: &str,
    label: &str,
) -> BTreeMap<String, f64> {
    let start = before.by_label(name, label);
    after
        .by_label(name, label)
        .into_iter()
        .map(|(key, value)| {
            let old = start.get(&key).copied().unwrap_or(0.0);
            (key, value - old)
        })
        .collect()
}

impl Run {
    fn compute(
        context: &Bench,
        spec: RunSpec,
        before: &Snapshot,
        after: &Snapshot,
        frames: &FrameLog,
        events: Option<&[RecordedEvent]>,
    ) -> Run {
        let cameras = spec.cameras;
        let window_s = (after.at - before.at).as_secs_f64().max(1e-3);
        let mut cpu: BTreeMap<&'static str, f64> = BTreeMap::new();
        for (pid, (role, ticks)) in &after.cpu {
            if let Some((_, start)) = before.cpu.get(pid) {
                let share =
                    ticks.saturating_sub(*start) as f64 / context.ticks_per_second / window_s
                        * 100.0;
                *cpu.entry(role).or_default() += share;
            }
        }
        let machine_total = after.machine.total.saturating_sub(before.machine.total) as f64;
        let machine_share = |end: u64, start: u64| {
            if machine_total > 0.0 {
                end.saturating_sub(start) as f64 / machine_total * context.cores as f64 * 100.0
            } else {
                0.0
            }
        };
        let machine_busy = machine_share(after.machine.busy, before.machine.busy);
        let interrupts = machine_share(after.machine.interrupts, before.machine.interrupts);

        let per_camera_rate = |name: &str| -> Vec<f64> {
            let deltas = delta_by_label(&before.ingest, &after.ingest, name, "camera");
            (0..cameras)
                .map(|i| deltas.get(&camera_id(i)).copied().unwrap_or(0.0) / window_s)
                .collect()
        };
        let decoded = per_camera_rate("anpr_ingest_frames_decoded_total");
        let published = per_camera_rate("anpr_ingest_frames_published_total");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let ingest_drops: BTreeMap<String, f64> = delta_by_label(
            &before.ingest,
            &after.ingest,
            "anpr_ingest_frames_dropped_total",
            "reason",
        )
        .into_iter()
        .filter(|(_, count)| *count > 0.0)
        .collect();
        let cameras_dropping = delta_by_label(
            &before.ingest,
            &after.ingest,
            "anpr_ingest_frames_dropped_total",
            "camera",
        )
        .values()
        .filter(|count| **count > 0.0)
        .count();
        let reconnects = after.ingest.sum("anpr_ingest_reconnects_total", &[])
            - before.ingest.sum("anpr_ingest_reconnects_total", &[]);

        let recognizer = if after.recognizers.is_empty()
            || before.recognizers.len() != after.recognizers.len()
        {
            None
        } else {
            // Per replica, then summed.
            let per_replica = |name: &str, filter: &[(&str, &str)]| -> Vec<f64> {
                before
                    .recognizers
                    .iter()
                    .zip(&after.recognizers)
                    .map(|(start, end)| end.sum(name, filter) - start.sum(name, filter))
                    .collect()
            };
            let delta =
                |name: &str, filter: &[(&str, &str)]| per_replica(name, filter).iter().sum::<f64>();
            {
                let read: Vec<f64> = (0..cameras)
                    .map(|i| {
                        frames
                            .reads_in_window
                            .get(&camera_id(i))
                            .copied()
                            .unwrap_or(0) as f64
                            / window_s
                    })
                    .collect();
                Some(RecognizerFigures {
                    read_per_camera_min: min(&read),
                    read_per_camera_max: read.iter().copied().fold(0.0, f64::max),
                    received_per_s: delta("anpr_recognizer_frames_received_total", &[]) / window_s,
                    processed_per_s: delta("anpr_recognizer_frames_processed_total", &[])
                        / window_s,
                    reads_out_of_order: frames.reads_out_of_order,
                    processed_per_replica: per_replica(
                        "anpr_recognizer_frames_processed_total",
                        &[],
                    )
                    .into_iter()
                    .map(|count| count / window_s)
                    .collect(),
                    too_old: delta(
                        "anpr_recognizer_frames_dropped_total",
                        &[("reason", "too_old")],
                    ),
                    queue_full: delta(
                        "anpr_recognizer_frames_dropped_total",
                        &[("reason", "queue_full")],
                    ),
                })
            }
        };

        let silent_cameras = (0..cameras)
            .filter(|i| !frames.per_camera.contains_key(&camera_id(*i)))
            .count();
        let events = events.map(|events| {
            match_events(
                context,
                cameras,
                before.wall_ms,
                after.wall_ms,
                frames,
                events,
            )
        });
        Run {
            cameras,
            replicas: spec.replicas,
            onnx_threads: spec.onnx_threads,
            window_s,
            cpu,
            machine_busy,
            interrupts,
            decoded_mean: mean(&decoded),
            decoded_min: min(&decoded),
            published_mean: mean(&published),
            published_min: min(&published),
            ingest_drops,
            cameras_dropping,
            reconnects,
            frame_age: Spread::of(frames.ages_ms.clone()),
            silent_cameras,
            malformed_frames: frames.malformed,
            recognizer,
            events,
        }
    }

    fn cpu(&self, role: &str) -> f64 {
        self.cpu.get(role).copied().unwrap_or(0.0)
    }

    /// CPU of the services that are neither ingest, recognizer, cameras
    /// nor NATS and the benchmark.
    fn cpu_rest(&self) -> f64 {
        ["analytic", "bridge", "config", "vms-sim"]
            .iter()
            .map(|role| self.cpu(role))
            .sum()
    }

    /// Machine CPU used neither by a process of the benchmark nor by
    /// interrupts: other work on the machine.
    fn cpu_outside(&self) -> f64 {
        (self.machine_busy - self.interrupts - self.cpu.values().sum::<f64>()).max(0.0)
    }

    /// Why ingest did not keep up, if it did not.
    fn ingest_problems(&self, source_fps: f64) -> Vec<String> {
        let mut problems = Vec::new();
        let dropped: f64 = self.ingest_drops.values().sum();
        if dropped > 0.0 {
            problems.push(format!("ingest dropped {}", self.drops_text()));
        }
        if self.reconnects > 0.0 {
            problems.push(format!("{} reconnects", self.reconnects));
        }
        if self.decoded_min < source_fps * BEHIND_SHARE {
            problems.push(format!(
                "a camera decoded at {:.1} of {source_fps} fps",
                self.decoded_min
            ));
        }
        problems
    }

    fn drops_text(&self) -> String {
        if self.ingest_drops.is_empty() {
            return "0".into();
        }
        let reasons: Vec<String> = self
            .ingest_drops
            .iter()
            .map(|(reason, count)| format!("{count:.0} {reason}"))
            .collect();
        format!(
            "{} ({} of {} cameras)",
            reasons.join(", "),
            self.cameras_dropping,
            self.cameras
        )
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "{} cameras, {:.0} s: ingest {:.1} % CPU ({:.1} % per camera), decoded {:.1} fps/camera (min {:.1}), \
             published {:.2} (min {:.2}), drops {}, frame age {} ms, machine {:.0} % (interrupts {:.0} %), other work {:.0} %",
            self.cameras,
            self.window_s,
            self.cpu("ingest"),
            self.cpu("ingest") / self.cameras as f64,
            self.decoded_mean,
            self.decoded_min,
            self.published_mean,
            self.published_min,
            self.drops_text(),
            self.frame_age.cell(),
            self.machine_busy,
            self.interrupts,
            self.cpu_outside(),
        );
        if let Some(r) = &self.recognizer {
            let _ = write!(
                line,
                "; recognizer {:.1} % CPU, {:.2} frames/s processed ({:.2} to {:.2} per camera), \
                 dropped {:.0} too old {:.0} queue full",
                self.cpu("recognizer"),
                r.processed_per_s,
                r.read_per_camera_min,
                r.read_per_camera_max,
                r.too_old,
                r.queue_full
            );
            if r.reads_out_of_order > 0 {
                let _ = write!(
                    line,
                    "; {} FrameReads out of capture order",
                    r.reads_out_of_order
                );
            }
            if r.processed_per_replica.len() > 1 {
                let each: Vec<String> = r
                    .processed_per_replica
                    .iter()
                    .map(|rate| format!("{rate:.2}"))
                    .collect();
                let _ = write!(
                    line,
                    "; {} replicas read {} frames/s",
                    self.replicas,
                    each.join(" + ")
                );
            }
        }
        if let Some(e) = &self.events {
            let _ = write!(
                line,
                "; plate events {:.2}/s ({:.2}/s for distinct passages), passages {}, Detect {}, Lost {}, right {}, \
                 extra {}, Detect latency {} ms, Lost {} ms",
                e.all_per_s(self.window_s),
                e.passages_per_s(self.window_s),
                e.passages,
                e.detected,
                e.lost,
                e.detect_text_right,
                e.extra,
                e.detect_latency.cell(),
                e.lost_latency.cell()
            );
            let per_camera: Vec<String> = e
                .per_camera
                .iter()
                .map(|(detected, passages)| format!("{detected}/{passages}"))
                .collect();
            let _ = write!(line, "; Detect per camera {}", per_camera.join(" "));
        }
        if self.malformed_frames > 0 {
            let _ = write!(line, "; {} malformed frames on NATS", self.malformed_frames);
        }
        line
    }
}

/// A car passage: camera index, plate, from/to (Unix ms, capture time).
struct Passage {
    camera: usize,
    plate: String,
    from_ms: i64,
    to_ms: i64,
}

/// The passages whose middle lies in `[from_ms, to_ms)`, from each camera's
/// connection starts and the clip's timing.
fn passages(
    clip: &PlateClip,
    cameras: usize,
    starts: &BTreeMap<String, Vec<i64>>,
    from_ms: i64,
    to_ms: i64,
) -> Vec<Passage> {
    let loop_ms = clip.duration.as_millis() as i64;
    let mut out = Vec::new();
    if loop_ms <= 0 {
        return out;
    }
    for camera in 0..cameras {
        let Some(list) = starts.get(&camera_id(camera)) else {
            continue;
        };
        let mut list = list.clone();
        list.sort_unstable();
        for (k, &start) in list.iter().enumerate() {
            let next = list.get(k + 1).copied().unwrap_or(i64::MAX);
            let mut loop_start = start;
            while loop_start < to_ms && loop_start < next {
                for (index, plate) in clip.plates.iter().enumerate() {
                    let (from, to) = clip.plate_window(index);
                    let from_ms_p = loop_start + from.as_millis() as i64;
                    let to_ms_p = loop_start + to.as_millis() as i64;
                    let middle = (from_ms_p + to_ms_p) / 2;
                    if middle >= from_ms && middle < to_ms && to_ms_p <= next {
                        out.push(Passage {
                            camera,
                            plate: plate.clone(),
                            from_ms: from_ms_p,
                            to_ms: to_ms_p,
                        });
                    }
                }
                loop_start += loop_ms;
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Detect,
    Lost,
}

fn match_events(
    context: &Bench,
    cameras: usize,
    from_ms: i64,
    to_ms: i64,
    frames: &FrameLog,
    events: &[RecordedEvent],
) -> Events {
    let lost_timeout = f64::from(context.args.lost_timeout_ms);
    let names: BTreeMap<String, usize> = (0..cameras).map(|i| (camera_name(i), i)).collect();
    // (camera, kind, capture ms, received ms, caption)
    let parsed: Vec<(usize, Kind, i64, i64, &str)> = events
        .iter()
        .filter_map(|event| {
            let camera = *names.get(&event.source)?;
            let kind = if event.description.starts_with("ANPR Detect ") {
                Kind::Detect
            } else if event.description.starts_with("ANPR Lost ") {
                Kind::Lost
            } else {
                return None;
            };
            Some((
                camera,
                kind,
                event.timestamp_ms?,
                event.received_at_ms,
                event.caption.as_str(),
            ))
        })
        .collect();
    // Passages cut by an edge of the window (their middle outside it) are
    // not counted, but their events inside the window are theirs, not extra.
    let margin = context.clip.duration.as_millis() as i64;
    let cut_by_the_window: Vec<Passage> = passages(
        &context.clip,
        cameras,
        &frames.connection_starts,
        from_ms - margin,
        to_ms + margin,
    )
    .into_iter()
    .filter(|passage| {
        let middle = (passage.from_ms + passage.to_ms) / 2;
        middle < from_ms || middle >= to_ms
    })
    .collect();
    let passages = passages(
        &context.clip,
        cameras,
        &frames.connection_starts,
        from_ms,
        to_ms,
    );
    let mut result = Events {
        passages: passages.len(),
        per_camera: vec![(0, 0); cameras],
        ..Events::default()
    };
    for passage in &passages {
        result.per_camera[passage.camera].1 += 1;
    }
    let hits_of = |passage: &Passage, kind: Kind| -> Vec<usize> {
        parsed
            .iter()
            .enumerate()
            .filter(|(_, (camera, k, at, _, _))| {
                *camera == passage.camera
                    && *k == kind
                    && *at >= passage.from_ms - EVENT_TOLERANCE_MS
                    && *at <= passage.to_ms + EVENT_TOLERANCE_MS
            })
            .map(|(i, _)| i)
            .collect()
    };
    let mut matched = vec![false; parsed.len()];
    for passage in &cut_by_the_window {
        for kind in [Kind::Detect, Kind::Lost] {
            for i in hits_of(passage, kind) {
                matched[i] = true;
            }
        }
    }
    for passage in &passages {
        for kind in [Kind::Detect, Kind::Lost] {
            let hits = hits_of(passage, kind);
            if hits.is_empty() {
                continue;
            }
            match kind {
                Kind::Detect => {
                    result.detected += 1;
                    result.per_camera[passage.camera].0 += 1;
                    if hits.iter().any(|&i| parsed[i].4 == passage.plate) {
                        result.detect_text_right += 1;
                    }
                }
                Kind::Lost => result.lost += 1,
            }
            result.extra += hits.len() - 1;
            for i in hits {
                matched[i] = true;
            }
        }
    }
    let mut detect = Vec::new();
    let mut lost = Vec::new();
    for (i, (_, kind, at, received, _)) in parsed.iter().enumerate() {
        if *at < from_ms || *at >= to_ms {
            continue;
        }
        if !matched[i] {
            result.extra += 1;
        }
        let latency = (*received - *at) as f64;
        match kind {
            Kind::Detect => detect.push(latency),
            Kind::Lost => lost.push(latency),
        }
    }
    result.detect_latency = Spread::of(detect);
    result.lost_after_timeout = Spread::of(lost.iter().map(|l| l - lost_timeout).collect());
    result.lost_latency = Spread::of(lost);
    result
}

struct Report<'a> {
    command: String,
    machine: String,
    started_at: SystemTime,
    load_before: Option<f64>,
    load_after: Option<f64>,
    args: &'a Args,
    sets: Vec<RunSet>,
    /// The replica comparison (`--replicas`), instead of `sets`.
    replica_set: Option<ReplicaSet>,
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Run {} on {}; load average (1 min) {} before, {} after.\n",
            utc_text(self.started_at),
            self.machine,
            fmt_opt(self.load_before, 2),
            fmt_opt(self.load_after, 2)
        );
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            out,
            "Cameras {}; window {} s after {} s of warm-up; lost timeout {} ms, skip-first {}; \
             CPU in % of one core (the machine has {} % in all).\n",
            if self.args.in_phase {
                "started at once (in phase)"
            } else {
                "started one after the other over one 21 s loop of the clip"
            },
            self.args.window_s,
            self.args.warmup_s,
            self.args.lost_timeout_ms,
            self.args.skip_first,
            std::thread::available_parallelism()
                .map(|n| n.get() * 100)
                .unwrap_or(100)
        );
        if self.sets.iter().any(|set| set.mode == Mode::Full) {
            let setting = |value: Option<usize>| {
                value
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "the service's default".into())
            };
            let _ = writeln!(
                out,
                "Recognizer: workers {}, ONNX threads per model {}.\n",
                setting(self.args.recognizer_workers),
                setting(self.args.recognizer_onnx_threads.first().copied())
            );
        }
        if let Some(set) = &self.replica_set {
            self.replica_tables(&mut out, set);
        }
        for set in &self.sets {
            match set.mode {
                Mode::IngestOnly => self.ingest_only_table(&mut out, set),
                Mode::Full => self.full_tables(&mut out, set),
            }
            if let Some(stopped) = &set.stopped {
                let _ = writeln!(out, "Run set {stopped}.\n");
            }
        }
        out.trim_end().to_string() + "\n"
    }

    fn replica_tables(&self, out: &mut String, set: &ReplicaSet) {
        let _ = writeln!(
            out,
            "Recognizer replicas: {}; workers per replica: {}; ONNX threads per model: as in each row. \
             Analytic, bridge, ingest and VMS simulator: one process each.\n",
            self.args
                .replicas
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" and "),
            self.args
                .recognizer_workers
                .map(|n| n.to_string())
                .unwrap_or_else(|| "the service's default".into()),
        );
        let _ = writeln!(
            out,
            "#### Recognizer replicas, {} fps sampled per camera: frames\n",
            set.fps
        );
        let _ = writeln!(
            out,
            "| cameras | ONNX threads per replica | replicas | frames/s offered | \
             recognizer frames/s in / read (each replica) | recognizer drops too old / queue full | \
             frames/s read per camera, min / max | FrameReads out of capture order | \
             recognizer CPU %, all replicas | ingest CPU % | ingest drops | \
             analytic + bridge + config + VMS + RTSP servers + NATS + subscriber CPU % | \
             machine busy % (of it interrupts) | other work on the machine % |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
        );
        for run in &set.runs {
            let (rates, drops, per_camera, out_of_order) = match &run.recognizer {
                Some(r) => (
                    format!(
                        "{:.2} / {:.2} ({})",
                        r.received_per_s,
                        r.processed_per_s,
                        r.processed_per_replica
                            .iter()
                            .map(|rate| format!("{rate:.2}"))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                    format!("{:.0} / {:.0}", r.too_old, r.queue_full),
                    format!(
                        "{:.2} / {:.2}",
                        r.read_per_camera_min, r.read_per_camera_max
                    ),
                    r.reads_out_of_order.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.1} | {:.0} ({:.0}) | {:.0} |",
                run.cameras,
                threads_text(run.onnx_threads),
                run.replicas,
                run.published_mean * run.cameras as f64,
                rates,
                drops,
                per_camera,
                out_of_order,
                run.cpu("recognizer"),
                run.cpu("ingest"),
                run.drops_text(),
                run.cpu_rest() + run.cpu("rtsp") + run.cpu("nats") + run.cpu("bench"),
                run.machine_busy,
                run.interrupts,
                run.cpu_outside(),
            );
        }
        let _ = writeln!(
            out,
            "\n#### Recognizer replicas, {} fps sampled per camera: plate events in the VMS\n",
            set.fps
        );
        let _ = writeln!(
            out,
            "| cameras | ONNX threads per replica | replicas | plate events/s, all (Detect + Lost) | \
             passages' Detect + Lost /s | ceiling: 2 events per passage, /s | car passages | with Detect | \
             with Lost | Detect text right | extra events | Detect latency ms, median / p95 (events) | \
             frame age on NATS ms, median / p95 |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in &set.runs {
            let Some(e) = &run.events else { continue };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
                run.cameras,
                threads_text(run.onnx_threads),
                run.replicas,
                e.all_per_s(run.window_s),
                e.passages_per_s(run.window_s),
                (2 * e.passages) as f64 / run.window_s,
                e.passages,
                e.detected,
                e.lost,
                e.detect_text_right,
                e.extra,
                e.detect_latency.cell_n(),
                run.frame_age.cell(),
            );
        }
        let ratios = replica_ratios(&set.runs);
        if !ratios.is_empty() {
            let _ = writeln!(
                out,
                "\n#### Recognizer replicas: ratio to the run with the fewest replicas\n"
            );
            let _ = writeln!(
                out,
                "| cameras | ONNX threads per replica | replicas against | frames/s read | \
                 plate events/s, all | passages' Detect + Lost /s | car passages with a Detect | \
                 Detect latency, median | recognizer CPU % |"
            );
            let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (run, base) in ratios {
                let frames = |run: &Run| run.recognizer.as_ref().map(|r| r.processed_per_s);
                let all = |run: &Run| run.events.as_ref().map(|e| e.all_per_s(run.window_s));
                let passages =
                    |run: &Run| run.events.as_ref().map(|e| e.passages_per_s(run.window_s));
                let detected = |run: &Run| run.events.as_ref().and_then(Events::detected_share);
                let latency = |run: &Run| run.events.as_ref().and_then(|e| e.detect_latency.median);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} against {} | {} | {} | {} | {} | {} | {} |",
                    run.cameras,
                    threads_text(run.onnx_threads),
                    run.replicas,
                    base.replicas,
                    ratio_cell(frames(run), frames(base), 2, ""),
                    ratio_cell(all(run), all(base), 2, ""),
                    ratio_cell(passages(run), passages(base), 2, ""),
                    ratio_cell(detected(run), detected(base), 0, " %"),
                    ratio_cell(latency(run), latency(base), 0, " ms"),
                    ratio_cell(
                        Some(run.cpu("recognizer")),
                        Some(base.cpu("recognizer")),
                        0,
                        " %"
                    ),
                );
            }
        }
        out.push('\n');
        for failure in &set.failures {
            let _ = writeln!(out, "Failed run: {failure}.\n");
        }
    }

    fn ingest_only_table(&self, out: &mut String, set: &RunSet) {
        let _ = writeln!(
            out,
            "#### Ingest only: frames to the benchmark's NATS subscriber, {} fps sampled per camera\n",
            set.fps
        );
        let _ = writeln!(
            out,
            "| cameras | ingest CPU % | ingest CPU % per camera | decoded fps per camera, mean (min) | \
             published fps per camera, mean (min) | ingest drops | frame age on NATS ms, median / p95 | \
             RTSP servers CPU % | NATS + subscriber CPU % | machine busy % (of it interrupts) | other work on the machine % |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
        );
        for run in &set.runs {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} ({:.1}) | {:.2} ({:.2}) | {} | {} | {:.1} | {:.1} | {:.0} ({:.0}) | {:.0} |",
                run.cameras,
                run.cpu("ingest"),
                run.cpu("ingest") / run.cameras as f64,
                run.decoded_mean,
                run.decoded_min,
                run.published_mean,
                run.published_min,
                run.drops_text(),
                run.frame_age.cell(),
                run.cpu("rtsp"),
                run.cpu("nats") + run.cpu("bench"),
                run.machine_busy,
                run.interrupts,
                run.cpu_outside(),
            );
        }
        out.push('\n');
    }

    fn full_tables(&self, out: &mut String, set: &RunSet) {
        let _ = writeln!(
            out,
            "#### Full pipeline, {} fps sampled per camera: ingest and recognizer\n",
            set.fps
        );
        let _ = writeln!(
            out,
            "| cameras | ingest CPU % | ingest CPU % per camera | decoded fps per camera, mean (min) | \
             published fps per camera | ingest drops | recognizer frames/s in / read | \
             frames/s read per camera, min / max | \
             recognizer drops too old / queue full | recognizer CPU % | analytic + bridge + config + VMS CPU % | \
             RTSP servers CPU % | NATS + subscriber CPU % | machine busy % (of it interrupts) | other work on the machine % |"
        );
        let _ = writeln!(
            out,
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for run in &set.runs {
            let (rates, per_camera, drops) = match &run.recognizer {
                Some(r) => (
                    format!("{:.2} / {:.2}", r.received_per_s, r.processed_per_s),
                    format!(
                        "{:.2} / {:.2}",
                        r.read_per_camera_min, r.read_per_camera_max
                    ),
                    format!("{:.0} / {:.0}", r.too_old, r.queue_full),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} ({:.1}) | {:.2} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} ({:.0}) | {:.0} |",
                run.cameras,
                run.cpu("ingest"),
                run.cpu("ingest") / run.cameras as f64,
                run.decoded_mean,
                run.decoded_min,
                run.published_mean,
                run.drops_text(),
                rates,
                per_camera,
                drops,
                run.cpu("recognizer"),
                run.cpu_rest(),
                run.cpu("rtsp"),
                run.cpu("nats") + run.cpu("bench"),
                run.machine_busy,
                run.interrupts,
                run.cpu_outside(),
            );
        }
        let _ = writeln!(
            out,
            "\n#### Full pipeline, {} fps sampled per camera: plate events in the VMS\n",
            set.fps
        );
        let _ = writeln!(
            out,
            "| cameras | car passages | with Detect | with Lost | Detect text right | extra events | \
             Detect latency ms, median / p95 (events) | Lost latency ms, median / p95 (events) | \
             Lost latency minus the lost timeout ms, median / p95 | frame age on NATS ms, median / p95 |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for run in &set.runs {
            let Some(e) = &run.events else { continue };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                run.cameras,
                e.passages,
                e.detected,
                e.lost,
                e.detect_text_right,
                e.extra,
                e.detect_latency.cell_n(),
                e.lost_latency.cell_n(),
                e.lost_after_timeout.cell(),
                run.frame_age.cell(),
            );
        }
        out.push('\n');
        let silent: usize = set.runs.iter().map(|run| run.silent_cameras).sum();
        if silent > 0 {
            let _ = writeln!(
                out,
                "Cameras that published no frame at all: {silent} (over all runs).\n"
            );
        }
    }
}

/// Each run paired with the run of the fewest replicas at the same cameras
/// and ONNX threads (itself left out).
fn replica_ratios(runs: &[Run]) -> Vec<(&Run, &Run)> {
    runs.iter()
        .filter_map(|run| {
            let base = runs
                .iter()
                .filter(|other| {
                    other.cameras == run.cameras && other.onnx_threads == run.onnx_threads
                })
                .min_by_key(|other| other.replicas)?;
            (base.replicas < run.replicas).then_some((run, base))
        })
        .collect()
}

/// `1.03 (7.10 / 6.90)`: the ratio, then both values with `unit`.
fn ratio_cell(value: Option<f64>, base: Option<f64>, decimals: usize, unit: &str) -> String {
    match (value, base) {
        (Some(value), Some(base)) => {
            let ratio = if base > 0.0 {
                format!("{:.2}", value / base)
            } else {
                "-".into()
            };
            format!("{ratio} ({value:.decimals$}{unit} / {base:.decimals$}{unit})")
        }
        _ => "-".into(),
    }
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value
        .map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "unknown".into())
}

/// How to run this benchmark again with the same arguments.
fn command_line() -> String {
    let mut line = "cargo run --release -p anpr-e2e --bin anpr-bench-pipeline --".to_string();
    for arg in std::env::args().skip(1) {
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
            line.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// `2026-11-29 05:16 UTC`.
fn utc_text(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// `doc` with the generated `results` in the benchmark's section: between
/// the result markers when the section has them, else the section (or a new
/// one at the end) made of a short introduction and the results.
fn replace_results(doc: &str, doc_section: &DocSection, results: &str) -> String {
    let DocSection {
        heading,
        begin: results_begin,
        end: results_end,
        ..
    } = *doc_section;
    let block = format!("{results_begin}\n\n{}\n{results_end}", results.trim_end());
    let heading = format!("{heading}\n");
    let section_start = if doc.starts_with(&heading) {
        Some(0)
    } else {
        doc.find(&format!("\n{heading}")).map(|at| at + 1)
    };
    let Some(start) = section_start else {
        return format!("{}\n\n{}", doc.trim_end(), new_section(doc_section, &block));
    };
    let body_start = start + heading.len();
    let end = doc[body_start..]
        .find("\n## ")
        .map(|at| body_start + at + 1)
        .unwrap_or(doc.len());
    let section = &doc[start..end];
    let replaced = match (section.find(results_begin), section.find(results_end)) {
        (Some(begin), Some(finish)) if begin < finish => format!(
            "{}{block}{}",
            &section[..begin],
            &section[finish + results_end.len()..]
        ),
        _ => {
            let mut fresh = new_section(doc_section, &block);
            if end < doc.len() {
                fresh.push('\n');
            }
            fresh
        }
    };
    format!("{}{replaced}{}", &doc[..start], &doc[end..])
}

fn new_section(doc_section: &DocSection, block: &str) -> String {
    format!(
        "{}\n\n{}\n\n{block}\n",
        doc_section.heading, doc_section.intro
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_replace_only_the_marked_block_of_the_section() {
        let DocSection {
            heading,
            begin,
            end,
            ..
        } = PIPELINE_DOC;
        let doc = format!(
            "# Benchmarks\n\n## Other\n\ntext\n\n{heading}\n\nintro\n\n{begin}\nold\n{end}\n\nnotes\n\n## Later\n\nmore\n"
        );
        let out = replace_results(&doc, &PIPELINE_DOC, "new table\n");
        assert!(out.contains("## Other\n\ntext\n"));
        assert!(out.contains("intro\n\n"));
        assert!(out.contains("new table"));
        assert!(!out.contains("old"));
        assert!(out.contains("notes\n\n## Later\n\nmore\n"));
        assert_eq!(replace_results(&out, &PIPELINE_DOC, "new table\n"), out);
    }

    #[test]
    fn results_make_a_section_at_the_end_when_there_is_none() {
        let out = replace_results("# Benchmarks\n\n## Other\n\ntext\n", &PIPELINE_DOC, "table");
        assert!(out.starts_with("# Benchmarks\n\n## Other\n\ntext\n\n"));
        assert!(out.contains(&format!(
            "{}\n\n`anpr-bench-pipeline`",
            PIPELINE_DOC.heading
        )));
        assert!(out.trim_end().ends_with(PIPELINE_DOC.end));
    }

    #[test]
    fn the_replica_section_leaves_the_pipeline_section_alone() {
        let doc = replace_results("# Benchmarks\n", &PIPELINE_DOC, "camera tables");
        let with_replicas = replace_results(&doc, &REPLICAS_DOC, "replica tables v1");
        assert!(with_replicas.starts_with(doc.trim_end()));
        assert!(with_replicas.contains(&format!("{}\n\n{}", REPLICAS_DOC.heading, REPLICAS_INTRO)));
        let again = replace_results(&with_replicas, &REPLICAS_DOC, "replica tables v2");
        assert!(again.contains("camera tables"));
        assert!(again.contains("replica tables v2"));
        assert!(!again.contains("replica tables v1"));
        assert_eq!(again.matches(REPLICAS_DOC.heading).count(), 1);
        // And the other way round.
        let pipeline_again = replace_results(&again, &PIPELINE_DOC, "camera tables v2");
        assert!(pipeline_again.contains("camera tables v2"));
        assert!(pipeline_again.contains("replica tables v2"));
    }

    #[test]
    fn utc_dates_are_civil_dates() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_929_360);
        assert_eq!(utc_text(at), "2026-11-29 05:16 UTC");
        assert_eq!(utc_text(SystemTime::UNIX_EPOCH), "1970-01-01 00:00 UTC");
    }

    fn clip() -> PlateClip {
        let spec = ClipSpec::default();
        PlateClip {
            path: PathBuf::new(),
            plates: spec.plates.clone(),
            duration: spec.duration(),
            spec,
        }
    }

    #[test]
    fn passages_follow_the_clip_from_each_connection() {
        let mut starts = BTreeMap::new();
        starts.insert(camera_id(0), vec![1_000_000]);
        // Window: the second loop (21 s) of camera 1.
        let list = passages(&clip(), 2, &starts, 1_021_000, 1_042_000);
        let found: Vec<(usize, &str, i64)> = list
            .iter()
            .map(|p| (p.camera, p.plate.as_str(), p.from_ms))
            .collect();
        assert_eq!(
            found,
            [
                (0, "7ABC123", 1_021_000),
                (0, "KX5M21", 1_028_000),
                (0, "4TRW856", 1_035_000)
            ]
        );
        // A reconnection restarts the clip; passages cut by it are left out.
        starts.insert(camera_id(0), vec![1_000_000, 1_030_000]);
        let list = passages(&clip(), 1, &starts, 1_021_000, 1_042_000);
        let found: Vec<i64> = list.iter().map(|p| p.from_ms).collect();
        assert_eq!(found, [1_021_000, 1_030_000, 1_037_000]);
    }
}
