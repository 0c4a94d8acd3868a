//! Passwords never leave the bridge except towards the VMS: not in logs
//! (every crate at trace level, with the binary's guard on async-nats'
//! payload dumps), not in target status, dead letters or metrics.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use anpr_common::proto::{EventSelection, PlateEventKind, VmsAuth};
use anpr_vms_sim::{Profile, SimUser};
use common::*;

const WRONG_PASSWORD: &str = "Wrong-Secret-0x7e57";

/// Collects every log line of the test binary.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_appear_in_no_log_status_letter_or_metric() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        // As the binary runs with RUST_LOG=trace (see telemetry::log_filter).
        .with_env_filter(anpr_common::telemetry::log_filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let modern = simulator(|_| {}).await;
    let legacy = simulator(|c| c.profile = Profile::V4x).await;
    let refusing = simulator(|c| {
        c.users = vec![SimUser {
            generate_events: false,
            ..SimUser::new("admin", PASSWORD)
        }]
    })
    .await;
    let mut stack = Stack::start().await;
    stack
        .add_camera("gate", "Gate 1", "192.168.1.21", |_| {})
        .await;
    stack
        .add_target("nx-bearer", &modern, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-basic", &modern, EventSelection::Lost, |t| {
            t.auth = VmsAuth::Basic as i32
        })
        .await;
    stack
        .add_target("nx-digest", &legacy, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-refused", &refusing, EventSelection::Detect, |_| {})
        .await;
    stack
        .add_target("nx-wrong", &legacy, EventSelection::Lost, |t| {
            t.password = WRONG_PASSWORD.into();
            t.auth = VmsAuth::Basic as i32;
        })
        .await;
    stack
        .publish("gate", PlateEventKind::Detect, "SEC1", 1)
        .await;
    stack.publish("gate", PlateEventKind::Lost, "SEC1", 1).await;

    wait_for_events(&modern, 2).await;
    wait_for_events(&legacy, 1).await;
    wait_for("a dead letter", || async {
        !stack.dead_letters().await.is_empty()
    })
    .await;
    let wrong = stack
        .wait_for_status("nx-wrong", "the refused password", |s| {
            !s.last_error.is_empty()
        })
        .await;
    assert!(
        wrong.last_error.contains("wrong password") || wrong.last_error.contains("refused"),
        "{wrong:?}"
    );

    let mut seen = capture.text();
    for target in [
        "nx-bearer",
        "nx-basic",
        "nx-digest",
        "nx-refused",
        "nx-wrong",
    ] {
        let status = stack.status(target).await.expect("status written");
        seen.push_str(&format!("{status:?}"));
    }
    seen.push_str(&format!("{:?}", stack.dead_letters().await));
    for metric in ["anpr_vms_logins_total", "anpr_vms_events_delivered_total"] {
        seen.push_str(&format!("{:?}", stack.metric(metric).await));
    }
    assert!(seen.contains("logged in to the VMS"), "the capture works");
    for secret in [PASSWORD, WRONG_PASSWORD] {
        let leaks: Vec<&str> = seen.lines().filter(|line| line.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} leaked: {leaks:#?}");
        let basic = basic_credentials(&format!("admin:{secret}"));
        assert!(
            !seen.contains(&basic),
            "Basic credentials of {secret} leaked"
        );
    }
}

/// Standard base64, to look for Basic credentials in the capture.
fn basic_credentials(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
