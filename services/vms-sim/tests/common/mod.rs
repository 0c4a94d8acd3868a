//! Helpers shared by the integration tests: start a simulator on a free
//! port, build HTTP clients (plain or pinned to the simulator's certificate),
//! log in, and answer a Digest challenge.

#![allow(dead_code)]

use std::net::SocketAddr;

use anpr_vms_sim::digest::{self, QopAuth};
use anpr_vms_sim::{SimConfig, Simulator};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(loopback(), config)
        .await
        .expect("simulator starts")
}

fn install_provider() {
    // Another test in the same process may have installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that never follows redirects and trusts only `sim`'s certificate.
pub fn client(sim: &Simulator) -> Client {
    install_provider();
    let cert = reqwest::Certificate::from_pem(sim.cert_pem().as_bytes()).expect("valid PEM");
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([cert])
        .build()
        .expect("client builds")
}

pub fn http(sim: &Simulator, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", sim.port())
}

pub fn https(sim: &Simulator, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", sim.port())
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Logs in over HTTPS on `/rest/v{version}/login/sessions`; returns the token.
pub async fn login(sim: &Simulator, version: u8, user: &str, password: &str) -> String {
    let resp = client(sim)
        .post(https(sim, &format!("/rest/v{version}/login/sessions")))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("login JSON");
    body["token"].as_str().expect("token").to_string()
}

/// Parses the nonce out of a `WWW-Authenticate: Digest …` header.
pub fn challenge_nonce(headers: &HeaderMap) -> String {
    let value = headers
        .get(WWW_AUTHENTICATE)
        .expect("challenge header")
        .to_str()
        .expect("ASCII challenge");
    let rest = value.strip_prefix("Digest ").expect("Digest challenge");
    digest::parse_params(rest)["nonce"].clone()
}

/// Fetches a nonce with an unauthenticated request and builds the Digest
/// `Authorization` header for `method uri` (with `qop=auth` when `with_qop`).
pub async fn digest_header(
    sim: &Simulator,
    method: &Method,
    uri: &str,
    user: &str,
    password: &str,
    with_qop: bool,
) -> HeaderValue {
    let probe = client(sim)
        .request(method.clone(), https(sim, uri))
        .send()
        .await
        .expect("probe request");
    assert_eq!(probe.status(), StatusCode::UNAUTHORIZED);
    let nonce = challenge_nonce(probe.headers());
    let ha1 = digest::ha1(user, digest::REALM, password);
    let value = if with_qop {
        let qop = QopAuth {
            nc: "00000001",
            cnonce: "0a4f113b",
        };
        let response = digest::response(&ha1, &nonce, method.as_str(), uri, Some(&qop));
        format!(
            "Digest username=\"{user}\", realm=\"VMS\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, response=\"{response}\", qop=auth, nc=00000001, cnonce=\"0a4f113b\""
        )
    } else {
        let response = digest::response(&ha1, &nonce, method.as_str(), uri, None);
        format!(
            "Digest username=\"{user}\", realm=\"VMS\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\""
        )
    };
    let mut header = HeaderValue::from_str(&value).expect("header value");
    header.set_sensitive(true);
    header
}

pub fn bearer(token: &str) -> (reqwest::header::HeaderName, String) {
    (AUTHORIZATION, format!("Bearer {token}"))
}

/// `GET /_fake/events` over HTTP.
pub async fn fake_events(sim: &Simulator) -> Vec<Value> {
    let resp = client(sim)
        .get(https(sim, "/_fake/events"))
        .send()
        .await
        .expect("events request");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("events JSON")
}
