//! Test-only endpoints under `/_fake/` (no authentication): recorded events,
//! fault injection, session invalidation, the certificate and the bookmark page.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bookmarks;
use crate::config::Fault;
use crate::response::{json_response, rest_error, with_body, ErrorId, SimResponse};
use crate::router::{ConnContext, SimRequest};

/// Body of `POST /_fake/fault`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultRequest {
    fault: String,
    status: Option<u16>,
    latency_ms: Option<u64>,
}

/// Parses a fault request; `Err` is a message for a 400 answer.
pub fn parse_fault(body: &[u8]) -> Result<Fault, String> {
    let req: FaultRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid fault request: {e}"))?;
    match req.fault.as_str() {
        "none" => Ok(Fault::None),
        "refuse" => Ok(Fault::Refuse),
        "hang" => Ok(Fault::Hang),
        "reset" => Ok(Fault::ResetMidResponse),
        "status" => {
            let status = req.status.unwrap_or(503);
            if !(100..=999).contains(&status) {
                return Err(format!("status {status} is not an HTTP status code"));
            }
            Ok(Fault::Status(status))
        }
        "latency" => req
            .latency_ms
            .map(|ms| Fault::Latency(Duration::from_millis(ms)))
            .ok_or_else(|| "fault \"latency\" needs latencyMs".to_string()),
        other => Err(format!(
            "unknown fault {other:?} (none, refuse, hang, status, latency, reset)"
        )),
    }
}

/// The JSON form of a fault, as `POST /_fake/fault` takes it.
pub fn fault_json(fault: Fault) -> Value {
    match fault {
        Fault::None => json!({"fault": "none"}),
        Fault::Refuse => json!({"fault": "refuse"}),
        Fault::Hang => json!({"fault": "hang"}),
        Fault::ResetMidResponse => json!({"fault": "reset"}),
        Fault::Status(s) => json!({"fault": "status", "status": s}),
        Fault::Latency(d) => {
            json!({"fault": "latency", "latencyMs": u64::try_from(d.as_millis()).unwrap_or(u64::MAX)})
        }
    }
}

pub fn handle(ctx: &ConnContext, req: &SimRequest) -> SimResponse {
    let shared = &ctx.shared;
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/_fake/events") => match serde_json::to_value(shared.events()) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => rest_error(ErrorId::InternalServerError, &e.to_string()),
        },
        (&Method::DELETE, "/_fake/events") => {
            shared.clear_events();
            json_response(StatusCode::OK, &json!({}))
        }
        (&Method::GET, "/_fake/fault") => {
            json_response(StatusCode::OK, &fault_json(shared.fault()))
        }
        (&Method::POST, "/_fake/fault") => match parse_fault(&req.body) {
            Ok(fault) => {
                shared.set_fault(fault);
                tracing::info!(?fault, "fault set");
                json_response(StatusCode::OK, &fault_json(fault))
            }
            Err(message) => rest_error(ErrorId::BadRequest, &message),
        },
        (&Method::POST, "/_fake/invalidate-tokens") => {
            shared.invalidate_tokens();
            json_response(StatusCode::OK, &json!({}))
        }
        (&Method::GET, "/_fake/cert.pem") => with_body(
            StatusCode::OK,
            "application/x-pem-file",
            ctx.cert_pem.as_bytes().to_vec(),
        ),
        (&Method::GET, "/_fake/bookmarks") => {
            let query = req
                .query
                .iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let page = bookmarks::render(&shared.events(), &shared.cameras(), query);
            with_body(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page.into_bytes(),
            )
        }
        _ => rest_error(ErrorId::NotFound, "Unknown test endpoint"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_requests() {
        assert_eq!(parse_fault(br#"{"fault":"none"}"#), Ok(Fault::None));
        assert_eq!(
            parse_fault(br#"{"fault":"status","status":500}"#),
            Ok(Fault::Status(500))
        );
        assert_eq!(
            parse_fault(br#"{"fault":"status"}"#),
            Ok(Fault::Status(503))
        );
        assert_eq!(
            parse_fault(br#"{"fault":"latency","latencyMs":200}"#),
            Ok(Fault::Latency(Duration::from_millis(200)))
        );
        assert!(parse_fault(br#"{"fault":"latency"}"#).is_err());
        assert!(parse_fault(br#"{"fault":"status","status":42}"#).is_err());
        assert!(parse_fault(br#"{"fault":"explode"}"#).is_err());
        assert!(parse_fault(b"not json").is_err());
        for f in [
            Fault::None,
            Fault::Refuse,
            Fault::Hang,
            Fault::ResetMidResponse,
            Fault::Status(503),
            Fault::Latency(Duration::from_millis(7)),
        ] {
            let text = fault_json(f).to_string();
            assert_eq!(parse_fault(text.as_bytes()), Ok(f));
        }
    }
}
