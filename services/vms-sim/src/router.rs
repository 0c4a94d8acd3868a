//! One HTTP request in, one response out: faults, the plain-HTTP redirect,
//! and the VMS endpoints of the selected profile (VMS notes §9.2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::auth::{self, AuthFailure, AuthRequest, AuthResult, Principal};
use crate::cameras::{ec2_camera_json, find_camera, matches_filters, project, rest_device_json};
use crate::config::{Fault, Profile, V4Body};
use crate::digest::REALM;
use crate::events::{parse_legacy, parse_v4, LegacyEvent, Param, V4Error};
use crate::fake;
use crate::fixture::SERVER_ID;
use crate::response::{
    empty, json_response, rest_error, result_body, truncate, with_body, ErrorId, SimResponse,
};
use crate::state::Shared;
use crate::timestamp::now_ms;

/// Largest request body the simulator reads.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Site id reported by the info endpoints.
const LOCAL_SITE_ID: &str = "0f4f1c9e-7d1a-4e55-9b7e-3a6c2d8e9f01";
const SYSTEM_NAME: &str = "ANPR Simulator";

/// What a connection knows about itself.
pub struct ConnContext {
    pub shared: Arc<Shared>,
    pub is_tls: bool,
    pub local_addr: SocketAddr,
    pub cancel: CancellationToken,
    pub cert_pem: Arc<String>,
}

/// The service error that makes hyper drop the connection without answering
/// (the refuse / hang faults).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub struct Dropped;

/// A request with its body read.
pub struct SimRequest {
    pub method: Method,
    pub path: String,
    pub path_and_query: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub is_tls: bool,
}

impl SimRequest {
    fn auth_request(&self) -> AuthRequest<'_> {
        AuthRequest {
            method: &self.method,
            headers: &self.headers,
            query: &self.query,
            is_tls: self.is_tls,
        }
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one request.
pub async fn handle(ctx: Arc<ConnContext>, req: Request<Incoming>) -> Result<SimResponse, Dropped> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            tracing::info!(%method, %path, "request body unreadable or too large");
            return Ok(rest_error(
                ErrorId::BadRequest,
                "Request body unreadable or larger than 4 MiB",
            ));
        }
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = SimRequest {
        method: method.clone(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.clone()),
        path: path.clone(),
        query,
        headers: parts.headers,
        body,
        is_tls: ctx.is_tls,
    };

    // Test-only endpoints bypass faults and redirects so a test can always
    // inspect the simulator and lift a fault over HTTP.
    if path.starts_with("/_fake/") {
        let resp = fake::handle(&ctx, &request);
        log(&request, &resp, ctx.is_tls);
        return Ok(resp);
    }

    let mut cut_short = false;
    match ctx.shared.fault() {
        Fault::None => {}
        Fault::Refuse => {
            tracing::info!(%method, %path, "fault: dropping the connection");
            return Err(Dropped);
        }
        Fault::Hang => {
            tracing::info!(%method, %path, "fault: hanging");
            ctx.cancel.cancelled().await;
            return Err(Dropped);
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let id = ErrorId::for_status(status);
            let resp = json_response(status, &result_body(id, "Simulated server failure", true));
            log(&request, &resp, ctx.is_tls);
            return Ok(resp);
        }
        Fault::Latency(delay) => {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ctx.cancel.cancelled() => return Err(Dropped),
            }
        }
        Fault::ResetMidResponse => cut_short = true,
    }

    let config = ctx.shared.config();
    let resp = if config.encryption_forced && !ctx.is_tls {
        redirect_to_https(&request, ctx.local_addr)
    } else {
        route(&ctx, &request, config.profile)
    };
    log(&request, &resp, ctx.is_tls);
    Ok(if cut_short { truncate(resp) } else { resp })
}

/// One line per request. Only the path: the query may carry `auth=` or
/// `_sessionToken=` secrets, and headers are never logged.
fn log(request: &SimRequest, resp: &SimResponse, is_tls: bool) {
    tracing::info!(
        method = %request.method,
        path = %request.path,
        tls = is_tls,
        status = resp.status().as_u16(),
        "request"
    );
}

/// `trafficEncryptionForced`: 301 for GET/HEAD, 307 otherwise, same host:port.
fn redirect_to_https(request: &SimRequest, local_addr: SocketAddr) -> SimResponse {
    let host = request
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| local_addr.to_string());
    let location = format!("https://{host}{}", request.path_and_query);
    let status = if request.method == Method::GET || request.method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let body = format!(
        "<html><body><h1>{}</h1><p>Moved to <a href=\"{location}\">{location}</a></p></body></html>",
        status.as_u16()
    );
    let mut resp = with_body(status, "text/html", body.into_bytes());
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(LOCATION, v);
            resp
        }
        // A Host header that cannot be echoed back is the client's mistake.
        Err(_) => rest_error(ErrorId::BadRequest, "Invalid Host header"),
    }
}

fn not_found() -> SimResponse {
    rest_error(ErrorId::NotFound, "Requested API endpoint does not exist")
}

fn not_allowed() -> SimResponse {
    rest_error(
        ErrorId::NotAllowed,
        "Method is not allowed for this endpoint",
    )
}

fn route(ctx: &ConnContext, req: &SimRequest, profile: Profile) -> SimResponse {
    let path = req.path.trim_end_matches('/');
    match path {
        "/api/moduleInformation" => return module_information(ctx, profile),
        "/api/getNonce" => return get_nonce(ctx, profile),
        "/api/createEvent" => return with_auth(ctx, req, |p| legacy_event(ctx, req, p)),
        "/ec2/getCamerasEx" => return with_auth(ctx, req, |_| cameras_ex(ctx, req)),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/rest/v") else {
        return not_found();
    };
    let (version, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(version) = version.parse::<u8>() else {
        return not_found();
    };
    if !profile.has_rest_version(version) {
        return not_found();
    }
    let segments: Vec<&str> = tail.split('/').collect();
    match segments.as_slice() {
        ["system", "info"] if version == 3 => site_info(ctx, profile),
        ["site", "info"] if version >= 4 => site_info(ctx, profile),
        ["login", "sessions"] => match req.method {
            Method::POST => login(ctx, req),
            _ => not_allowed(),
        },
        ["login", "sessions", token] => session(ctx, req, profile, token),
        ["devices"] => with_auth(ctx, req, |_| devices(ctx, req)),
        ["devices", id] => with_auth(ctx, req, |_| device(ctx, id)),
        ["events", "generic"] if version >= 4 => match req.method {
            Method::POST => with_auth(ctx, req, |p| v4_event(ctx, req, p)),
            _ => not_allowed(),
        },
        _ => not_found(),
    }
}

/// Runs `then` for an authenticated caller, else answers like the server.
fn with_auth(
    ctx: &ConnContext,
    req: &SimRequest,
    then: impl FnOnce(&Principal) -> SimResponse,
) -> SimResponse {
    match auth::authenticate(&ctx.shared, &req.auth_request()) {
        Ok(principal) => then(&principal),
        Err(failure) => auth_failure(ctx, failure),
    }
}

/// 401 with the Digest challenge and `X-Auth-Result` (or 403 for a refused
/// transport). The body is JSON, but clients must not rely on that.
fn auth_failure(ctx: &ConnContext, failure: AuthFailure) -> SimResponse {
    let message = format!(
        "{}: {}",
        failure.result.header_value(),
        failure.result.message()
    );
    let id = if failure.status == StatusCode::FORBIDDEN {
        ErrorId::Forbidden
    } else {
        ErrorId::Unauthorized
    };
    let mut resp = json_response(failure.status, &result_body(id, &message, true));
    let headers = resp.headers_mut();
    headers.insert(
        "x-auth-result",
        HeaderValue::from_static(failure.result.header_value()),
    );
    if failure.status == StatusCode::UNAUTHORIZED && failure.result != AuthResult::InsecureTransport
    {
        let nonce = ctx.shared.nonces.issue(auth::now_us());
        let challenge = format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(WWW_AUTHENTICATE, v);
        }
    }
    resp
}

fn module_information(ctx: &ConnContext, profile: Profile) -> SimResponse {
    let reply = json!({
        "version": profile.server_version(),
        "name": "Server 1",
        "systemName": SYSTEM_NAME,
        "sslAllowed": true,
        "realm": REALM,
        "protoVersion": profile.proto_version(),
        "runtimeId": ctx.shared.runtime_id(),
        "id": SERVER_ID,
        "type": "Media Server",
        "customization": "default",
        "localSystemId": LOCAL_SITE_ID,
    });
    json_response(
        StatusCode::OK,
        &json!({"error": "0", "errorString": "", "reply": reply}),
    )
}

fn get_nonce(ctx: &ConnContext, profile: Profile) -> SimResponse {
    let nonce = ctx.shared.nonces.issue(auth::now_us());
    let mut body =
        json!({"error": "0", "errorString": "", "reply": {"realm": REALM, "nonce": nonce}});
    if profile != Profile::V4x {
        body["errorId"] = json!("ok");
    }
    json_response(StatusCode::OK, &body)
}

/// `/rest/v3/system/info` (6.0 wording) and `/rest/v4/site/info` (6.1): the
/// same fields; a 6.1 server still answers the v3 path since it serves APIv3.
fn site_info(ctx: &ConnContext, profile: Profile) -> SimResponse {
    let max = profile.max_rest_version().unwrap_or(1);
    json_response(
        StatusCode::OK,
        &json!({
            "name": SYSTEM_NAME,
            "customization": "default",
            "version": profile.server_version(),
            "protoVersion": profile.proto_version(),
            "restApiVersions": {"min": "v1", "max": format!("v{max}")},
            "cloudHost": "nxvms.com",
            "localId": LOCAL_SITE_ID,
            "synchronizedTimeMs": now_ms(),
            "runtimeId": ctx.shared.runtime_id(),
        }),
    )
}

fn login(ctx: &ConnContext, req: &SimRequest) -> SimResponse {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
        return rest_error(ErrorId::BadRequest, "Request body must be a JSON object");
    };
    let Some(username) = body.get("username").and_then(Value::as_str) else {
        return rest_error(
            ErrorId::MissingParameter,
            "Missing required parameter 'username'",
        );
    };
    let Some(password) = body.get("password").and_then(Value::as_str) else {
        return rest_error(
            ErrorId::MissingParameter,
            "Missing required parameter 'password'",
        );
    };
    if ctx.shared.locked_out(username) {
        return rest_error(ErrorId::Forbidden, "Too many attempts, try again later");
    }
    let Some(user) = ctx.shared.user(username) else {
        return rest_error(
            ErrorId::NotFound,
            "This user does not exist or is unable to login.",
        );
    };
    if user.password != password {
        ctx.shared.note_login(username, false);
        return rest_error(ErrorId::InvalidParameter, "Wrong password");
    }
    ctx.shared.note_login(username, true);
    let limit = ctx.shared.config().token_lifetime;
    let lifetime = match body.get("durationS").and_then(Value::as_u64) {
        Some(s) if s > 0 => limit.min(Duration::from_secs(s)),
        _ => limit,
    };
    let token = ctx.shared.create_session(&user.login, lifetime);
    json_response(
        StatusCode::OK,
        &json!({
            "id": token,
            "username": user.login,
            "token": token,
            "ageS": 0,
            "expiresInS": lifetime.as_secs(),
        }),
    )
}

fn session(ctx: &ConnContext, req: &SimRequest, profile: Profile, token: &str) -> SimResponse {
    let token = if token == "-" || token == "current" {
        match auth::request_token(&req.auth_request(), profile) {
            Some((t, _)) => t,
            None => String::new(),
        }
    } else {
        token.to_string()
    };
    let wrong_token = || {
        auth_failure(
            ctx,
            AuthFailure {
                status: StatusCode::UNAUTHORIZED,
                result: AuthResult::WrongSessionToken,
            },
        )
    };
    match req.method {
        Method::GET => match ctx.shared.session(&token) {
            Some(s) => {
                let now = std::time::Instant::now();
                json_response(
                    StatusCode::OK,
                    &json!({
                        "id": token,
                        "username": s.login,
                        "token": token,
                        "ageS": s.age(now).as_secs(),
                        "expiresInS": s.remaining(now).as_secs(),
                    }),
                )
            }
            None => wrong_token(),
        },
        Method::DELETE => {
            if ctx.shared.end_session(&token) {
                empty(StatusCode::NO_CONTENT)
            } else {
                wrong_token()
            }
        }
        _ => not_allowed(),
    }
}

fn cameras_ex(ctx: &ConnContext, req: &SimRequest) -> SimResponse {
    let cameras = ctx.shared.cameras();
    let list: Vec<Value> = match req.query("id") {
        Some(id) => find_camera(&cameras, id)
            .map(|c| vec![ec2_camera_json(&cameras, c)])
            .unwrap_or_default(),
        None => cameras
            .iter()
            .map(|c| ec2_camera_json(&cameras, c))
            .collect(),
    };
    json_response(StatusCode::OK, &Value::Array(list))
}

fn devices(ctx: &ConnContext, req: &SimRequest) -> SimResponse {
    let cameras = ctx.shared.cameras();
    let list: Vec<Value> = cameras
        .iter()
        .map(|c| rest_device_json(&cameras, c))
        .filter(|d| matches_filters(d, &req.query))
        .map(|d| project(d, req.query("_with")))
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

fn device(ctx: &ConnContext, flexible_id: &str) -> SimResponse {
    let cameras = ctx.shared.cameras();
    let decoded = url::form_urlencoded::parse(format!("x={flexible_id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| flexible_id.to_string());
    match find_camera(&cameras, &decoded) {
        Some(c) => json_response(StatusCode::OK, &rest_device_json(&cameras, c)),
        None => rest_error(
            ErrorId::NotFound,
            &format!("Device '{decoded}' is not found"),
        ),
    }
}

/// Legacy result response: 4.x bodies carry no `errorId`.
fn legacy_result(profile: Profile, status: StatusCode, id: ErrorId, message: &str) -> SimResponse {
    json_response(status, &result_body(id, message, profile != Profile::V4x))
}

fn legacy_event(ctx: &ConnContext, req: &SimRequest, principal: &Principal) -> SimResponse {
    let config = ctx.shared.config();
    let profile = config.profile;
    if req.method != Method::GET && req.method != Method::POST {
        return not_allowed();
    }
    if !principal.generate_events {
        return legacy_result(
            profile,
            StatusCode::FORBIDDEN,
            ErrorId::Forbidden,
            "Forbidden: the user has no permission to generate events",
        );
    }
    if req.method == Method::GET && !config.legacy_get_allowed {
        return legacy_result(
            profile,
            StatusCode::FORBIDDEN,
            ErrorId::Forbidden,
            "GET method is not allowed for modification requests; use POST",
        );
    }
    let mut params: Vec<(String, Param)> = req
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Param::Text(v.clone())))
        .collect();
    let is_form = req
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if req.method == Method::POST && is_form {
        params.extend(
            url::form_urlencoded::parse(&req.body)
                .into_owned()
                .map(|(k, v)| (k, Param::Text(v))),
        );
    } else if req.method == Method::POST && !req.body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(map)) => {
                params.extend(map.into_iter().map(|(k, v)| (k, Param::Json(v))))
            }
            _ => {
                return legacy_result(
                    profile,
                    StatusCode::BAD_REQUEST,
                    ErrorId::BadRequest,
                    "Request body must be a JSON object",
                )
            }
        }
    }
    let received = now_ms();
    match parse_legacy(&params, received) {
        Ok(LegacyEvent::Generic(fields)) => {
            let record = fields.into_record(
                "legacy",
                req.method.as_str(),
                &ctx.shared.cameras(),
                received,
                principal.method.as_str(),
                &principal.login,
            );
            tracing::info!(caption = %record.caption, refs = record.camera_refs.len(), "legacy generic event");
            ctx.shared.record(record);
            legacy_result(profile, StatusCode::OK, ErrorId::Ok, "")
        }
        Ok(LegacyEvent::Other(kind)) => {
            tracing::info!(%kind, "non-generic event accepted, not recorded");
            legacy_result(profile, StatusCode::OK, ErrorId::Ok, "")
        }
        Err(message) => legacy_result(profile, StatusCode::OK, ErrorId::InvalidParameter, &message),
    }
}

fn v4_event(ctx: &ConnContext, req: &SimRequest, principal: &Principal) -> SimResponse {
    if !principal.generate_events {
        return rest_error(
            ErrorId::Forbidden,
            "Forbidden: the user has no permission to generate events",
        );
    }
    let received = now_ms();
    match parse_v4(&req.body, received) {
        Ok(fields) => {
            let record = fields.into_record(
                "v4",
                req.method.as_str(),
                &ctx.shared.cameras(),
                received,
                principal.method.as_str(),
                &principal.login,
            );
            tracing::info!(caption = %record.caption, refs = record.camera_refs.len(), "v4 generic event");
            ctx.shared.record(record);
            match ctx.shared.config().v4_success_body {
                V4Body::Empty => empty(StatusCode::OK),
                V4Body::EmptyObject => {
                    with_body(StatusCode::OK, "application/json", b"{}".to_vec())
                }
            }
        }
        Err(V4Error::Malformed(message)) => rest_error(ErrorId::BadRequest, &message),
        Err(V4Error::InvalidParameter(message)) => rest_error(ErrorId::InvalidParameter, &message),
    }
}
