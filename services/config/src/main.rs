use std::net::SocketAddr;

use anpr_common::bus::NatsArgs;
use anpr_config::server::{self, ServerOptions};
use anyhow::Context;
use clap::Parser;

/// ANPR configuration service: VMS targets, cameras and analytic settings
/// over gRPC, stored in NATS JetStream key-value buckets.
#[derive(Debug, Parser)]
#[command(name = "anpr-config", version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Address of the gRPC API (anpr.v1.Config and grpc.health.v1).
    #[arg(long, env = "ANPR_GRPC_LISTEN", default_value = "0.0.0.0:50051")]
    grpc_listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ANPR_HTTP_LISTEN", default_value = "0.0.0.0:9090")]
    http_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = anpr_common::telemetry::init("anpr-config")?;
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    let running = server::start(
        ServerOptions {
            grpc_listen: args.grpc_listen,
            http_listen: args.http_listen,
            nats: args.nats,
        },
        shutdown,
    )
    .await
    .context("starting anpr-config")?;
    tracing::info!(grpc = %running.grpc_addr, http = %running.http_addr, "anpr-config listening");
    running
        .wait()
        .await
        .context("anpr-config stopped with an error")?;
    tracing::info!("anpr-config stopped");
    Ok(())
}
