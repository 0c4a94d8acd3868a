//! The `anpr-vms-bridge` binary as deployed: flags and environment, health
//! endpoint, delivery, and a clean stop on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use anpr_common::proto::{EventSelection, PlateEventKind};
use anpr_testkit::{free_port, ServiceProcess};
use anpr_vms_sim::GATE1_ID;
use common::*;

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_delivers_and_stops_cleanly_on_sigterm() {
    let sim = simulator(|_| {}).await;
    let mut stack = Stack::start().await;
    stack.without_inprocess_bridge().await;
    stack
        .add_camera("gate", "Gate 1", "192.168.1.21", |_| {})
        .await;

    let http_port = free_port();
    let http = format!("127.0.0.1:{http_port}");
    let nats_url = stack.nats.url();
    let mut bridge = ServiceProcess::start(
        env!("CARGO_BIN_EXE_anpr-vms-bridge"),
        &["--http-listen", &http],
        &[
            ("NATS_URL", nats_url.as_str()),
            ("ANPR_CONFIG_URL", stack.config_url()),
            ("RUST_LOG", "info"),
            ("LOG_FORMAT", "text"),
        ],
    );
    tokio::task::block_in_place(|| bridge.wait_for_output("health endpoint listening", PATIENCE));
    wait_for("/readyz to answer 200", || async {
        tokio::task::spawn_blocking(move || http_status(http_port, "/readyz"))
            .await
            .ok()
            .flatten()
            == Some(200)
    })
    .await;

    stack
        .add_target("nx-bin", &sim, EventSelection::Detect, |_| {})
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "BIN1", 1)
        .await;
    let events = wait_for_events(&sim, 1).await;
    assert_eq!(events[0].caption, "BIN1");
    assert_eq!(events[0].resolved_camera_ids, [GATE1_ID]);
    assert_eq!(http_status(http_port, "/healthz"), Some(200));

    let stopped = tokio::task::block_in_place(|| bridge.terminate());
    assert!(
        stopped,
        "the bridge did not stop cleanly on SIGTERM:\n{}",
        bridge.output()
    );
    assert!(
        !bridge.output().contains(PASSWORD),
        "password in the output"
    );
}
