use std::net::SocketAddr;

use anpr_analytic::service::{self, Options};
use anpr_common::bus::NatsArgs;
use anpr_common::partition::Partition;
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
    /// This replica's index among --partitions (a StatefulSet ordinal).
    #[arg(long, env = "ANPR_PARTITION", default_value_t = 0)]
    partition: u32,
    /// Number of replicas sharing the cameras.
    #[arg(long, env = "ANPR_PARTITIONS", default_value_t = 1)]
    partitions: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = anpr_common::telemetry::init("anpr-analytic")?;
    let partition = Partition::new(args.partition, args.partitions)?;
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    let mut options = Options::new(args.nats, args.config_url);
    options.http_listen = args.http_listen;
    options.partition = partition;
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
