//! Checks and normalises what an operator sends, before anything is stored.
//!
//! Every problem names the request field it is about (`target.port`,
//! `camera.ip_address`, ...), and all problems of one request are reported
//! together so an operator fixes them in one go. Defaults documented in
//! `proto/anpr/v1/config.proto` are filled in here, so stored records are
//! complete.

use std::fmt;
use std::net::IpAddr;

use anpr_common::proto::{
    AnalyticSettings, Camera, EventSelection, MaskRegion, TlsTrust, VmsAuth, VmsTarget, VmsType,
};
use anpr_common::subjects::validate_token;

/// Default TCP port of an Nx Witness server.
pub const DEFAULT_VMS_PORT: u32 = 7001;
/// Default frames per second a camera sends to recognition.
pub const DEFAULT_SAMPLE_FPS: f32 = 10.0;
/// Highest accepted sample rate: more gives the analytic nothing.
pub const MAX_SAMPLE_FPS: f32 = 60.0;
/// Most mask regions per camera: masks are for a few overlays, not a map.
pub const MAX_MASK_REGIONS: usize = 16;
pub const MAX_SKIP_FIRST_READS: u32 = 10;
pub const LOST_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u32> = 100..=600_000;
pub const MAX_GROUPING_DISTANCE: u32 = 4;
pub const MAX_PLATE_FORMATS: usize = 32;
const MAX_TEXT_LEN: usize = 256;
const MAX_PASSWORD_LEN: usize = 1024;
/// Compiled size limit for a plate-format regex: plates are short, and a
/// pathological pattern must not eat the analytic's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Request path of the field, e.g. `target.port`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every refused field of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldError>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// The names of the refused fields, for tests and logs.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|error| error.field.as_str()).collect()
    }
}

#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    fn finish<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Invalid(self.0))
        }
    }
}

/// Whether a new record is created or an existing one replaced: passwords are
/// required on create and optional (kept) on update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// A record ready to store (secret removed) and the secret to store with it.
#[derive(Debug)]
pub struct Normalized<T> {
    pub record: T,
    /// `Some` when a (new) password was given.
    pub password: Option<String>,
}

fn check_token(problems: &mut Problems, field: &str, value: &str) {
    if let Err(err) = validate_token(value) {
        problems.add(field, err.to_string());
    }
}

fn check_text(problems: &mut Problems, field: &str, value: &str, required: bool) {
    if required && value.trim().is_empty() {
        problems.add(field, "must not be empty");
    } else if value.chars().count() > MAX_TEXT_LEN {
        problems.add(field, format!("must be at most {MAX_TEXT_LEN} characters"));
    } else if value.chars().any(char::is_control) {
        problems.add(field, "must not contain control characters");
    }
}

fn check_password(problems: &mut Problems, field: &str, value: &str) {
    if value.len() > MAX_PASSWORD_LEN {
        problems.add(field, format!("must be at most {MAX_PASSWORD_LEN} bytes"));
    } else if value.chars().any(|c| c == '\0') {
        problems.add(field, "must not contain NUL characters");
    }
}

/// Whether `host` is a plain host name or IP address (no scheme, port, path).
fn host_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("must not be empty".into());
    }
    if host.contains("://") {
        return Some(format!("give the host only, without a scheme: {host:?}"));
    }
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    if let Some((name, port)) = host.rsplit_once(':') {
        if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') {
            return Some(format!(
                "give the host only and the port in the port field: {host:?}"
            ));
        }
    }
    let valid_name = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid_name {
        None
    } else {
        Some(format!("is not a valid host name or IP address: {host:?}"))
    }
}

/// Lower-case hex of a SHA-256 given as hex, with or without `:` separators.
fn normalize_fingerprint(value: &str) -> Option<String> {
    let hex: String = value
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Checks a VMS target and fills in its defaults.
pub fn vms_target(input: VmsTarget, mode: Mode) -> Result<Normalized<VmsTarget>, Invalid> {
    let mut problems = Problems::default();
    let mut target = input;

    check_token(&mut problems, "target.name", &target.name);
    match VmsType::try_from(target.r#type) {
        Ok(VmsType::NxGenericEvent) => {}
        Ok(VmsType::Unspecified) => problems.add(
            "target.type",
            "is required; supported: VMS_TYPE_NX_GENERIC_EVENT",
        ),
        Err(_) => problems.add(
            "target.type",
            format!(
                "unknown type {}; supported: VMS_TYPE_NX_GENERIC_EVENT",
                target.r#type
            ),
        ),
    }
    target.host = target.host.trim().to_string();
    if let Some(message) = host_problem(&target.host) {
        problems.add("target.host", message);
    }
    match target.port {
        None => target.port = Some(DEFAULT_VMS_PORT),
        Some(port) if port == 0 || port > u32::from(u16::MAX) => {
            problems.add("target.port", format!("must be 1-65535, got {port}"))
        }
        Some(_) => {}
    }
    match TlsTrust::try_from(target.tls_trust) {
        Ok(TlsTrust::Unspecified) => target.set_tls_trust(TlsTrust::Verify),
        Ok(TlsTrust::Pinned) => match normalize_fingerprint(&target.pinned_cert_sha256) {
            Some(hex) => target.pinned_cert_sha256 = hex,
            None => problems.add(
                "target.pinned_cert_sha256",
                "TLS_TRUST_PINNED needs the certificate's SHA-256 as 64 hex digits",
            ),
        },
        Ok(_) => {}
        Err(_) => problems.add(
            "target.tls_trust",
            format!("unknown trust mode {}", target.tls_trust),
        ),
    }
    if target.tls_trust() != TlsTrust::Pinned && !target.pinned_cert_sha256.is_empty() {
        problems.add(
            "target.pinned_cert_sha256",
            "is only used with tls_trust TLS_TRUST_PINNED",
        );
    }
    check_text(&mut problems, "target.login", &target.login, true);
    check_password(&mut problems, "target.password", &target.password);
    if mode == Mode::Create && target.password.is_empty() {
        problems.add("target.password", "is required for a new target");
    }
    match EventSelection::try_from(target.events) {
        Ok(EventSelection::Unspecified) => target.set_events(EventSelection::Detect),
        Ok(_) => {}
        Err(_) => problems.add(
            "target.events",
            format!("unknown selection {}", target.events),
        ),
    }
    match VmsAuth::try_from(target.auth) {
        Ok(VmsAuth::Unspecified) => target.set_auth(VmsAuth::Auto),
        Ok(_) => {}
        Err(_) => problems.add("target.auth", format!("unknown auth mode {}", target.auth)),
    }
    target.enabled = Some(target.enabled.unwrap_or(true));

    let password = std::mem::take(&mut target.password);
    target.password_set = false;
    target.revision = 0;
    // Reported by the bridge, never stored with the target.
    target.status = None;
    problems.finish(Normalized {
        record: target,
        password: (!password.is_empty()).then_some(password),
    })
}

/// Checks a camera, moves credentials out of its URL and fills in defaults.
pub fn camera(input: Camera, mode: Mode) -> Result<Normalized<Camera>, Invalid> {
    let mut problems = Problems::default();
    let mut camera = input;
    let _ = mode; // cameras without RTSP auth exist, so no password is required

    check_token(&mut problems, "camera.id", &camera.id);
    camera.name = camera.name.trim().to_string();
    if camera.name.is_empty() {
        camera.name = camera.id.clone();
    }
    check_text(&mut problems, "camera.name", &camera.name, false);
    check_text(
        &mut problems,
        "camera.rtsp_username",
        &camera.rtsp_username,
        false,
    );
    check_password(&mut problems, "camera.rtsp_password", &camera.rtsp_password);

    let url_host = match url::Url::parse(camera.rtsp_url.trim()) {
        Err(err) => {
            problems.add("camera.rtsp_url", format!("is not a valid URL: {err}"));
            None
        }
        Ok(mut url) => {
            let host = url.host().map(|host| match host {
                url::Host::Ipv6(ip) => ip.to_string(),
                other => other.to_string(),
            });
            match url.scheme() {
                "rtsp" | "rtsps" if host.is_none() => {
                    problems.add("camera.rtsp_url", "needs a host")
                }
                "rtsp" | "rtsps" => {}
                "file" if url.path().len() <= 1 => {
                    problems.add("camera.rtsp_url", "a file:// URL needs a path")
                }
                "file" => {}
                other => problems.add(
                    "camera.rtsp_url",
                    format!("scheme must be rtsp, rtsps or file, got {other:?}"),
                ),
            }
            // Credentials never stay in the URL: it is shown in lists and logs.
            let user = decode(url.username());
            let password = url.password().map(decode);
            if !user.is_empty() {
                if !camera.rtsp_username.is_empty() && camera.rtsp_username != user {
                    problems.add(
                        "camera.rtsp_username",
                        "differs from the user name in rtsp_url; give one of them",
                    );
                }
                camera.rtsp_username = user;
            }
            if let Some(password) = password {
                if !camera.rtsp_password.is_empty() && camera.rtsp_password != password {
                    problems.add(
                        "camera.rtsp_password",
                        "differs from the password in rtsp_url; give one of them",
                    );
                }
                camera.rtsp_password = password;
            }
            // Both setters fail only for URLs that cannot carry credentials,
            // which carry none to remove.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            camera.rtsp_url = url.to_string();
            if url.scheme() == "file" {
                None
            } else {
                host
            }
        }
    };

    camera.ip_address = camera.ip_address.trim().to_string();
    if camera.ip_address.is_empty() {
        if let Some(host) = url_host {
            if host.parse::<IpAddr>().is_ok() {
                camera.ip_address = host;
            } else {
                problems.add(
                    "camera.ip_address",
                    format!(
                        "is required because the RTSP URL host {host:?} is not an IP address \
                         (the VMS matches cameras by IP)"
                    ),
                );
            }
        }
    } else if camera.ip_address.parse::<IpAddr>().is_err() {
        problems.add(
            "camera.ip_address",
            format!("is not an IP address: {:?}", camera.ip_address),
        );
    }

    camera.vms_camera_id = camera.vms_camera_id.trim().to_string();
    if camera.vms_camera_id.chars().any(char::is_whitespace) {
        problems.add("camera.vms_camera_id", "must not contain spaces");
    }
    check_text(
        &mut problems,
        "camera.vms_camera_id",
        &camera.vms_camera_id,
        false,
    );
    if let Some(channel) = camera.encoder_channel {
        if channel > 255 {
            problems.add(
                "camera.encoder_channel",
                format!("must be 0-255, got {channel}"),
            );
        }
    }
    match camera.sample_fps {
        None => camera.sample_fps = Some(DEFAULT_SAMPLE_FPS),
        Some(fps) if !(fps.is_finite() && fps > 0.0 && fps <= MAX_SAMPLE_FPS) => problems.add(
            "camera.sample_fps",
            format!("must be above 0 and at most {MAX_SAMPLE_FPS}, got {fps}"),
        ),
        Some(_) => {}
    }
    camera.enabled = Some(camera.enabled.unwrap_or(true));
    if camera.mask_regions.len() > MAX_MASK_REGIONS {
        problems.add(
            "camera.mask_regions",
            format!(
                "at most {MAX_MASK_REGIONS} regions, got {}",
                camera.mask_regions.len()
            ),
        );
    } else {
        for (i, region) in camera.mask_regions.iter().enumerate() {
            if let Some(problem) = mask_region_problem(region) {
                problems.add(&format!("camera.mask_regions[{i}]"), problem);
            }
        }
    }

    let password = std::mem::take(&mut camera.rtsp_password);
    camera.rtsp_password_set = false;
    camera.revision = 0;
    camera.status = None;
    problems.finish(Normalized {
        record: camera,
        password: (!password.is_empty()).then_some(password),
    })
}

/// A region is given in fractions of the frame, so each side must lie
/// inside [0, 1] and the region must have an area.
fn mask_region_problem(region: &MaskRegion) -> Option<String> {
    let MaskRegion {
        x,
        y,
        width,
        height,
    } = *region;
    let all = [x, y, width, height];
    if all.iter().any(|v| !v.is_finite()) {
        return Some("x, y, width and height must be numbers".into());
    }
    if !(0.0..1.0).contains(&x) || !(0.0..1.0).contains(&y) {
        return Some(format!(
            "x and y are fractions of the frame in [0, 1), got x={x} y={y}"
        ));
    }
    if width <= 0.0 || height <= 0.0 {
        return Some(format!(
            "width and height must be above 0, got {width}x{height}"
        ));
    }
    // A little slack: fractions written with a few decimals (0.333 + 0.667)
    // must not be refused for a rounding error.
    if x + width > 1.0 + 1e-4 || y + height > 1.0 + 1e-4 {
        return Some(format!(
            "must lie inside the frame: x + width = {} and y + height = {} must be at most 1",
            x + width,
            y + height
        ));
    }
    None
}

fn decode(component: &str) -> String {
    // The url crate keeps user info percent-encoded; the camera wants it plain.
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The built-in analytic defaults, used until an operator sets others.
pub fn builtin_analytic_defaults() -> AnalyticSettings {
    AnalyticSettings::builtin_defaults()
}

/// Checks the fields that are set in `settings`.
pub fn analytic_settings(settings: &AnalyticSettings) -> Result<(), Invalid> {
    let mut problems = Problems::default();
    if let Some(skip) = settings.skip_first_reads {
        if skip > MAX_SKIP_FIRST_READS {
            problems.add(
                "settings.skip_first_reads",
                format!("must be 0-{MAX_SKIP_FIRST_READS}, got {skip}"),
            );
        }
    }
    if let Some(confidence) = settings.min_confidence {
        if !(0.0..=1.0).contains(&confidence) {
            problems.add(
                "settings.min_confidence",
                format!("must be between 0 and 1, got {confidence}"),
            );
        }
    }
    if let Some(timeout) = settings.lost_timeout_ms {
        if !LOST_TIMEOUT_MS_RANGE.contains(&timeout) {
            problems.add(
                "settings.lost_timeout_ms",
                format!(
                    "must be {}-{} ms, got {timeout}",
                    LOST_TIMEOUT_MS_RANGE.start(),
                    LOST_TIMEOUT_MS_RANGE.end()
                ),
            );
        }
    }
    if let Some(distance) = settings.grouping_distance {
        if distance > MAX_GROUPING_DISTANCE {
            problems.add(
                "settings.grouping_distance",
                format!("must be 0-{MAX_GROUPING_DISTANCE}, got {distance}"),
            );
        }
    }
    if let Some(formats) = &settings.plate_formats {
        if formats.patterns.len() > MAX_PLATE_FORMATS {
            problems.add(
                "settings.plate_formats",
                format!("at most {MAX_PLATE_FORMATS} patterns"),
            );
        }
        for (i, pattern) in formats.patterns.iter().enumerate() {
            let field = format!("settings.plate_formats.patterns[{i}]");
            if pattern.is_empty() {
                problems.add(&field, "must not be empty");
            } else if pattern.len() > MAX_TEXT_LEN {
                problems.add(&field, format!("must be at most {MAX_TEXT_LEN} characters"));
            } else if let Err(err) = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                problems.add(&field, format!("does not compile: {err}"));
            }
        }
    }
    problems.finish(())
}

/// `base` with every field that is set in `overlay` replaced.
pub fn merge_analytic(base: &AnalyticSettings, overlay: &AnalyticSettings) -> AnalyticSettings {
    base.merged_with(overlay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::PlateFormats;

    fn target() -> VmsTarget {
        VmsTarget {
            name: "nx1".into(),
            r#type: VmsType::NxGenericEvent as i32,
            host: "10.0.0.5".into(),
            login: "admin".into(),
            password: "pw".into(),
            ..Default::default()
        }
    }

    #[test]
    fn target_defaults_are_filled_and_password_split_off() {
        let normalized = vms_target(target(), Mode::Create).expect("valid");
        let record = normalized.record;
        assert_eq!(record.port, Some(7001));
        assert_eq!(record.tls_trust(), TlsTrust::Verify);
        assert_eq!(record.events(), EventSelection::Detect);
        assert_eq!(record.auth(), VmsAuth::Auto);
        assert_eq!(record.enabled, Some(true));
        assert!(record.password.is_empty());
        assert_eq!(normalized.password.as_deref(), Some("pw"));
    }

    #[test]
    fn every_bad_target_field_is_named() {
        let bad = VmsTarget {
            name: "bad.name".into(),
            r#type: 0,
            host: "http://nx".into(),
            port: Some(0),
            tls_trust: TlsTrust::Pinned as i32,
            pinned_cert_sha256: "abc".into(),
            login: " ".into(),
            password: String::new(),
            events: 9,
            ..Default::default()
        };
        let err = vms_target(bad, Mode::Create).expect_err("invalid");
        assert_eq!(
            err.fields(),
            [
                "target.name",
                "target.type",
                "target.host",
                "target.port",
                "target.pinned_cert_sha256",
                "target.login",
                "target.password",
                "target.events",
            ]
        );
    }

    #[test]
    fn host_forms() {
        for good in ["10.0.0.5", "nx.example.com", "::1", "fe80::1", "vms-1"] {
            assert_eq!(host_problem(good), None, "{good}");
        }
        for bad in ["", "nx:7001", "https://nx", "nx/path", "bad host", "-x.com"] {
            assert!(host_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn pinned_fingerprint_accepts_colons_and_case() {
        let colon = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        let mut pinned = target();
        pinned.set_tls_trust(TlsTrust::Pinned);
        pinned.pinned_cert_sha256 = colon;
        let record = vms_target(pinned, Mode::Create).expect("valid").record;
        assert_eq!(record.pinned_cert_sha256, "ab".repeat(32));
    }

    #[test]
    fn update_may_keep_the_password() {
        let mut update = target();
        update.password.clear();
        let normalized = vms_target(update, Mode::Update).expect("valid");
        assert_eq!(normalized.password, None);
    }

    #[test]
    fn camera_credentials_move_out_of_the_url() {
        let camera_in = Camera {
            id: "gate-1".into(),
            rtsp_url: "rtsp://admin:p%40ss@192.168.1.20:554/Streaming/101".into(),
            ..Default::default()
        };
        let normalized = camera(camera_in, Mode::Create).expect("valid");
        let record = normalized.record;
        assert_eq!(record.rtsp_url, "rtsp://192.168.1.20:554/Streaming/101");
        assert_eq!(record.rtsp_username, "admin");
        assert_eq!(normalized.password.as_deref(), Some("p@ss"));
        assert_eq!(record.ip_address, "192.168.1.20");
        assert_eq!(record.name, "gate-1");
        assert_eq!(record.sample_fps, Some(10.0));
        assert_eq!(record.enabled, Some(true));
    }

    #[test]
    fn camera_ip_rules() {
        let by_name = Camera {
            id: "c".into(),
            rtsp_url: "rtsp://cam.local/stream".into(),
            ..Default::default()
        };
        let err = camera(by_name.clone(), Mode::Create).expect_err("needs ip");
        assert_eq!(err.fields(), ["camera.ip_address"]);
        let with_ip = Camera {
            ip_address: "10.1.1.1".into(),
            ..by_name
        };
        assert!(camera(with_ip, Mode::Create).is_ok());
        let file = Camera {
            id: "c".into(),
            rtsp_url: "file:///data/clip.ts".into(),
            ..Default::default()
        };
        assert_eq!(
            camera(file, Mode::Create).expect("valid").record.ip_address,
            ""
        );
        let v6 = Camera {
            id: "c".into(),
            rtsp_url: "rtsp://[fe80::2]/s".into(),
            ..Default::default()
        };
        assert_eq!(
            camera(v6, Mode::Create).expect("valid").record.ip_address,
            "fe80::2"
        );
    }

    #[test]
    fn every_bad_camera_field_is_named() {
        let bad = Camera {
            id: "".into(),
            rtsp_url: "http://x/y".into(),
            ip_address: "not-an-ip".into(),
            sample_fps: Some(0.0),
            encoder_channel: Some(1000),
            mask_regions: vec![
                MaskRegion {
                    x: 0.0,
                    y: 0.9,
                    width: 0.5,
                    height: 0.1,
                },
                MaskRegion {
                    x: 0.8,
                    y: 0.0,
                    width: 0.3,
                    height: 0.1,
                },
                MaskRegion {
                    x: 0.1,
                    y: 0.1,
                    width: 0.0,
                    height: 0.1,
                },
                MaskRegion {
                    x: f32::NAN,
                    y: 0.1,
                    width: 0.1,
                    height: 0.1,
                },
            ],
            ..Default::default()
        };
        let err = camera(bad, Mode::Create).expect_err("invalid");
        assert_eq!(
            err.fields(),
            [
                "camera.id",
                "camera.rtsp_url",
                "camera.ip_address",
                "camera.encoder_channel",
                "camera.sample_fps",
                "camera.mask_regions[1]",
                "camera.mask_regions[2]",
                "camera.mask_regions[3]",
            ]
        );
    }

    #[test]
    fn mask_regions_are_fractions_inside_the_frame() {
        let with = |regions: Vec<MaskRegion>| Camera {
            id: "gate".into(),
            rtsp_url: "rtsp://192.0.2.1/s".into(),
            mask_regions: regions,
            ..Default::default()
        };
        let thirds = MaskRegion {
            x: 0.333,
            y: 0.0,
            width: 0.667,
            height: 1.0,
        };
        let ok = camera(with(vec![thirds]), Mode::Create).expect("valid");
        assert_eq!(ok.record.mask_regions, vec![thirds]);
        let too_many = vec![thirds; MAX_MASK_REGIONS + 1];
        let err = camera(with(too_many), Mode::Create).expect_err("too many");
        assert_eq!(err.fields(), ["camera.mask_regions"]);
        let pixels = MaskRegion {
            x: 10.0,
            y: 600.0,
            width: 300.0,
            height: 40.0,
        };
        let err = camera(with(vec![pixels]), Mode::Create).expect_err("pixels");
        assert!(err.to_string().contains("fractions"), "{err}");
    }

    #[test]
    fn analytic_ranges_and_regexes() {
        assert!(analytic_settings(&builtin_analytic_defaults()).is_ok());
        let bad = AnalyticSettings {
            skip_first_reads: Some(11),
            min_confidence: Some(1.5),
            lost_timeout_ms: Some(10),
            grouping_distance: Some(9),
            plate_formats: Some(PlateFormats {
                patterns: vec!["^[A-Z]{3}[0-9]{4}$".into(), "([A-Z".into()],
            }),
        };
        let err = analytic_settings(&bad).expect_err("invalid");
        assert_eq!(
            err.fields(),
            [
                "settings.skip_first_reads",
                "settings.min_confidence",
                "settings.lost_timeout_ms",
                "settings.grouping_distance",
                "settings.plate_formats.patterns[1]",
            ]
        );
        assert!(err.to_string().contains("does not compile"));
        assert!(analytic_settings(&AnalyticSettings {
            min_confidence: Some(f32::NAN),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn merge_prefers_the_override() {
        let defaults = builtin_analytic_defaults();
        let overlay = AnalyticSettings {
            skip_first_reads: Some(5),
            ..Default::default()
        };
        let merged = merge_analytic(&defaults, &overlay);
        assert_eq!(merged.skip_first_reads, Some(5));
        assert_eq!(merged.lost_timeout_ms, Some(5_000));
    }
}
