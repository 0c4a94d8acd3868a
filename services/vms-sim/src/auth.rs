//! Who is calling: the server's authentication methods (VMS notes §2, §9.3)
//! turned into either a [`Principal`] or an [`AuthFailure`] that says which
//! status and `X-Auth-Result` the real server would answer with.

use base64::Engine as _;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::{Method, StatusCode};

use crate::config::{BearerOverHttp, Profile, SimConfig, SimUser};
use crate::digest::{self, QopAuth, REALM};
use crate::state::Shared;

/// How the caller authenticated; recorded with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Bearer,
    XRuntimeGuid,
    UrlQuerySessionToken,
    /// Basic with user `-` and the token as password (6.1+).
    BasicToken,
    Basic,
    Digest,
    UrlQueryKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Bearer => "bearer",
            AuthMethod::XRuntimeGuid => "xRuntimeGuid",
            AuthMethod::UrlQuerySessionToken => "urlQuerySessionToken",
            AuthMethod::BasicToken => "basicToken",
            AuthMethod::Basic => "basic",
            AuthMethod::Digest => "digest",
            AuthMethod::UrlQueryKey => "urlQueryKey",
        }
    }

    fn uses_session_token(self) -> bool {
        matches!(
            self,
            AuthMethod::Bearer
                | AuthMethod::XRuntimeGuid
                | AuthMethod::UrlQuerySessionToken
                | AuthMethod::BasicToken
        )
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub login: String,
    pub method: AuthMethod,
    pub generate_events: bool,
}

/// The `AuthResult` names the server puts in `X-Auth-Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    WrongDigest,
    WrongLogin,
    WrongPassword,
    DisabledBasicAndDigest,
    WrongSessionToken,
    /// Session token over plain HTTP while the server refuses that.
    InsecureTransport,
}

impl AuthResult {
    pub fn header_value(self) -> &'static str {
        match self {
            AuthResult::WrongDigest => "Auth_WrongDigest",
            AuthResult::WrongLogin => "Auth_WrongLogin",
            AuthResult::WrongPassword => "Auth_WrongPassword",
            AuthResult::DisabledBasicAndDigest => "Auth_DisabledBasicAndDigest",
            AuthResult::WrongSessionToken => "Auth_WrongSessionToken",
            AuthResult::InsecureTransport => "Auth_Forbidden",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthResult::WrongDigest => "Invalid or empty digest",
            AuthResult::WrongLogin => "Wrong login",
            AuthResult::WrongPassword => "Wrong password",
            AuthResult::DisabledBasicAndDigest => {
                "This authorization method is forbidden for this user; use a session token"
            }
            AuthResult::WrongSessionToken => "Session token is invalid or expired",
            AuthResult::InsecureTransport => "Bearer tokens cannot be sent over plain HTTP",
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailure {
    pub status: StatusCode,
    pub result: AuthResult,
}

impl AuthFailure {
    fn unauthorized(result: AuthResult) -> Self {
        AuthFailure {
            status: StatusCode::UNAUTHORIZED,
            result,
        }
    }
}

/// The parts of a request authentication looks at.
pub struct AuthRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
    pub is_tls: bool,
}

/// A session token the request carries, with the method that carried it.
pub fn request_token(req: &AuthRequest<'_>, profile: Profile) -> Option<(String, AuthMethod)> {
    let header = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(token) = strip_scheme(header, "Bearer") {
        return Some((token.trim().to_string(), AuthMethod::Bearer));
    }
    if profile == Profile::V61 {
        if let Some((user, password)) = strip_scheme(header, "Basic").and_then(decode_basic) {
            if user == "-" {
                return Some((password, AuthMethod::BasicToken));
            }
        }
    }
    if let Some(token) = req
        .headers
        .get("x-runtime-guid")
        .and_then(|v| v.to_str().ok())
    {
        return Some((token.trim().to_string(), AuthMethod::XRuntimeGuid));
    }
    query_value(req.query, "_sessionToken")
        .map(|t| (t.to_string(), AuthMethod::UrlQuerySessionToken))
}

/// Authenticates a request against the users and sessions in `shared`.
pub fn authenticate(shared: &Shared, req: &AuthRequest<'_>) -> Result<Principal, AuthFailure> {
    let config = shared.config();
    if config.profile.has_sessions() {
        if let Some((token, method)) = request_token(req, config.profile) {
            return by_token(shared, &config, req, &token, method);
        }
    }
    let header = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(encoded) = strip_scheme(header, "Basic") {
        let (login, password) =
            decode_basic(encoded).ok_or(AuthFailure::unauthorized(AuthResult::WrongDigest))?;
        let user = allowed_user(shared, &login)?;
        return if user.password == password {
            Ok(principal(&user, AuthMethod::Basic))
        } else {
            Err(AuthFailure::unauthorized(AuthResult::WrongPassword))
        };
    }
    if let Some(params) = strip_scheme(header, "Digest") {
        return by_digest(shared, req.method, params);
    }
    if let Some(key) = query_value(req.query, "auth") {
        return by_auth_key(shared, req.method, key);
    }
    Err(AuthFailure::unauthorized(AuthResult::WrongDigest))
}

fn by_token(
    shared: &Shared,
    config: &SimConfig,
    req: &AuthRequest<'_>,
    token: &str,
    method: AuthMethod,
) -> Result<Principal, AuthFailure> {
    if method.uses_session_token() && !req.is_tls {
        let status = match config.bearer_over_http {
            BearerOverHttp::Allow => None,
            BearerOverHttp::Reject401 => Some(StatusCode::UNAUTHORIZED),
            BearerOverHttp::Reject403 => Some(StatusCode::FORBIDDEN),
        };
        if let Some(status) = status {
            return Err(AuthFailure {
                status,
                result: AuthResult::InsecureTransport,
            });
        }
    }
    let session = shared
        .session(token)
        .ok_or(AuthFailure::unauthorized(AuthResult::WrongSessionToken))?;
    let user = shared
        .user(&session.login)
        .ok_or(AuthFailure::unauthorized(AuthResult::WrongSessionToken))?;
    Ok(principal(&user, method))
}

/// The user of a Basic/Digest/key login, if it exists and may use those methods.
fn allowed_user(shared: &Shared, login: &str) -> Result<SimUser, AuthFailure> {
    let user = shared
        .user(login)
        .ok_or(AuthFailure::unauthorized(AuthResult::WrongLogin))?;
    if !user.digest_enabled {
        return Err(AuthFailure::unauthorized(
            AuthResult::DisabledBasicAndDigest,
        ));
    }
    Ok(user)
}

fn by_digest(shared: &Shared, method: &Method, params: &str) -> Result<Principal, AuthFailure> {
    let p = digest::parse_params(params);
    let wrong = AuthFailure::unauthorized(AuthResult::WrongDigest);
    let (Some(login), Some(nonce), Some(uri), Some(resp)) = (
        p.get("username"),
        p.get("nonce"),
        p.get("uri"),
        p.get("response"),
    ) else {
        return Err(wrong);
    };
    if p.get("realm").is_some_and(|r| r != REALM) {
        return Err(wrong);
    }
    if !shared.nonces.verify(nonce, now_us()) {
        return Err(wrong);
    }
    let qop = match p.get("qop").map(String::as_str) {
        None => None,
        Some("auth") => match (p.get("nc"), p.get("cnonce")) {
            (Some(nc), Some(cnonce)) => Some(QopAuth { nc, cnonce }),
            _ => return Err(wrong),
        },
        Some(_) => return Err(wrong),
    };
    let user = allowed_user(shared, login)?;
    let ha1 = digest::ha1(&user.login, REALM, &user.password);
    let expected = digest::response(&ha1, nonce, method.as_str(), uri, qop.as_ref());
    if expected.eq_ignore_ascii_case(resp) {
        Ok(principal(&user, AuthMethod::Digest))
    } else {
        Err(AuthFailure::unauthorized(AuthResult::WrongPassword))
    }
}

fn by_auth_key(shared: &Shared, method: &Method, key: &str) -> Result<Principal, AuthFailure> {
    let wrong = AuthFailure::unauthorized(AuthResult::WrongDigest);
    let parts = digest::decode_auth_key(key).ok_or(wrong)?;
    if !shared.nonces.verify(&parts.nonce, now_us()) {
        return Err(wrong);
    }
    let user = allowed_user(shared, &parts.login)?;
    let ha1 = digest::ha1(&user.login, REALM, &user.password);
    let expected = digest::auth_key_digest(&ha1, &parts.nonce, method.as_str());
    if expected.eq_ignore_ascii_case(&parts.digest) {
        Ok(principal(&user, AuthMethod::UrlQueryKey))
    } else {
        Err(AuthFailure::unauthorized(AuthResult::WrongPassword))
    }
}

fn principal(user: &SimUser, method: AuthMethod) -> Principal {
    Principal {
        login: user.login.clone(),
        method,
        generate_events: user.generate_events,
    }
}

/// The rest of `header` after a case-insensitive `scheme ` prefix.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = header.trim_start().split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then_some(rest.trim())
}

fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Microseconds since the epoch, the nonce clock.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn request<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> AuthRequest<'a> {
        AuthRequest {
            method: &Method::POST,
            headers,
            query,
            is_tls: true,
        }
    }

    #[test]
    fn digest_with_and_without_qop() {
        let shared = Shared::new(SimConfig::default());
        let nonce = shared.nonces.issue(now_us());
        let ha1 = digest::ha1("admin", REALM, "admin");
        for (qop, extra) in [
            (
                Some(QopAuth {
                    nc: "00000001",
                    cnonce: "abcd",
                }),
                ", qop=auth, nc=00000001, cnonce=\"abcd\"",
            ),
            (None, ""),
        ] {
            let resp = digest::response(&ha1, &nonce, "POST", "/api/createEvent", qop.as_ref());
            let mut headers = HeaderMap::new();
            let value = format!(
                "Digest username=\"Admin\", realm=\"VMS\", nonce=\"{nonce}\", uri=\"/api/createEvent\", response=\"{resp}\"{extra}"
            );
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            let p = authenticate(&shared, &request(&headers, &[])).unwrap();
            assert_eq!(p.method, AuthMethod::Digest);
            assert_eq!(p.login, "admin");
        }
    }

    #[test]
    fn no_credentials_is_wrong_digest() {
        let shared = Shared::new(SimConfig::default());
        let headers = HeaderMap::new();
        let err = authenticate(&shared, &request(&headers, &[])).unwrap_err();
        assert_eq!(err.result, AuthResult::WrongDigest);
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn auth_key_is_method_bound() {
        let shared = Shared::new(SimConfig::default());
        let nonce = shared.nonces.issue(now_us());
        let key = digest::auth_key("admin", "admin", &nonce, "POST");
        let headers = HeaderMap::new();
        let query = vec![("auth".to_string(), key)];
        let ok = authenticate(&shared, &request(&headers, &query)).unwrap();
        assert_eq!(ok.method, AuthMethod::UrlQueryKey);
        let get = AuthRequest {
            method: &Method::GET,
            headers: &headers,
            query: &query,
            is_tls: true,
        };
        assert_eq!(
            authenticate(&shared, &get).unwrap_err().result,
            AuthResult::WrongPassword
        );
    }

    #[test]
    fn token_over_plain_http_can_be_refused() {
        let config = SimConfig {
            bearer_over_http: BearerOverHttp::Reject403,
            ..SimConfig::default()
        };
        let shared = Shared::new(config);
        let token = shared.create_session("admin", std::time::Duration::from_secs(60));
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let plain = AuthRequest {
            method: &Method::POST,
            headers: &headers,
            query: &[],
            is_tls: false,
        };
        assert_eq!(
            authenticate(&shared, &plain).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(authenticate(&shared, &request(&headers, &[])).is_ok());
    }
}
