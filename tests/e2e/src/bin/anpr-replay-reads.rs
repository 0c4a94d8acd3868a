//! Publishes synthetic plate passages on `anpr.v1.reads.<camera>`, paced like
//! a recognizer working on live cameras: the demo's source of reads until
//! ingest and recognizer run on the bundled sample.

use std::time::{Duration, SystemTime};

use anpr_common::bus::NatsArgs;
use anpr_common::subjects;
use anpr_e2e::passages::{plates, SyntheticCamera};
use anyhow::Context;
use clap::Parser;
use prost::Message;

/// Publishes synthetic plate reads for some cameras.
#[derive(Debug, Parser)]
#[command(name = "anpr-replay-reads", version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Camera as ID=IP (repeatable); the IP is what the reads carry.
    #[arg(long = "camera", required = true, value_parser = parse_camera)]
    cameras: Vec<(String, String)>,
    /// Cars per camera.
    #[arg(long, default_value_t = 3)]
    cars: usize,
    /// Frames in which each car is read.
    #[arg(long, default_value_t = 8)]
    frames: u32,
    /// Frames per second per camera.
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// Empty frames between two cars (must cover the lost timeout).
    #[arg(long, default_value_t = 20)]
    gap_frames: u32,
    /// Seed of the plates and the OCR noise.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

fn parse_camera(value: &str) -> Result<(String, String), String> {
    let (id, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("expected ID=IP, got {value:?}"))?;
    subjects::validate_token(id).map_err(|err| format!("camera id {id:?}: {err}"))?;
    if ip.is_empty() {
        return Err(format!("camera {id}: the IP is empty"));
    }
    Ok((id.to_string(), ip.to_string()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.fps > 0.0 && args.fps <= 60.0,
        "--fps must be in (0, 60], got {}",
        args.fps
    );
    let client = args
        .nats
        .connect("anpr-replay-reads")
        .await
        .context("connecting to NATS")?;
    let interval = Duration::from_secs_f64(1.0 / args.fps);
    let all_plates = plates(args.cars * args.cameras.len(), args.seed);
    let mut cameras: Vec<SyntheticCamera> = args
        .cameras
        .iter()
        .enumerate()
        .map(|(i, (id, ip))| SyntheticCamera::new(id, ip, args.seed + i as u64))
        .collect();

    // Each camera's timeline: cars separated by empty road, frame by frame.
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut published = 0usize;
    for car in 0..args.cars {
        let mut timelines = Vec::new();
        for (c, camera) in cameras.iter_mut().enumerate() {
            let plate = &all_plates[car * args.cameras.len() + c];
            println!("{}: car {} plate {plate}", camera.camera_id, car + 1);
            timelines.push(plate.clone());
        }
        for frame in 0..args.frames + args.gap_frames {
            ticker.tick().await;
            let now = SystemTime::now();
            for (camera, plate) in cameras.iter_mut().zip(&timelines) {
                let reads = if frame < args.frames {
                    camera
                        .passage(plate, 1, now, interval)
                        .pop()
                        .context("a passage of one frame")?
                } else {
                    camera.empty_frame(now)
                };
                client
                    .publish(
                        subjects::reads(&camera.camera_id),
                        reads.encode_to_vec().into(),
                    )
                    .await
                    .context("publishing reads")?;
                published += 1;
            }
        }
    }
    client.flush().await.context("flushing to NATS")?;
    println!("published {published} frames of reads");
    Ok(())
}
