//! One port for HTTP and HTTPS, the certificate, forced encryption, every
//! fault, stop/resume on the same port, and the bookmark page.

mod common;

use std::time::Duration;

use anpr_vms_sim::{Fault, SimConfig, GATE1_ID};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_http_on_one_port_with_pinnable_cert() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    for url in [
        http(&sim, "/api/moduleInformation"),
        https(&sim, "/api/moduleInformation"),
    ] {
        let resp = c.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
    }
    let resp = c
        .get(format!(
            "https://localhost:{}/api/moduleInformation",
            sim.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // The PEM served over HTTP is the instance's certificate, and the
    // fingerprint is the SHA-256 of its DER.
    let pem = c
        .get(https(&sim, "/_fake/cert.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pem, sim.cert_pem());
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    assert_eq!(hex::encode(Sha256::digest(&der)), sim.cert_sha256_hex());
    assert_eq!(sim.cert_sha256_hex().len(), 64);

    // A client that does not trust the certificate fails the handshake.
    let other = start(SimConfig::default()).await;
    let untrusted = client(&other)
        .get(https(&sim, "/api/moduleInformation"))
        .send()
        .await;
    assert!(untrusted.is_err());
    assert_ne!(other.cert_sha256_hex(), sim.cert_sha256_hex());
    other.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_forced_redirects_plain_http() {
    let sim = start(SimConfig {
        encryption_forced: true,
        ..SimConfig::default()
    })
    .await;
    let c = client(&sim);
    let get = c
        .get(http(&sim, "/api/moduleInformation?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        get.headers()["location"],
        format!("https://127.0.0.1:{}/api/moduleInformation?x=1", sim.port()).as_str()
    );
    let post = c
        .post(http(&sim, "/api/createEvent"))
        .json(&json!({"caption": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        post.headers()["location"],
        format!("https://127.0.0.1:{}/api/createEvent", sim.port()).as_str()
    );
    let secure = c
        .post(https(&sim, "/api/createEvent"))
        .basic_auth("admin", Some("admin"))
        .json(&json!({"caption": "P"}))
        .send()
        .await
        .unwrap();
    assert_eq!(secure.status(), StatusCode::OK);
    assert_eq!(sim.events().len(), 1);
    sim.shutdown().await;
}

async fn module_info(sim: &anpr_vms_sim::Simulator) -> Result<reqwest::Response, reqwest::Error> {
    client(sim)
        .get(https(sim, "/api/moduleInformation"))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_refuse_hang_status_latency_reset() {
    let sim = start(SimConfig::default()).await;

    sim.set_fault(Fault::Refuse);
    let refused = module_info(&sim).await;
    assert!(refused.is_err(), "refuse fault answered");
    // Test endpoints still work while a fault is active.
    assert!(fake_events(&sim).await.is_empty());

    sim.set_fault(Fault::Hang);
    let hung = client(&sim)
        .get(https(&sim, "/api/moduleInformation"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(hung.err().is_some_and(|e| e.is_timeout()));

    sim.set_fault(Fault::Status(503));
    let resp = module_info(&sim).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "11");
    assert_eq!(body["errorId"], "serviceUnavailable");
    sim.set_fault(Fault::Status(500));
    assert_eq!(
        module_info(&sim).await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    sim.set_fault(Fault::Latency(Duration::from_millis(100)));
    let slow = module_info(&sim).await.unwrap();
    assert_eq!(slow.status(), StatusCode::OK);

    sim.set_fault(Fault::ResetMidResponse);
    // Headers arrive, the body is cut short.
    let resp = module_info(&sim).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.bytes().await.is_err(),
        "reset fault delivered a whole body"
    );

    sim.set_fault(Fault::None);
    assert_eq!(module_info(&sim).await.unwrap().status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_over_http_endpoint() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let set = |body: Value| {
        let c = c.clone();
        let url = https(&sim, "/_fake/fault");
        async move { c.post(url).json(&body).send().await.unwrap() }
    };
    let resp = set(json!({"fault": "status", "status": 500})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        module_info(&sim).await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let resp = set(json!({"fault": "refuse"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(module_info(&sim).await.is_err());
    let resp = set(json!({"fault": "latency", "latencyMs": 50})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let current: Value = c
        .get(https(&sim, "/_fake/fault"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current, json!({"fault": "latency", "latencyMs": 50}));
    let bad = set(json!({"fault": "explode"})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let resp = set(json!({"fault": "none"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(module_info(&sim).await.unwrap().status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_refuses_connections_and_resume_reuses_the_port() {
    let sim = start(SimConfig::default()).await;
    let port = sim.port();
    let token = login(&sim, 4, "admin", "admin").await;
    let resp = client(&sim)
        .post(https(&sim, "/api/createEvent"))
        .basic_auth("admin", Some("admin"))
        .json(&json!({"caption": "BEFORE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    sim.stop().await;
    let err = module_info(&sim).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    sim.resume().await.unwrap();
    assert_eq!(sim.port(), port);
    assert_eq!(module_info(&sim).await.unwrap().status(), StatusCode::OK);
    // Events survive, sessions do not.
    assert_eq!(sim.events().len(), 1);
    let stale = client(&sim)
        .get(https(&sim, "/rest/v4/devices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stale.headers()["x-auth-result"], "Auth_WrongSessionToken");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_page_shows_and_filters_plates() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    for plate in ["AB123CD", "ZZ999<X>"] {
        let resp = c
            .post(https(&sim, "/api/createEvent"))
            .basic_auth("admin", Some("admin"))
            .json(&json!({"caption": plate, "source": "ANPR", "metadata": {"cameraRefs": [GATE1_ID]}, "timestamp": "1718553761123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let page = |q: &str| {
        let c = c.clone();
        let url = https(&sim, &format!("/_fake/bookmarks?q={}", enc(q)));
        async move {
            let resp = c.get(url).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.text().await.unwrap()
        }
    };
    let all = page("").await;
    for column in [
        "Name",
        "Camera",
        "Start time",
        "Length",
        "Created",
        "Creator",
        "Tags",
    ] {
        assert!(all.contains(&format!("<th>{column}</th>")), "{column}");
    }
    assert!(all.contains("AB123CD"));
    assert!(all.contains("ZZ999&lt;X&gt;"));
    assert!(!all.contains("ZZ999<X>"));
    assert!(all.contains("Gate 1"));
    assert!(all.contains("2024-06-16 16:02:41"));
    assert!(
        all.contains("<td>10s</td>")
            && all.contains("System Event")
            && all.contains("<td>anpr</td>")
    );
    let filtered = page("ab123").await;
    assert!(filtered.contains("AB123CD"));
    assert!(!filtered.contains("ZZ999"));
    sim.shutdown().await;
}
