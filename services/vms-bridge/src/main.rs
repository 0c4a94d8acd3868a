use std::net::SocketAddr;

use anpr_common::bus::NatsArgs;
use anpr_vms_bridge::{run, BridgeOptions, DeliverySettings};
use anyhow::Context;
use clap::Parser;

/// ANPR VMS bridge: delivers plate events to Nx Witness compatible VMS
/// servers as Generic Events.
#[derive(Debug, Parser)]
#[command(name = "anpr-vms-bridge", version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// gRPC address of the config service.
    #[arg(
        long,
        env = "ANPR_CONFIG_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    config_url: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ANPR_HTTP_LISTEN", default_value = "0.0.0.0:9090")]
    http_listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let _telemetry = anpr_common::telemetry::init("anpr-vms-bridge")?;
    let shutdown = anpr_common::shutdown::on_signal().context("installing signal handlers")?;
    run(
        BridgeOptions {
            nats: args.nats,
            config_url: args.config_url,
            http_listen: args.http_listen,
            delivery: DeliverySettings::default(),
        },
        shutdown,
    )
    .await
    .context("anpr-vms-bridge stopped with an error")
}
