use std::net::SocketAddr;
use std::time::Duration;

use anpr_analytic::service::{self, Options};
use anpr_common::bus::NatsArgs;
use anyhow::Context;
use clap::Parser;

/// ANPR analytic: turns plate reads into Detect, Update and Lost plate
/// events on the JetStream stream ANPR_PLATES.
#[derive(Debug, Parser)]
#[command(name = "anpr-analytic", version)]
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
    /// This replica's name in camera leases; unique among the replicas (on
    /// Kubernetes: the pod name). Default: the host name and a random suffix.
    #[arg(long, env = "ANPR_INSTANCE")]
    instance: Option<String>,
    /// Lease TTL in milliseconds: the cameras of a replica that died are
    /// taken over by the others within about this time.
    #[arg(long, env = "ANPR_LEASE_TTL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1_000..=600_000))]
    lease_ttl_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = anpr_common::telemetry::init("anpr-analytic")?;
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    let mut options = Options::new(args.nats, args.config_url);
    options.http_listen = args.http_listen;
    if let Some(instance) = args.instance.as_deref() {
        options.instance = anpr_common::lease::sanitize_instance(instance);
    }
    options.lease_ttl = Duration::from_millis(args.lease_ttl_ms);
    let running = service::start(options, shutdown)
        .await
        .context("starting anpr-analytic")?;
    tracing::info!(http = %running.http_addr, "anpr-analytic started");
    running
        .wait()
        .await
        .context("anpr-analytic stopped with an error")?;
    Ok(())
}
