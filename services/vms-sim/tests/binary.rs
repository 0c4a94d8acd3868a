//! The `anpr-vms-sim` binary: flags, the start line, the certificate file,
//! the password from the environment, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("vms.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_anpr-vms-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "6.0",
            "--login",
            "anpr",
        ])
        .arg("--no-digest")
        .arg("--cert-out")
        .arg(&cert_path)
        .env("ANPR_VMS_SIM_PASSWORD", "s3cret-pass")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    // "anpr-vms-sim listening on 127.0.0.1:PORT profile 6.0 cert-sha256 HEX"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..3], ["anpr-vms-sim", "listening", "on"], "{line}");
    let addr = words[3].to_string();
    assert_eq!(words[4..6], ["profile", "6.0"]);
    assert_eq!(words[6], "cert-sha256");
    assert_eq!(words[7].len(), 64);

    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(&cert_path).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let info = client
        .get(format!("https://{addr}/rest/v3/system/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    let login = client
        .post(format!("https://{addr}/rest/v3/login/sessions"))
        .json(&json!({"username": "anpr", "password": "s3cret-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let token: Value = login.json().await.unwrap();
    assert_eq!(token["username"], "anpr");
    let basic = client
        .get(format!("https://{addr}/rest/v3/devices"))
        .basic_auth("anpr", Some("s3cret-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        basic.headers()["x-auth-result"],
        "Auth_DisabledBasicAndDigest"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("request"), "{logs}");
    assert!(!logs.contains("s3cret-pass"), "password leaked into logs");
}
