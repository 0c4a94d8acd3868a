//! The `anpr-analytic` binary: flags, readiness and a clean exit on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use anpr_common::bus::NatsArgs;
use anpr_config::server::{self, ServerOptions};
use anpr_testkit::{free_port, NatsServer, ServiceProcess};
use tokio_util::sync::CancellationToken;

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_lease_ttl_out_of_range_is_refused_naming_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_anpr-analytic"))
        .args(["--lease-ttl-ms", "10"])
        .env("LOG_FORMAT", "text")
        .output()
        .expect("running anpr-analytic");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--lease-ttl-ms") && stderr.contains("1000..=600000"),
        "{stderr}"
    );
}

#[test]
fn the_binary_becomes_ready_and_stops_cleanly_on_sigterm() {
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let shutdown = CancellationToken::new();
    let loopback = "127.0.0.1:0".parse().expect("socket address");
    let config = runtime
        .block_on(server::start(
            ServerOptions {
                grpc_listen: loopback,
                http_listen: loopback,
                nats: NatsArgs::plain(nats.url()),
            },
            shutdown.clone(),
        ))
        .expect("config service starts");
    let config_url = format!("http://{}", config.grpc_addr);
    let http_port = free_port();
    let http = format!("127.0.0.1:{http_port}");
    let mut analytic = ServiceProcess::start(
        env!("CARGO_BIN_EXE_anpr-analytic"),
        &[],
        &[
            ("NATS_URL", nats.url().as_str()),
            ("ANPR_CONFIG_URL", config_url.as_str()),
            ("ANPR_HTTP_LISTEN", http.as_str()),
            ("ANPR_PARTITION", "1"),
            ("ANPR_PARTITIONS", "3"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_status(http_port, "/readyz") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "never ready; output:\n{}",
            analytic.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http_status(http_port, "/healthz"), Some(200));
    assert!(
        analytic.terminate(),
        "no clean exit on SIGTERM:\n{}",
        analytic.output()
    );
    assert!(analytic.output().contains("analytic stopped"));
    shutdown.cancel();
}
