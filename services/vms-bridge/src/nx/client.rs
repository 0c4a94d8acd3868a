//! `NxClient`: one VMS target's HTTP conversation. Ties together API
//! discovery, authentication (bearer session, Digest, Basic), the camera
//! list, the HTTP→HTTPS redirect, and posting Generic Events.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};

use super::auth::{digest_header, explain_auth_result, AuthMethod, DigestChallenge, Secret};
use super::devices::{normalize_host, parse_device_list, resolve, CameraKey, Device, Mapping};
use super::discover::{parse_module_information, parse_site_info, Api, ServerInfo};
use super::events::{classify, legacy_body, v4_body, GenericEvent, Outcome};
use super::tls::{client_config, TlsError, Trust};

/// How the client reaches and authenticates to one VMS.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Target name, for logs only.
    pub target: String,
    pub host: String,
    pub port: u16,
    pub use_ssl: bool,
    pub trust: Trust,
    pub login: String,
    pub password: Secret,
    /// `None` = AUTO: bearer where the server has `/rest/v1+`, else Digest.
    pub auth: Option<AuthMethod>,
}

/// Timing knobs of the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit of one HTTP exchange, connection included. Default 10 s.
    pub request_timeout: Duration,
    /// A camera-mapping miss refreshes the camera list at most this often.
    /// Default 30 s.
    pub device_refresh: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(10),
            device_refresh: Duration::from_secs(30),
        }
    }
}

/// Why a call failed. `Permanent` means the same request can never succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NxError {
    #[error("{0}")]
    Transient(String),
    #[error("{reason}")]
    Permanent { reason: String, http_status: u16 },
}

/// An answer, with what the auth logic needs from its headers.
struct Answer {
    status: u16,
    auth_result: String,
    challenge: Option<DigestChallenge>,
    body: bytes::Bytes,
}

pub struct NxClient {
    endpoint: Endpoint,
    options: ClientOptions,
    http: reqwest::Client,
    /// Plain HTTP targets switch to HTTPS for good once the VMS redirects.
    https: bool,
    server: Option<ServerInfo>,
    token: Option<Secret>,
    digest: Option<(DigestChallenge, u32)>,
    devices: Vec<Device>,
    devices_at: Option<Instant>,
    /// Counts logins (bearer sessions), for the metrics.
    pub logins: u64,
}

impl NxClient {
    pub fn new(endpoint: Endpoint, options: ClientOptions) -> Result<Self, TlsError> {
        let tls = client_config(&endpoint.trust)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // Redirects are handled by hand: only to HTTPS on the same host.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|err| TlsError::Rustls(rustls::Error::General(err.to_string())))?;
        Ok(NxClient {
            https: endpoint.use_ssl,
            endpoint,
            options,
            http,
            server: None,
            token: None,
            digest: None,
            devices: Vec::new(),
            devices_at: None,
            logins: 0,
        })
    }

    /// The server as last discovered.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.server.as_ref()
    }

    /// Discovers the server's API if not known yet.
    pub async fn server(&mut self) -> Result<ServerInfo, NxError> {
        if let Some(server) = &self.server {
            return Ok(server.clone());
        }
        let mut last = String::new();
        for path in ["/rest/v4/site/info", "/rest/v3/system/info"] {
            let answer = self.raw(Method::GET, path, None, None).await?;
            if (200..300).contains(&answer.status) {
                match parse_site_info(&answer.body) {
                    Ok(info) => return Ok(self.discovered(info)),
                    Err(err) => last = format!("{path}: {err}"),
                }
            }
        }
        let answer = self
            .raw(Method::GET, "/api/moduleInformation", None, None)
            .await?;
        if (200..300).contains(&answer.status) {
            match parse_module_information(&answer.body) {
                Ok(info) => return Ok(self.discovered(info)),
                Err(err) => last = format!("/api/moduleInformation: {err}"),
            }
        } else if last.is_empty() {
            last = format!("/api/moduleInformation answered HTTP {}", answer.status);
        }
        Err(NxError::Transient(format!(
            "not an Nx Witness compatible server ({last})"
        )))
    }

    fn discovered(&mut self, info: ServerInfo) -> ServerInfo {
        tracing::info!(target_name = %self.endpoint.target, server = %info.describe(), "VMS server discovered");
        self.server = Some(info.clone());
        info
    }

    /// The auth method in force against `server`.
    fn method(&self, server: &ServerInfo) -> Result<AuthMethod, NxError> {
        match (self.endpoint.auth, server.api) {
            (None, Api::Rest(_)) => Ok(AuthMethod::Bearer),
            (None, Api::Legacy) => Ok(AuthMethod::Digest),
            (Some(AuthMethod::Bearer), Api::Legacy) => Err(NxError::Transient(format!(
                "bearer auth is configured but the VMS ({}) has no login sessions; use digest or auto",
                server.version
            ))),
            (Some(method), _) => Ok(method),
        }
    }

    /// Posts one Generic Event.
    pub async fn post_event(&mut self, event: &GenericEvent) -> Result<(), NxError> {
        let server = self.server().await?;
        let (path, body) = if server.has_generic_events_v4() {
            ("/rest/v4/events/generic", v4_body(event))
        } else {
            ("/api/createEvent", legacy_body(event))
        };
        let answer = self.authed(Method::POST, path, Some(&body)).await?;
        if let Some(explanation) = self.auth_refusal(&answer, &server) {
            return Err(NxError::Transient(explanation?));
        }
        match classify(answer.status, &answer.body) {
            Outcome::Success => Ok(()),
            Outcome::Permanent(reason) => Err(NxError::Permanent {
                reason,
                http_status: answer.status,
            }),
            Outcome::Retry(reason) => Err(NxError::Transient(reason)),
            Outcome::Unauthorized => Err(NxError::Transient(self.explain(&answer, &server)?)),
        }
    }

    fn explain(&self, answer: &Answer, server: &ServerInfo) -> Result<String, NxError> {
        let method = self.method(server)?;
        let plain_bearer = method == AuthMethod::Bearer && !self.https;
        if plain_bearer
            && matches!(
                answer.auth_result.as_str(),
                "Auth_Forbidden" | "Auth_WrongSessionToken"
            )
        {
            return Ok(format!(
                "the VMS refuses session tokens over plain HTTP ({}); enable \"use SSL\" for this target",
                answer.auth_result
            ));
        }
        Ok(explain_auth_result(
            &answer.auth_result,
            &self.endpoint.login,
            method,
        ))
    }

    /// A 403 carrying `X-Auth-Result` is the authentication layer refusing
    /// the credentials or transport, not the VMS refusing this event: it is
    /// reported and retried, never dead-lettered.
    fn auth_refusal(
        &self,
        answer: &Answer,
        server: &ServerInfo,
    ) -> Option<Result<String, NxError>> {
        let auth_layer = !answer.auth_result.is_empty() && answer.auth_result != "Auth_OK";
        (answer.status == 403 && auth_layer).then(|| self.explain(answer, server))
    }

    /// Maps an ANPR camera to VMS camera references, refreshing the camera
    /// list on a miss (at most once per `device_refresh`).
    pub async fn map_camera(&mut self, key: &CameraKey) -> Result<Mapping, NxError> {
        if !key.vms_camera_id.trim().is_empty() {
            return Ok(resolve(key, &[]));
        }
        let fresh_enough =
            |at: Option<Instant>, refresh: Duration| at.is_some_and(|at| at.elapsed() < refresh);
        if self.devices_at.is_none() {
            self.refresh_devices().await?;
        }
        let mapping = resolve(key, &self.devices);
        if mapping.problem().is_none() || fresh_enough(self.devices_at, self.options.device_refresh)
        {
            return Ok(mapping);
        }
        self.refresh_devices().await?;
        Ok(resolve(key, &self.devices))
    }

    async fn refresh_devices(&mut self) -> Result<(), NxError> {
        let server = self.server().await?;
        let path = match server.api {
            Api::Rest(n) => {
                format!("/rest/v{n}/devices?_with=id,name,url,physicalId,mac,deviceType,status")
            }
            Api::Legacy => "/ec2/getCamerasEx".to_string(),
        };
        // Marked as fetched even on failure, so a VMS that refuses the list
        // is not asked again for every event.
        self.devices_at = Some(Instant::now());
        let answer = self.authed(Method::GET, &path, None).await?;
        if !(200..300).contains(&answer.status) {
            tracing::warn!(target_name = %self.endpoint.target, status = answer.status, "VMS camera list refused; events go without camera references");
            return Ok(());
        }
        match parse_device_list(&answer.body) {
            Ok(devices) => {
                tracing::debug!(target_name = %self.endpoint.target, count = devices.len(), "VMS camera list fetched");
                self.devices = devices;
            }
            Err(err) => {
                tracing::warn!(target_name = %self.endpoint.target, error = %err, "VMS camera list unreadable");
            }
        }
        Ok(())
    }

    /// Sends an authenticated request: logs in or answers the Digest
    /// challenge as needed, re-logging in once when a token is refused.
    async fn authed(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, NxError> {
        let server = self.server().await?;
        let auth = self.method(&server)?;
        match auth {
            AuthMethod::Bearer => {
                let mut fresh_login = false;
                if self.token.is_none() {
                    self.login(&server).await?;
                    fresh_login = true;
                }
                loop {
                    let token = self
                        .token
                        .as_ref()
                        .map(|t| format!("Bearer {}", t.expose()));
                    let answer = self
                        .raw(method.clone(), path, body, token.as_deref())
                        .await?;
                    if answer.status != 401 {
                        return Ok(answer);
                    }
                    self.token = None;
                    if fresh_login {
                        return Err(NxError::Transient(self.explain(&answer, &server)?));
                    }
                    tracing::info!(target_name = %self.endpoint.target, auth_result = %answer.auth_result, "session token refused; logging in again");
                    self.login(&server).await?;
                    fresh_login = true;
                }
            }
            AuthMethod::Basic => {
                let header = basic_header(&self.endpoint.login, self.endpoint.password.expose());
                let answer = self.raw(method, path, body, Some(&header)).await?;
                if answer.status == 401 {
                    return Err(NxError::Transient(self.explain(&answer, &server)?));
                }
                Ok(answer)
            }
            AuthMethod::Digest => self.digest_request(method, path, body, &server).await,
        }
    }

    async fn digest_request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        server: &ServerInfo,
    ) -> Result<Answer, NxError> {
        // Nx computes HA1 over the lower-cased login.
        let login = self.endpoint.login.to_lowercase();
        let mut retried_with_new_nonce = false;
        // Bounded, so a server that calls every nonce stale cannot spin us.
        for _ in 0..4 {
            let header = match &mut self.digest {
                Some((challenge, nc)) => {
                    *nc += 1;
                    let cnonce = format!("{:016x}", rand::rng().random::<u64>());
                    Some(digest_header(
                        &login,
                        self.endpoint.password.expose(),
                        method.as_str(),
                        path,
                        challenge,
                        *nc,
                        &cnonce,
                    ))
                }
                None => None,
            };
            let sent_credentials = header.is_some();
            let answer = self
                .raw(method.clone(), path, body, header.as_deref())
                .await?;
            if answer.status != 401 {
                return Ok(answer);
            }
            let Some(challenge) = answer.challenge.clone() else {
                self.digest = None;
                return Err(NxError::Transient(self.explain(&answer, server)?));
            };
            let refused_for_good = matches!(
                answer.auth_result.as_str(),
                "Auth_DisabledBasicAndDigest"
                    | "Auth_WrongPassword"
                    | "Auth_WrongLogin"
                    | "Auth_LockedOut"
            );
            // First contact (no nonce yet), a stale nonce, or one expired
            // nonce: answer the new challenge. Anything else is a refusal.
            let retry = !sent_credentials
                || (!refused_for_good && (challenge.stale || !retried_with_new_nonce));
            self.digest = Some((challenge, 0));
            if !retry {
                self.digest = None;
                return Err(NxError::Transient(self.explain(&answer, server)?));
            }
            if sent_credentials {
                retried_with_new_nonce = true;
            }
        }
        self.digest = None;
        Err(NxError::Transient(
            "the VMS keeps refusing the Digest nonce".into(),
        ))
    }

    /// Opens a bearer session (`POST /rest/vN/login/sessions`).
    async fn login(&mut self, server: &ServerInfo) -> Result<(), NxError> {
        let version = server.rest_version().unwrap_or(1);
        let body = json!({
            "username": self.endpoint.login,
            "password": self.endpoint.password.expose(),
        });
        self.logins += 1;
        let path = format!("/rest/v{version}/login/sessions");
        let answer = self.raw(Method::POST, &path, Some(&body), None).await?;
        let login = &self.endpoint.login;
        match answer.status {
            200..=299 => {
                let token = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        NxError::Transient("login answer without a session token".into())
                    })?;
                tracing::info!(target_name = %self.endpoint.target, user = %login, "logged in to the VMS");
                self.token = Some(Secret::new(token));
                Ok(())
            }
            401 | 422 => Err(NxError::Transient(format!(
                "wrong password for user {login}"
            ))),
            404 => Err(NxError::Transient(format!(
                "unknown user {login} on the VMS"
            ))),
            403 => Err(NxError::Transient(format!(
                "the VMS refused the login of user {login} (too many attempts or not allowed)"
            ))),
            status => Err(NxError::Transient(format!("login failed: HTTP {status}"))),
        }
    }

    fn authority(&self) -> String {
        match self.endpoint.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.endpoint.port),
            _ => format!("{}:{}", self.endpoint.host, self.endpoint.port),
        }
    }

    /// One exchange, following a redirect to HTTPS on the same host.
    async fn raw(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        authorization: Option<&str>,
    ) -> Result<Answer, NxError> {
        for _ in 0..2 {
            let scheme = if self.https { "https" } else { "http" };
            let url = format!("{scheme}://{}{path}", self.authority());
            let mut request = self.http.request(method.clone(), &url);
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => return Err(self.transport_error(&err)),
            };
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 307 | 308) {
                self.follow_redirect(response.headers())?;
                continue;
            }
            let headers = response.headers().clone();
            let body = match response.bytes().await {
                Ok(body) => body,
                Err(err) => return Err(self.transport_error(&err)),
            };
            return Ok(Answer {
                status,
                auth_result: header_text(&headers, "x-auth-result"),
                challenge: headers
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(DigestChallenge::parse),
                body,
            });
        }
        Err(NxError::Transient("the VMS keeps redirecting".into()))
    }

    fn follow_redirect(&mut self, headers: &HeaderMap) -> Result<(), NxError> {
        let location = header_text(headers, LOCATION.as_str());
        let parsed = url::Url::parse(&location).ok();
        let same_host = parsed
            .as_ref()
            .and_then(|url| url.host_str())
            .is_some_and(|host| normalize_host(host) == normalize_host(&self.endpoint.host));
        match parsed {
            Some(url) if same_host && url.scheme() == "https" && !self.https => {
                self.https = true;
                if let Some(port) = url.port_or_known_default() {
                    self.endpoint.port = port;
                }
                tracing::warn!(
                    target_name = %self.endpoint.target,
                    "the VMS accepts encrypted connections only; using HTTPS from now on (enable \"use SSL\" for this target)"
                );
                Ok(())
            }
            Some(url) => Err(NxError::Transient(format!(
                "the VMS redirected to {}://{}; only a redirect to HTTPS on the same host is followed",
                url.scheme(),
                url.host_str().unwrap_or("?")
            ))),
            None => Err(NxError::Transient("the VMS sent a redirect without a usable Location".into())),
        }
    }

    fn transport_error(&mut self, err: &reqwest::Error) -> NxError {
        // The server may have been replaced or upgraded meanwhile.
        self.server = None;
        let chain = error_chain(err);
        let hint = if chain.contains("UnknownIssuer") || chain.contains("certificate") {
            " (TLS certificate not trusted: pin the VMS certificate's SHA-256 or choose insecure trust)"
        } else {
            ""
        };
        let what = if err.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        NxError::Transient(format!("request to the VMS {what}: {chain}{hint}"))
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn basic_header(login: &str, password: &str) -> String {
    use std::io::Write as _;
    let mut raw = Vec::new();
    let _ = write!(raw, "{login}:{password}");
    format!("Basic {}", base64_encode(&raw))
}

/// Standard base64 with padding (RFC 4648), for the Basic header.
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
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

/// An error and its sources, joined: reqwest's own message hides the cause.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_rfc_7617() {
        assert_eq!(
            basic_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b""), "");
    }
}
