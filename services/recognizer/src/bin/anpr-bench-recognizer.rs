//! `anpr-bench-recognizer`: accuracy and speed of the recognizer on a dataset
//! folder in the `testdata/README.md` format. The logic is in
//! `anpr_recognizer::bench`; this file only wires the command line to it.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use anpr_recognizer::bench::{self, Machine, RunInfo};
use anpr_recognizer::{ModelConfig, ReadOptions, Reader, Recognizer};
use anyhow::Context;
use clap::Parser;

/// Reads every image of a dataset folder and reports exact-match accuracy,
/// detection recall, the confusions of the misses and the latency per image.
#[derive(Debug, Parser)]
#[command(name = "anpr-bench-recognizer", version)]
struct Args {
    /// Folder of NAME.jpg + NAME.txt pairs (see testdata/README.md).
    #[arg(long)]
    dataset: PathBuf,
    /// Folder filled by scripts/fetch-models.
    #[arg(long, env = "ANPR_MODELS_DIR", default_value = "models")]
    models_dir: PathBuf,
    /// Intra-op threads per ONNX model session.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Longest side the text detector sees.
    #[arg(long, default_value_t = 960)]
    detector_max_side: u32,
    /// Only the first N images (sorted by name).
    #[arg(long)]
    limit: Option<usize>,
    /// Write the Markdown report (summary, latency, confusions, misses) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Print one JSON line per image on stdout as it is read.
    #[arg(long)]
    json: bool,
    /// Which recogniser reads the text (see `anpr-recognizer --help`).
    #[arg(long, value_enum, default_value_t = Reader::default())]
    reader: Reader,
    /// Turn text boxes the orientation classifier finds upside down.
    #[arg(long, default_value_t = ReadOptions::default().upside_down_text, action = clap::ArgAction::Set)]
    upside_down_text: bool,
    /// The dataset is a folder of plate crops with `groundtruth.csv`
    /// (`FILE,STATE,PLATE`): measure the recogniser alone, no detection.
    #[arg(long)]
    crops: bool,
}

impl Args {
    /// The recognizer and the read options of this run.
    fn recognizer(&self) -> anyhow::Result<(Recognizer, ReadOptions)> {
        let config = ModelConfig {
            models_dir: self.models_dir.clone(),
            threads: self.threads,
            ..ModelConfig::default()
        };
        let recognizer = Recognizer::load_for(&config, self.reader)?;
        let options = ReadOptions {
            detector_max_side: self.detector_max_side,
            reader: self.reader,
            upside_down_text: self.upside_down_text,
            ..ReadOptions::default()
        };
        Ok((recognizer, options))
    }

    /// The command that reproduces this run, for the report.
    fn command(&self) -> String {
        let mut command = format!(
            "cargo run --release -p anpr-recognizer --bin anpr-bench-recognizer -- --dataset {} --models-dir {} --threads {} --detector-max-side {}",
            self.dataset.display(),
            self.models_dir.display(),
            self.threads,
            self.detector_max_side
        );
        command.push_str(&format!(
            " --reader {}",
            clap::ValueEnum::to_possible_value(&self.reader)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ));
        command.push_str(&format!(" --upside-down-text {}", self.upside_down_text));
        if self.crops {
            command.push_str(" --crops");
        }
        if let Some(limit) = self.limit {
            command.push_str(&format!(" --limit {limit}"));
        }
        command
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = anpr_common::telemetry::init("anpr-bench-recognizer")?;
    if args.threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    // The detector works on multiples of 32 pixels.
    if args.detector_max_side < 32 {
        anyhow::bail!(
            "--detector-max-side must be at least 32, got {}",
            args.detector_max_side
        );
    }
    if args.crops {
        return crops(&args);
    }
    let mut samples = bench::load_dataset(&args.dataset)?;
    if let Some(limit) = args.limit {
        samples.truncate(limit);
    }
    let (recognizer, options) = args.recognizer()?;

    // The first inference of a session sets up buffers and kernels; one
    // untimed read keeps that out of the latency figures.
    if let Some(first) = samples.first() {
        let bytes = std::fs::read(&first.image)
            .with_context(|| format!("reading {}", first.image.display()))?;
        let _ = recognizer.read_encoded(&bytes, &options);
    }

    let load_before = bench::load_average();
    let stdout = std::io::stdout();
    let mut failed_write = None;
    let total = samples.len();
    let mut done = 0usize;
    let scores = bench::evaluate(
        &samples,
        |bytes| recognizer.read_encoded(bytes, &options),
        |score| {
            done += 1;
            if args.json {
                let line = serde_json::to_string(score)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                if let Err(error) = writeln!(stdout.lock(), "{line}") {
                    failed_write.get_or_insert(error);
                }
            } else if done.is_multiple_of(20) || done == total {
                eprintln!("{done}/{total} images");
            }
        },
    );
    if let Some(error) = failed_write {
        return Err(error).context("writing the JSON lines");
    }

    let summary = bench::summarize(&scores);
    let info = RunInfo {
        dataset: args.dataset.display().to_string(),
        threads: args.threads,
        detector_max_side: args.detector_max_side,
        machine: Machine::detect(),
        date: bench::utc_timestamp(SystemTime::now()),
        command: args.command(),
        load_before,
        load_after: bench::load_average(),
    };
    let table = bench::summary_table(&summary, &info);
    if args.json {
        // stdout carries the JSON lines; the people-facing table goes aside.
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, bench::render_markdown(&summary, &scores, &info))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The recogniser alone on a folder of plate crops: exact matches, the
/// character confusions of same-length misses, latency per crop.
fn crops(args: &Args) -> anyhow::Result<()> {
    let list = args.dataset.join("groundtruth.csv");
    let text =
        std::fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.trim().split(',').collect();
        match fields.as_slice() {
            [file, _state, plate] => rows.push((file.to_string(), plate.to_string())),
            [] | [""] => {}
            _ => anyhow::bail!(
                "{}:{}: expected FILE,STATE,PLATE",
                list.display(),
                number + 1
            ),
        }
    }
    if let Some(limit) = args.limit {
        rows.truncate(limit);
    }
    let (recognizer, options) = args.recognizer()?;
    let mut right = 0usize;
    let mut times = Vec::with_capacity(rows.len());
    let mut confusions: std::collections::BTreeMap<String, usize> = Default::default();
    let mut length_errors = 0usize;
    for (index, (file, plate)) in rows.iter().enumerate() {
        let path = args.dataset.join(file);
        let crop = image::open(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .to_rgb8();
        let (read, _confidence, elapsed) = recognizer.read_plate_crop(crop, &options)?;
        // The first read sets up the sessions: not timed.
        if index > 0 {
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
        if read == *plate {
            right += 1;
        } else if read.len() == plate.len() {
            for (want, got) in plate.chars().zip(read.chars()) {
                if want != got {
                    *confusions.entry(format!("{want}->{got}")).or_default() += 1;
                }
            }
        } else {
            length_errors += 1;
        }
        if args.json {
            println!(
                "{}",
                serde_json::json!({"file": file, "plate": plate, "read": read, "ms": elapsed.as_secs_f64() * 1000.0})
            );
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mut worst: Vec<(String, usize)> = confusions.into_iter().collect();
    worst.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let worst: Vec<String> = worst
        .iter()
        .take(15)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let summary = format!(
        "| dataset | reader | crops | exact | median ms | p95 ms | wrong length | most common confusions |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n\
         | {} | {:?} | {} | {} ({:.1} %) | {:.1} | {:.1} | {} | {} |\n\n{} ({}, {} threads)\n",
        args.dataset.display(),
        args.reader,
        rows.len(),
        right,
        100.0 * right as f64 / rows.len().max(1) as f64,
        at(0.5),
        at(0.95),
        length_errors,
        worst.join(", "),
        args.command(),
        {
            let machine = Machine::detect();
            format!("{} cores, {}", machine.cores, machine.cpu_model)
        },
        args.threads,
    );
    if args.json {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, &summary).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
