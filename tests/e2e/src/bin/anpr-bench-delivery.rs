//! Delivery benchmark: plate reads published on NATS → anpr-analytic →
//! anpr-vms-bridge → the VMS simulator over HTTP, all on one machine.
//!
//! Reports plate events per second delivered into the VMS and the latency
//! from publishing the read that caused a Detect to the VMS receiving it
//! (p50/p99). Lost events are counted but not in the latency figures: they
//! wait for the lost timeout by design.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anpr_common::proto::{AnalyticSettings, EventSelection};
use anpr_e2e::passages::{plates, SyntheticCamera};
use anpr_e2e::stack::Stack;
use anpr_vms_sim::{Profile, SimCamera, SimConfig, Simulator};
use anyhow::Context;
use clap::Parser;

/// Measures plate events/s and read-to-VMS latency through analytic + bridge.
#[derive(Debug, Parser)]
#[command(name = "anpr-bench-delivery", version)]
struct Args {
    /// Cameras publishing at the same time.
    #[arg(long, default_value_t = 8)]
    cameras: usize,
    /// Cars per camera.
    #[arg(long, default_value_t = 25)]
    cars: usize,
    /// Frames in which each car is read.
    #[arg(long, default_value_t = 8)]
    frames: u32,
    /// Frames per second per camera (the pace of publishing, and the spacing
    /// of capture times).
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// Publish as fast as possible instead of at --fps (capture times keep
    /// the --fps spacing): measures the most the pipeline can take.
    #[arg(long)]
    flood: bool,
    /// The analytic's lost timeout.
    #[arg(long, default_value_t = 500)]
    lost_timeout_ms: u32,
    /// Server version the simulator imitates: 4.x, 5.0, 5.1, 6.0, 6.1.
    #[arg(long, default_value = "6.1")]
    profile: Profile,
    /// Give up waiting for the VMS after this many seconds.
    #[arg(long, default_value_t = 180)]
    timeout_s: u64,
}

fn millis_f64(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.cameras > 0 && args.cameras <= 250,
        "--cameras must be 1-250"
    );
    anyhow::ensure!(
        args.fps > 0.0 && args.fps <= 60.0,
        "--fps must be in (0, 60]"
    );
    // Quiet: the services log every event at info level.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    let _telemetry = anpr_common::telemetry::init("anpr-bench-delivery")?;

    let stack = Stack::start().await?;
    let sim_cameras: Vec<SimCamera> = (0..args.cameras)
        .map(|i| SimCamera {
            id: format!("00000000-0000-4000-8000-{:012}", i + 1),
            name: format!("Lane {}", i + 1),
            url: format!("10.77.0.{}", i + 1),
            physical_id: format!("02-00-00-00-00-{:02X}", i + 1),
            mac: format!("02-00-00-00-00-{:02X}", i + 1),
            logical_id: Some(i as u32 + 1),
            status: "Online".into(),
        })
        .collect();
    let sim = Simulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimConfig {
            profile: args.profile,
            cameras: sim_cameras,
            ..SimConfig::default()
        },
    )
    .await
    .context("starting the VMS simulator")?;

    stack
        .set_analytic(AnalyticSettings {
            skip_first_reads: Some(2),
            min_confidence: Some(0.7),
            lost_timeout_ms: Some(args.lost_timeout_ms),
            ..Default::default()
        })
        .await?;
    let mut names = HashMap::new();
    for i in 0..args.cameras {
        let id = format!("lane-{}", i + 1);
        let name = format!("Lane {}", i + 1);
        stack
            .add_camera(&id, &name, &format!("10.77.0.{}", i + 1))
            .await?;
        names.insert(name, id);
    }
    stack
        .add_target("bench", sim.port(), EventSelection::Both)
        .await?;
    stack.wait_for_delivery_to("bench").await?;

    let interval = Duration::from_secs_f64(1.0 / args.fps);
    let gap_frames = (f64::from(args.lost_timeout_ms) / 1000.0 * args.fps).ceil() as u32 + 3;
    let all_plates = plates(args.cars * args.cameras, 77);
    let mut cameras: Vec<SyntheticCamera> = (0..args.cameras)
        .map(|i| {
            SyntheticCamera::new(
                format!("lane-{}", i + 1),
                format!("10.77.0.{}", i + 1),
                i as u64,
            )
        })
        .collect();

    // Capture time → publish time of every frame, to measure latency.
    let mut published_at: HashMap<(String, i64), f64> = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let capture_start = SystemTime::now();
    let begun = Instant::now();
    let mut frames_published = 0u64;
    let mut step = 0u32;
    for car in 0..args.cars {
        for frame in 0..args.frames + gap_frames {
            if !args.flood {
                ticker.tick().await;
            }
            let capture = capture_start + interval * step;
            step += 1;
            for (c, camera) in cameras.iter_mut().enumerate() {
                let reads = if frame < args.frames {
                    let plate = &all_plates[car * args.cameras + c];
                    camera
                        .passage(plate, 1, capture, interval)
                        .pop()
                        .context("one frame")?
                } else {
                    camera.empty_frame(capture)
                };
                stack.publish_reads(&reads).await?;
                let capture_ms = millis_f64(capture).floor() as i64;
                published_at.insert(
                    (camera.camera_id.clone(), capture_ms),
                    millis_f64(SystemTime::now()),
                );
                frames_published += 1;
            }
        }
    }
    stack.client.flush().await.context("flushing")?;
    let published_in = begun.elapsed();

    let expected = args.cameras * args.cars * 2;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let events = loop {
        let events = sim.events();
        if events.len() >= expected || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let last_receipt = events.iter().map(|e| e.received_at_ms).max().unwrap_or(0);
    let first_publish = published_at.values().copied().fold(f64::INFINITY, f64::min);
    let span_s = (last_receipt as f64 - first_publish) / 1000.0;

    let mut detect_latency: Vec<f64> = Vec::new();
    let (mut detects, mut losts, mut other) = (0usize, 0usize, 0usize);
    for event in &events {
        if event.description.contains("Detect") {
            detects += 1;
            let camera = names.get(&event.source).cloned().unwrap_or_default();
            if let Some(published) = event
                .timestamp_ms
                .and_then(|ts| published_at.get(&(camera, ts)))
            {
                detect_latency.push(event.received_at_ms as f64 - published);
            }
        } else if event.description.contains("Lost") {
            losts += 1;
        } else {
            other += 1;
        }
    }
    detect_latency.sort_by(|a, b| a.total_cmp(b));

    println!(
        "anpr-bench-delivery: analytic + vms-bridge into the VMS simulator (profile {})",
        args.profile
    );
    println!("machine:            {}", machine());
    println!(
        "load:               {} cameras x {} cars x {} frames at {} fps{}",
        args.cameras,
        args.cars,
        args.frames,
        args.fps,
        if args.flood {
            " (flood: published as fast as possible)"
        } else {
            ""
        }
    );
    println!(
        "frames published:   {frames_published} in {:.2} s ({:.0} frames/s)",
        published_in.as_secs_f64(),
        frames_published as f64 / published_in.as_secs_f64().max(1e-9)
    );
    println!(
        "events in VMS:      {} of {expected} expected (Detect {detects}, Lost {losts}, other {other})",
        events.len()
    );
    println!(
        "throughput:         {:.1} plate events/s (first read published to last event received: {span_s:.2} s)",
        events.len() as f64 / span_s.max(1e-9)
    );
    println!(
        "Detect latency:     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} events (read published -> VMS received)",
        percentile(&detect_latency, 50.0),
        percentile(&detect_latency, 99.0),
        detect_latency.last().copied().unwrap_or(f64::NAN),
        detect_latency.len()
    );
    sim.shutdown().await;
    anyhow::ensure!(
        events.len() == expected,
        "the VMS received {} events, expected {expected}",
        events.len()
    );
    Ok(())
}
