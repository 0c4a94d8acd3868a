use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anpr_common::bus::NatsArgs;
use anpr_common::config_watch::ConfigWatch;
use anpr_recognizer::service::{self, oneshot, ServiceOptions};
use anpr_recognizer::{ModelConfig, ReadOptions, Reader, Recognizer};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// ANPR recognizer: reads licence plates in camera frames from NATS and
/// publishes what it read; or, with `image`, in image files.
#[derive(Debug, Parser)]
#[command(
    name = "anpr-recognizer",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s flags, for when no subcommand is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve(Box<ServeArgs>),
    /// Read image files (JPEG or PNG) once and print one JSON line per file.
    Image(ImageArgs),
}

#[derive(Debug, Args)]
struct EngineArgs {
    /// Folder filled by scripts/fetch-models.
    #[arg(long, env = "ANPR_MODELS_DIR", default_value = "models")]
    models_dir: PathBuf,
    /// ONNX Runtime library. Default: <models-dir>/lib/libonnxruntime.so.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_library: Option<PathBuf>,
    /// Intra-op threads per model.
    #[arg(long, env = "ANPR_ONNX_THREADS", default_value_t = 2)]
    onnx_threads: usize,
    /// Longest side of the picture the text detector sees.
    #[arg(long, env = "ANPR_DETECTOR_MAX_SIDE", default_value_t = ReadOptions::default().detector_max_side)]
    detector_max_side: u32,
    /// Which recogniser reads the text: the general PP-OCR pair, the
    /// project's plate recogniser, or both voting character by character.
    #[arg(long, env = "ANPR_READER", value_enum, default_value_t = Reader::default())]
    reader: Reader,
    /// Turn text boxes that PP-OCR's orientation classifier finds upside
    /// down before reading them (for cameras that show plates upside down).
    #[arg(
        long,
        env = "ANPR_UPSIDE_DOWN_TEXT",
        default_value_t = ReadOptions::default().upside_down_text,
        action = clap::ArgAction::Set
    )]
    upside_down_text: bool,
    /// Plates read with a lower confidence (0-1) are not reported.
    #[arg(
        long,
        env = "ANPR_MIN_CONFIDENCE",
        default_value_t = ReadOptions::default().min_confidence,
        value_parser = confidence
    )]
    min_confidence: f32,
}

fn confidence(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("must be a number from 0 to 1, got {text:?}")),
    }
}

impl EngineArgs {
    fn config(&self) -> ModelConfig {
        ModelConfig {
            models_dir: self.models_dir.clone(),
            ort_library: self.ort_library.clone(),
            threads: self.onnx_threads.max(1),
        }
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            detector_max_side: self.detector_max_side,
            min_confidence: self.min_confidence,
            reader: self.reader,
            upside_down_text: self.upside_down_text,
            ..ReadOptions::default()
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Frames read at the same time, each with --onnx-threads threads.
    #[arg(long, env = "ANPR_RECOGNIZER_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Frames waiting for a worker at most; cameras are read in turn, and a
    /// full queue drops from the camera with the most waiting. Default:
    /// 2 x workers.
    #[arg(long, env = "ANPR_RECOGNIZER_QUEUE")]
    queue: Option<usize>,
    /// Frames older than this (since capture) are dropped and counted.
    #[arg(long, env = "ANPR_MAX_FRAME_AGE_MS", default_value_t = 2000)]
    max_frame_age_ms: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ANPR_HTTP_LISTEN", default_value = "0.0.0.0:9090")]
    http_listen: SocketAddr,
    /// gRPC URL of the config service, followed for each camera's mask
    /// regions. Without it frames are read with no per-camera masks.
    #[arg(long, env = "ANPR_CONFIG_URL")]
    config_url: Option<String>,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Debug, Args)]
struct ImageArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Image files to read.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("anpr-recognizer: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Telemetry's exporter needs a runtime around it, in both modes.
    let _runtime_context = runtime.enter();
    let _telemetry = match anpr_common::telemetry::init("anpr-recognizer") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("anpr-recognizer: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Image(args)) => image(args),
        Some(Command::Serve(args)) => report(runtime.block_on(serve(*args))),
        None => report(runtime.block_on(serve(cli.serve))),
    }
}

fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "anpr-recognizer failed");
            eprintln!("anpr-recognizer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    let mut options = ServiceOptions::new(args.nats, args.engine.config());
    options.read = args.engine.read_options();
    options.http_listen = args.http_listen;
    options.workers = args.workers.max(1);
    options.queue = args.queue.unwrap_or(2 * options.workers).max(1);
    options.max_frame_age = Duration::from_millis(args.max_frame_age_ms);
    if let Some(url) = &args.config_url {
        let watch = ConfigWatch::spawn(url, shutdown.clone())
            .with_context(|| format!("--config-url {url:?}"))?;
        options.config = Some(watch);
    }
    let running = service::start(options, shutdown)
        .await
        .context("starting anpr-recognizer")?;
    tracing::info!(http = %running.http_addr, "anpr-recognizer started");
    running
        .wait()
        .await
        .context("anpr-recognizer stopped with an error")
}

/// One-shot mode: exit code 0 even when files fail (each has its error
/// line), 2 when the models cannot be loaded.
fn image(args: ImageArgs) -> ExitCode {
    let recognizer = match Recognizer::load_for(&args.engine.config(), args.engine.reader) {
        Ok(recognizer) => recognizer,
        Err(error) => {
            eprintln!("anpr-recognizer: {error}");
            return ExitCode::from(2);
        }
    };
    let options = args.engine.read_options();
    let mut stdout = std::io::stdout().lock();
    match oneshot::read_files(&recognizer, &args.files, &options, &mut stdout) {
        Ok(_failed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("anpr-recognizer: writing to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}
