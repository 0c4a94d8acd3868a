use std::net::SocketAddr;
use std::time::Duration;

use anpr_common::bus::NatsArgs;
use anpr_ingest::service::{self, Options, DEFAULT_JPEG_QUALITY};
use anpr_ingest::source::RtspTransport;
use anyhow::Context;
use clap::Parser;

/// ANPR camera ingest: pulls each camera's RTSP stream, decodes it, samples
/// it and publishes JPEG frames on anpr.v1.frames.<camera>.
#[derive(Debug, Parser)]
#[command(name = "anpr-ingest", version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// gRPC URL of the config service.
    #[arg(
        long,
        env = "ANPR_CONFIG_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    config_url: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ANPR_HTTP_LISTEN", default_value = "0.0.0.0:9090")]
    http_listen: SocketAddr,
    /// This replica's name in camera leases and statuses; unique among the
    /// replicas (on Kubernetes: the pod name). Default: the host name and a
    /// random suffix.
    #[arg(long, env = "ANPR_INSTANCE")]
    instance: Option<String>,
    /// Lease TTL in milliseconds: the cameras of a replica that died are
    /// read again by the others within about this time.
    #[arg(long, env = "ANPR_LEASE_TTL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1_000..=600_000))]
    lease_ttl_ms: u64,
    /// Most cameras this replica reads; 0 for no limit.
    #[arg(long, env = "ANPR_MAX_CAMERAS", default_value_t = 0)]
    max_cameras: usize,
    /// How RTP travels from the cameras: interleaved in the RTSP TCP
    /// connection, or over UDP (experimental in the RTSP library).
    #[arg(long, env = "ANPR_RTSP_TRANSPORT", value_enum, default_value_t = RtspTransport::Tcp)]
    rtsp_transport: RtspTransport,
    /// JPEG quality of published frames, 1-100.
    #[arg(long, env = "ANPR_JPEG_QUALITY", default_value_t = DEFAULT_JPEG_QUALITY,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = anpr_common::telemetry::init("anpr-ingest")?;
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    let mut options = Options::new(args.nats, args.config_url);
    options.http_listen = args.http_listen;
    if let Some(instance) = args.instance.as_deref() {
        options.instance = anpr_common::lease::sanitize_instance(instance);
    }
    options.lease_ttl = Duration::from_millis(args.lease_ttl_ms);
    options.max_cameras = args.max_cameras;
    options.rtsp_transport = args.rtsp_transport;
    options.jpeg_quality = args.jpeg_quality;
    let running = service::start(options, shutdown)
        .await
        .context("starting anpr-ingest")?;
    tracing::info!(http = %running.http_addr, "anpr-ingest started");
    running
        .wait()
        .await
        .context("anpr-ingest stopped with an error")?;
    Ok(())
}
