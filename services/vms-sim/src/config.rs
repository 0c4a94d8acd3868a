//! Plain configuration types of the simulator: which server release it
//! imitates, its users and cameras, and the switches that reproduce the
//! behaviours a client must cope with.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::fixture::fixture_cameras;

/// The server release the simulator imitates. It decides which endpoints
/// exist (see the version map of the VMS notes, section 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// 3.x / 4.x: only `/api/*` and `/ec2/*`, no bearer sessions.
    V4x,
    /// 5.0: `/rest/v1`.
    V50,
    /// 5.1: up to `/rest/v2`.
    V51,
    /// 6.0: up to `/rest/v3`, "system" wording.
    V60,
    /// 6.1: up to `/rest/v4`, "site" wording, `/rest/v4/events/generic`.
    V61,
}

impl Profile {
    /// Every profile, oldest first.
    pub const ALL: [Profile; 5] = [
        Profile::V4x,
        Profile::V50,
        Profile::V51,
        Profile::V60,
        Profile::V61,
    ];

    /// Newest `/rest/vN` this release serves; `None` for 4.x (no REST API).
    pub fn max_rest_version(self) -> Option<u8> {
        match self {
            Profile::V4x => None,
            Profile::V50 => Some(1),
            Profile::V51 => Some(2),
            Profile::V60 => Some(3),
            Profile::V61 => Some(4),
        }
    }

    /// Whether `/rest/v{version}/…` exists on this release.
    pub fn has_rest_version(self, version: u8) -> bool {
        self.max_rest_version()
            .is_some_and(|max| version >= 1 && version <= max)
    }

    /// Bearer session tokens exist from 5.0 on.
    pub fn has_sessions(self) -> bool {
        self.max_rest_version().is_some()
    }

    /// The server version string reported by the info endpoints.
    pub fn server_version(self) -> &'static str {
        match self {
            Profile::V4x => "4.2.0.32840",
            Profile::V50 => "5.0.0.35136",
            Profile::V51 => "5.1.5.39242",
            Profile::V60 => "6.0.6.41837",
            Profile::V61 => "6.1.0.42176",
        }
    }

    /// Protocol version reported by `/api/moduleInformation`.
    pub fn proto_version(self) -> u32 {
        match self {
            Profile::V4x => 4206,
            Profile::V50 => 5000,
            Profile::V51 => 5100,
            Profile::V60 => 6000,
            Profile::V61 => 6100,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::V4x => "4.x",
            Profile::V50 => "5.0",
            Profile::V51 => "5.1",
            Profile::V60 => "6.0",
            Profile::V61 => "6.1",
        })
    }
}

/// Error for an unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VMS profile {0:?} (expected one of 4.x, 5.0, 5.1, 6.0, 6.1)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The notes also spell profiles "v4x", "v5.0"…; accept both spellings.
        let trimmed = s.trim();
        let bare = trimmed
            .strip_prefix('v')
            .or_else(|| trimmed.strip_prefix('V'))
            .unwrap_or(trimmed);
        match bare.to_ascii_lowercase().as_str() {
            "4.x" | "4x" | "4" | "4.0" | "4.2" => Ok(Profile::V4x),
            "5.0" => Ok(Profile::V50),
            "5.1" => Ok(Profile::V51),
            "6.0" => Ok(Profile::V60),
            "6.1" => Ok(Profile::V61),
            _ => Err(UnknownProfile(s.to_string())),
        }
    }
}

/// A local VMS user.
#[derive(Clone, PartialEq, Eq)]
pub struct SimUser {
    /// Login name; matched case-insensitively like the real server.
    pub login: String,
    pub password: String,
    /// Per-user "Allow (insecure) digest authentication": governs Basic and Digest.
    pub digest_enabled: bool,
    /// The global "Generate events" permission.
    pub generate_events: bool,
}

impl SimUser {
    /// A user with Digest enabled and permission to generate events.
    pub fn new(login: impl Into<String>, password: impl Into<String>) -> Self {
        SimUser {
            login: login.into(),
            password: password.into(),
            digest_enabled: true,
            generate_events: true,
        }
    }
}

// The password must never reach logs, so Debug is written by hand.
impl fmt::Debug for SimUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimUser")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("digest_enabled", &self.digest_enabled)
            .field("generate_events", &self.generate_events)
            .finish()
    }
}

/// A camera registered on the simulated server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCamera {
    /// Camera UUID (with dashes, no braces).
    pub id: String,
    pub name: String,
    /// Bare IP, host:port, DNS name or complete URL, as the real server stores it.
    pub url: String,
    /// MAC-like id; further encoder channels use `<base>_channel=<n>`.
    pub physical_id: String,
    /// `XX-XX-XX-XX-XX-XX`, may be empty.
    pub mac: String,
    pub logical_id: Option<u32>,
    /// `"Online"`, `"Offline"`, `"Recording"`…
    pub status: String,
}

/// What the server does with a session token sent over plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BearerOverHttp {
    /// Accept it (a lab server that does not enforce the HTTPS-only guidance).
    #[default]
    Allow,
    /// Reject with 401.
    Reject401,
    /// Reject with 403.
    Reject403,
}

/// Success body of `POST /rest/v4/events/generic` (the spec does not say which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum V4Body {
    /// 200 with an empty body.
    #[default]
    Empty,
    /// 200 with `{}`.
    EmptyObject,
}

/// Everything a simulator instance starts with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Imitated release. Default: 6.1.
    pub profile: Profile,
    /// Default: one user `admin`/`admin`, Digest on, may generate events.
    pub users: Vec<SimUser>,
    /// Default: [`fixture_cameras`].
    pub cameras: Vec<SimCamera>,
    /// `trafficEncryptionForced`: plain HTTP gets 301 (GET/HEAD) or 307 to https. Default false.
    pub encryption_forced: bool,
    /// Lifetime of a bearer session (`expiresInS`). Default 30 days, the VMS default.
    pub token_lifetime: Duration,
    /// Session tokens over plain HTTP. Default: allowed.
    pub bearer_over_http: BearerOverHttp,
    /// Success body of the v4 generic event endpoint. Default: empty.
    pub v4_success_body: V4Body,
    /// Whether `GET /api/createEvent` is allowed (false → 403). Default true.
    pub legacy_get_allowed: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            profile: Profile::V61,
            users: vec![SimUser::new("admin", "admin")],
            cameras: fixture_cameras(),
            encryption_forced: false,
            token_lifetime: Duration::from_secs(30 * 24 * 3600),
            bearer_over_http: BearerOverHttp::Allow,
            v4_success_body: V4Body::Empty,
            legacy_get_allowed: true,
        }
    }
}

/// A transport or server fault to inject. `/_fake/*` requests are never affected,
/// so a test can always read events and lift the fault over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Accept the connection, then close it without answering.
    Refuse,
    /// Accept, read the request, never answer (until the simulator stops).
    Hang,
    /// Answer every request with this status and a JSON error body.
    Status(u16),
    /// Answer normally after this delay.
    Latency(Duration),
    /// Send the headers and part of the body, then reset the connection.
    ResetMidResponse,
}
