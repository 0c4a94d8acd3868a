//! `anpr-vms-sim`: runs the VMS simulator until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anpr_vms_sim::{Profile, SimConfig, SimUser, Simulator};
use anyhow::Context as _;
use clap::Parser;

/// Simulated Nx Witness VMS server for tests, benchmarks and demos.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (plain HTTP and TLS on the same port).
    #[arg(long, env = "ANPR_VMS_SIM_LISTEN", default_value = "0.0.0.0:7001")]
    listen: SocketAddr,
    /// Imitated server release: 4.x, 5.0, 5.1, 6.0 or 6.1.
    #[arg(long, env = "ANPR_VMS_SIM_PROFILE", default_value = "6.1")]
    profile: Profile,
    /// Login of the single user.
    #[arg(long, env = "ANPR_VMS_SIM_LOGIN", default_value = "admin")]
    login: String,
    /// Disable Basic and Digest for the user (bearer sessions only).
    #[arg(long, env = "ANPR_VMS_SIM_NO_DIGEST")]
    no_digest: bool,
    /// Redirect plain HTTP to HTTPS (trafficEncryptionForced).
    #[arg(long, env = "ANPR_VMS_SIM_ENCRYPTION_FORCED")]
    encryption_forced: bool,
    /// Write the certificate PEM to this file.
    #[arg(long, env = "ANPR_VMS_SIM_CERT_OUT")]
    cert_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // The password comes from the environment only, never from the command
    // line where `ps` would show it.
    let password = std::env::var("ANPR_VMS_SIM_PASSWORD").unwrap_or_else(|_| "admin".to_string());
    let config = SimConfig {
        profile: args.profile,
        users: vec![SimUser {
            login: args.login,
            password,
            digest_enabled: !args.no_digest,
            generate_events: true,
        }],
        encryption_forced: args.encryption_forced,
        ..SimConfig::default()
    };
    let sim = Simulator::start(args.listen, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    if let Some(path) = &args.cert_out {
        std::fs::write(path, sim.cert_pem())
            .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    }
    println!(
        "anpr-vms-sim listening on {} profile {} cert-sha256 {}",
        sim.addr(),
        args.profile,
        sim.cert_sha256_hex()
    );
    wait_for_signal().await?;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        result = tokio::signal::ctrl_c() => result.context("cannot wait for Ctrl-C")?,
    }
    tracing::info!("signal received, shutting down");
    Ok(())
}
