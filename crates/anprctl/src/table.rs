//! Text rendering for people: aligned tables for lists and `key: value`
//! listings for single records. Passwords have no place here; only whether
//! one is stored is shown.

use anpr_common::proto::{
    AnalyticOverride, AnalyticSettings, AnalyticSettingsView, Camera, CameraStatus, EventSelection,
    TlsTrust, VmsAuth, VmsTarget, VmsType,
};

use crate::format::{rfc3339_millis, yes_no};

/// Port an Nx Witness server listens on unless told otherwise; the config
/// service fills it in, so it only shows for records written without it.
pub const DEFAULT_VMS_PORT: u32 = 7001;
/// Frames per second a camera sends to recognition unless told otherwise.
pub const DEFAULT_SAMPLE_FPS: f32 = 10.0;

/// Renders rows under a header, each column as wide as its widest cell, two
/// spaces between columns, no trailing spaces. With no rows, `empty` is
/// printed under the header so an empty result is not mistaken for a failure.
pub fn render_table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    push_line(&mut out, &header, &widths);
    if rows.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    for row in rows {
        push_line(&mut out, row, &widths);
    }
    out
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        let pad = width.saturating_sub(cell.chars().count());
        line.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Renders `key: value` lines with the values aligned.
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(key, _)| key.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let line = format!("{:<width$} {value}", format!("{key}:"));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ------------------------------------------------------------------- labels

/// What the VMS calls the integration.
pub fn vms_type_label(target: &VmsTarget) -> String {
    match VmsType::try_from(target.r#type) {
        Ok(VmsType::NxGenericEvent) => "VMS Generic Event".to_string(),
        Ok(VmsType::Unspecified) => "-".to_string(),
        Err(_) => format!("unknown ({})", target.r#type),
    }
}

/// The trust mode as the `--tls-trust` value that selects it.
pub fn tls_trust_label(target: &VmsTarget) -> String {
    match TlsTrust::try_from(target.tls_trust) {
        Ok(TlsTrust::Unspecified | TlsTrust::Verify) => "verify".to_string(),
        Ok(TlsTrust::Pinned) => "pinned".to_string(),
        Ok(TlsTrust::Insecure) => "insecure".to_string(),
        Err(_) => format!("unknown ({})", target.tls_trust),
    }
}

/// `yes`, or `yes (pinned)` / `yes (insecure)` when the certificate is not
/// verified the usual way: an operator scanning the list should see that.
pub fn use_ssl_label(target: &VmsTarget) -> String {
    if !target.use_ssl {
        return "no".to_string();
    }
    match TlsTrust::try_from(target.tls_trust) {
        Ok(TlsTrust::Unspecified | TlsTrust::Verify) => "yes".to_string(),
        _ => format!("yes ({})", tls_trust_label(target)),
    }
}

/// The auth method as the `--auth` value that selects it.
pub fn auth_label(target: &VmsTarget) -> String {
    match VmsAuth::try_from(target.auth) {
        Ok(VmsAuth::Unspecified | VmsAuth::Auto) => "auto".to_string(),
        Ok(VmsAuth::Bearer) => "bearer".to_string(),
        Ok(VmsAuth::Digest) => "digest".to_string(),
        Ok(VmsAuth::Basic) => "basic".to_string(),
        Err(_) => format!("unknown ({})", target.auth),
    }
}

/// Which events the target receives, in the VMS's words.
pub fn events_label(target: &VmsTarget) -> String {
    match EventSelection::try_from(target.events) {
        Ok(EventSelection::Unspecified | EventSelection::Detect) => "Detect".to_string(),
        Ok(EventSelection::Lost) => "Lost".to_string(),
        Ok(EventSelection::Both) => "Detect+Lost".to_string(),
        Err(_) => format!("unknown ({})", target.events),
    }
}

/// How the VMS camera for this camera's events is found.
pub fn vms_mapping_label(camera: &Camera) -> String {
    if !camera.vms_camera_id.is_empty() {
        format!("id {}", camera.vms_camera_id)
    } else if let Some(channel) = camera.encoder_channel {
        format!("channel {channel}")
    } else {
        "by IP".to_string()
    }
}

/// The sample rate, default filled in.
pub fn fps_label(camera: &Camera) -> String {
    camera.sample_fps.unwrap_or(DEFAULT_SAMPLE_FPS).to_string()
}

fn dash_if_empty(value: &str) -> String {
    if value.is_empty() {
        "-".to_string()
    } else {
        value.to_string()
    }
}

// -------------------------------------------------------------- VMS targets

pub const VMS_HEADERS: [&str; 10] = [
    "NAME",
    "IP ADDRESS",
    "TCP PORT",
    "USE SSL",
    "METHOD",
    "WHAT",
    "VMS TYPE",
    "ENABLED",
    "QUEUE",
    "STATUS",
];

/// Longest error shown in the table; `vms show` prints the whole text.
const STATUS_ERROR_WIDTH: usize = 60;

/// One word or short line on delivery, from the bridge's last report.
pub fn status_label(target: &VmsTarget) -> String {
    let Some(status) = &target.status else {
        return "-".to_string();
    };
    let seconds = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    let failing = !status.last_error.is_empty()
        && seconds(&status.last_error_at) >= seconds(&status.last_success);
    let mut label = if failing {
        let error: String = status.last_error.chars().take(STATUS_ERROR_WIDTH).collect();
        let cut = status.last_error.chars().count() > STATUS_ERROR_WIDTH;
        format!("error: {error}{}", if cut { "..." } else { "" })
    } else if status.last_success.is_some() {
        "ok".to_string()
    } else {
        "waiting".to_string()
    };
    match status.camera_problems.len() {
        0 => {}
        1 => label.push_str(" (1 camera unmapped)"),
        n => label.push_str(&format!(" ({n} cameras unmapped)")),
    }
    label
}

fn queue_label(target: &VmsTarget) -> String {
    match &target.status {
        Some(status) => status.queue_depth.to_string(),
        None => "-".to_string(),
    }
}

pub fn vms_targets_table(targets: &[VmsTarget]) -> String {
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|target| {
            vec![
                target.name.clone(),
                target.host.clone(),
                target.port.unwrap_or(DEFAULT_VMS_PORT).to_string(),
                use_ssl_label(target),
                auth_label(target),
                events_label(target),
                vms_type_label(target),
                yes_no(target.enabled.unwrap_or(true)).to_string(),
                queue_label(target),
                status_label(target),
            ]
        })
        .collect();
    render_table(&VMS_HEADERS, &rows, "(no VMS targets)")
}

pub fn vms_target_fields(target: &VmsTarget) -> String {
    let mut fields = vec![
        ("name", target.name.clone()),
        ("type", vms_type_label(target)),
        ("host", target.host.clone()),
        ("port", target.port.unwrap_or(DEFAULT_VMS_PORT).to_string()),
        ("use ssl", yes_no(target.use_ssl).to_string()),
        ("tls trust", tls_trust_label(target)),
    ];
    if !target.pinned_cert_sha256.is_empty() {
        fields.push(("pinned cert sha256", target.pinned_cert_sha256.clone()));
    }
    fields.extend([
        ("login", target.login.clone()),
        (
            "password",
            if target.password_set {
                "set"
            } else {
                "not set"
            }
            .to_string(),
        ),
        ("auth", auth_label(target)),
        ("events", events_label(target)),
        ("prolonged", yes_no(target.prolonged).to_string()),
        (
            "enabled",
            yes_no(target.enabled.unwrap_or(true)).to_string(),
        ),
        ("revision", target.revision.to_string()),
        ("status", status_label(target)),
    ]);
    if let Some(status) = &target.status {
        let time = |t: &Option<prost_types::Timestamp>| match t {
            Some(t) => rfc3339_millis(t),
            None => "never".to_string(),
        };
        fields.extend([
            ("server", dash_if_empty(&status.server)),
            ("last success", time(&status.last_success)),
            ("last error", dash_if_empty(&status.last_error)),
            ("last error at", time(&status.last_error_at)),
            ("queue", status.queue_depth.to_string()),
            ("delivered", status.delivered.to_string()),
            ("dead-lettered", status.dead_lettered.to_string()),
            ("reported at", time(&status.updated_at)),
        ]);
        for problem in &status.camera_problems {
            fields.push(("camera problem", problem.clone()));
        }
    }
    render_fields(&fields)
}

// ------------------------------------------------------------------ cameras

pub const CAMERA_HEADERS: [&str; 11] = [
    "ID",
    "NAME",
    "IP ADDRESS",
    "URL",
    "FPS",
    "VMS MAPPING",
    "ENABLED",
    "STREAM",
    "IN/OUT FPS",
    "DROPPED",
    "RECONNECTS",
];

/// The stream as ingest last reported it: live, connecting, or down with
/// the reason (cut to fit; `camera show` prints the whole text).
pub fn stream_label(camera: &Camera) -> String {
    let Some(status) = &camera.status else {
        return "-".to_string();
    };
    if status.connected {
        return "live".to_string();
    }
    if status.last_error.is_empty() {
        return "connecting".to_string();
    }
    let error: String = status.last_error.chars().take(STATUS_ERROR_WIDTH).collect();
    let cut = status.last_error.chars().count() > STATUS_ERROR_WIDTH;
    format!("down: {error}{}", if cut { "..." } else { "" })
}

/// Decoded and published frames per second, one decimal.
fn fps_in_out_label(camera: &Camera) -> String {
    match &camera.status {
        Some(status) => format!("{:.1}/{:.1}", status.decoded_fps, status.published_fps),
        None => "-".to_string(),
    }
}

fn status_count(camera: &Camera, count: fn(&CameraStatus) -> u64) -> String {
    camera
        .status
        .as_ref()
        .map_or_else(|| "-".to_string(), |status| count(status).to_string())
}

/// `X,Y,W,H` per region, as `--mask` takes them.
pub fn masks_label(camera: &Camera) -> String {
    if camera.mask_regions.is_empty() {
        return "none".to_string();
    }
    camera
        .mask_regions
        .iter()
        .map(|r| format!("{},{},{},{}", r.x, r.y, r.width, r.height))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn cameras_table(cameras: &[Camera]) -> String {
    let rows: Vec<Vec<String>> = cameras
        .iter()
        .map(|camera| {
            vec![
                camera.id.clone(),
                camera.name.clone(),
                dash_if_empty(&camera.ip_address),
                camera.rtsp_url.clone(),
                fps_label(camera),
                vms_mapping_label(camera),
                yes_no(camera.enabled.unwrap_or(true)).to_string(),
                stream_label(camera),
                fps_in_out_label(camera),
                status_count(camera, |s| s.dropped_frames),
                status_count(camera, |s| s.reconnects),
            ]
        })
        .collect();
    render_table(&CAMERA_HEADERS, &rows, "(no cameras)")
}

pub fn camera_fields(camera: &Camera) -> String {
    let mut fields = vec![
        ("id", camera.id.clone()),
        ("name", camera.name.clone()),
        ("url", camera.rtsp_url.clone()),
        ("rtsp user", dash_if_empty(&camera.rtsp_username)),
        (
            "rtsp password",
            if camera.rtsp_password_set {
                "set"
            } else {
                "not set"
            }
            .to_string(),
        ),
        ("ip address", dash_if_empty(&camera.ip_address)),
        ("vms camera id", dash_if_empty(&camera.vms_camera_id)),
        (
            "encoder channel",
            camera
                .encoder_channel
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
        ),
        ("vms mapping", vms_mapping_label(camera)),
        ("fps", fps_label(camera)),
        ("masks", masks_label(camera)),
        (
            "enabled",
            yes_no(camera.enabled.unwrap_or(true)).to_string(),
        ),
        ("revision", camera.revision.to_string()),
        ("stream", stream_label(camera)),
    ];
    if let Some(status) = &camera.status {
        let time = |t: &Option<prost_types::Timestamp>| match t {
            Some(t) => rfc3339_millis(t),
            None => "never".to_string(),
        };
        fields.extend([
            ("stream format", dash_if_empty(&status.stream)),
            ("decoded fps", format!("{:.1}", status.decoded_fps)),
            ("published fps", format!("{:.1}", status.published_fps)),
            ("dropped frames", status.dropped_frames.to_string()),
            ("reconnects", status.reconnects.to_string()),
            ("last frame", time(&status.last_frame_at)),
            ("last error", dash_if_empty(&status.last_error)),
            ("last error at", time(&status.last_error_at)),
            ("ingest instance", dash_if_empty(&status.ingest_instance)),
            ("reported at", time(&status.updated_at)),
        ]);
    }
    render_fields(&fields)
}

// -------------------------------------------------------- analytic settings

/// One analytic setting: its name (as in the proto and the JSON output) and
/// how to read it from a settings message, `None` when not set there.
pub struct SettingColumn {
    pub name: &'static str,
    pub read: fn(&AnalyticSettings) -> Option<String>,
}

/// Every analytic setting, in the order they are shown.
pub const SETTINGS: [SettingColumn; 5] = [
    SettingColumn {
        name: "skip_first_reads",
        read: |s| s.skip_first_reads.map(|v| v.to_string()),
    },
    SettingColumn {
        name: "min_confidence",
        read: |s| s.min_confidence.map(|v| v.to_string()),
    },
    SettingColumn {
        name: "lost_timeout_ms",
        read: |s| s.lost_timeout_ms.map(|v| v.to_string()),
    },
    SettingColumn {
        name: "grouping_distance",
        read: |s| s.grouping_distance.map(|v| v.to_string()),
    },
    SettingColumn {
        name: "plate_formats",
        read: |s| {
            s.plate_formats
                .as_ref()
                .map(|f| plate_formats_label(&f.patterns))
        },
    },
];

/// Patterns separated by two spaces (a regex may contain `,` or `|`, and a
/// plate-format regex has no reason to contain spaces); `(none)` for none.
pub fn plate_formats_label(patterns: &[String]) -> String {
    if patterns.is_empty() {
        "(none)".to_string()
    } else {
        patterns.join("  ")
    }
}

/// Where an effective setting comes from: the camera's override when it sets
/// the field, else the defaults.
pub fn setting_source(view: &AnalyticSettingsView, column: &SettingColumn) -> &'static str {
    let overridden = !view.camera_id.is_empty()
        && view
            .r#override
            .as_ref()
            .and_then(|o| (column.read)(o))
            .is_some();
    if overridden {
        "camera"
    } else {
        "default"
    }
}

pub fn analytic_view_table(view: &AnalyticSettingsView) -> String {
    let scope = if view.camera_id.is_empty() {
        format!("global defaults (revision {})", view.revision)
    } else if view.revision == 0 {
        format!("camera {} (no override stored)", view.camera_id)
    } else {
        format!(
            "camera {} (override revision {})",
            view.camera_id, view.revision
        )
    };
    let effective = view.effective.clone().unwrap_or_default();
    let rows: Vec<Vec<String>> = SETTINGS
        .iter()
        .map(|column| {
            vec![
                column.name.to_string(),
                (column.read)(&effective).unwrap_or_else(|| "-".to_string()),
                setting_source(view, column).to_string(),
            ]
        })
        .collect();
    format!(
        "{scope}\n{}",
        render_table(&["SETTING", "VALUE", "SOURCE"], &rows, "")
    )
}

pub const OVERRIDE_HEADERS: [&str; 7] = [
    "CAMERA",
    "SKIP FIRST",
    "MIN CONFIDENCE",
    "LOST TIMEOUT MS",
    "GROUPING DISTANCE",
    "PLATE FORMATS",
    "REVISION",
];

/// One row per stored override; `-` marks a setting the override leaves to
/// the defaults.
pub fn analytic_overrides_table(overrides: &[AnalyticOverride]) -> String {
    let rows: Vec<Vec<String>> = overrides
        .iter()
        .map(|entry| {
            let settings = entry.settings.clone().unwrap_or_default();
            let mut row = vec![if entry.camera_id.is_empty() {
                "(defaults)".to_string()
            } else {
                entry.camera_id.clone()
            }];
            row.extend(
                SETTINGS
                    .iter()
                    .map(|column| (column.read)(&settings).unwrap_or_else(|| "-".to_string())),
            );
            row.push(entry.revision.to_string());
            row
        })
        .collect();
    render_table(&OVERRIDE_HEADERS, &rows, "(no analytic overrides)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::{PlateFormats, VmsTargetStatus};

    fn plain_detect() -> VmsTarget {
        let mut target = VmsTarget {
            name: "nx1".into(),
            host: "10.0.0.5".into(),
            port: Some(7001),
            login: "admin".into(),
            password_set: true,
            enabled: Some(true),
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_events(EventSelection::Detect);
        target.set_tls_trust(TlsTrust::Verify);
        target
    }

    fn ssl_pinned_lost() -> VmsTarget {
        let mut target = VmsTarget {
            name: "nx-secure".into(),
            host: "nx.example.com".into(),
            port: Some(7443),
            use_ssl: true,
            pinned_cert_sha256: "ab".repeat(32),
            login: "op".into(),
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_tls_trust(TlsTrust::Pinned);
        target.set_events(EventSelection::Lost);
        target.set_auth(VmsAuth::Digest);
        target
    }

    fn disabled_both() -> VmsTarget {
        let mut target = VmsTarget {
            name: "old".into(),
            host: "192.168.7.200".into(),
            port: None,
            login: "x".into(),
            enabled: Some(false),
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_events(EventSelection::Both);
        target.set_auth(VmsAuth::Basic);
        target
    }

    #[test]
    fn vms_list_has_the_columns_in_order_and_aligned_rows() {
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let mut delivering = plain_detect();
        delivering.status = Some(VmsTargetStatus {
            last_success: at(1_800_000_100),
            last_error_at: at(1_800_000_000),
            last_error: "VMS unreachable: connection refused".into(),
            ..Default::default()
        });
        let mut failing = ssl_pinned_lost();
        failing.status = Some(VmsTargetStatus {
            last_success: at(1_800_000_000),
            last_error_at: at(1_800_000_100),
            last_error: "wrong password for user anpr".into(),
            queue_depth: 12,
            camera_problems: vec!["gate: no VMS camera has IP 10.1.2.3".into()],
            ..Default::default()
        });
        let table = vms_targets_table(&[delivering, failing, disabled_both()]);
        let lines: Vec<&str> = table.lines().collect();
        let header: Vec<&str> = lines[0]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "IP ADDRESS",
                "TCP PORT",
                "USE SSL",
                "METHOD",
                "WHAT",
                "VMS TYPE",
                "ENABLED",
                "QUEUE",
                "STATUS"
            ]
        );
        assert_eq!(
            lines,
            [
                "NAME       IP ADDRESS      TCP PORT  USE SSL       METHOD  WHAT         VMS TYPE           ENABLED  QUEUE  STATUS",
                "nx1        10.0.0.5        7001      no            auto    Detect       VMS Generic Event  yes      0      ok",
                "nx-secure  nx.example.com  7443      yes (pinned)  digest  Lost         VMS Generic Event  yes      12     error: wrong password for user anpr (1 camera unmapped)",
                "old        192.168.7.200   7001      no            basic   Detect+Lost  VMS Generic Event  no       -      -",
            ]
        );
        assert!(table.ends_with('\n'));
        assert!(!table.lines().any(|line| line.ends_with(' ')));
    }

    #[test]
    fn ssl_label_names_only_the_unusual_trust_modes() {
        let mut target = plain_detect();
        target.use_ssl = true;
        assert_eq!(use_ssl_label(&target), "yes");
        target.set_tls_trust(TlsTrust::Unspecified);
        assert_eq!(use_ssl_label(&target), "yes");
        target.set_tls_trust(TlsTrust::Insecure);
        assert_eq!(use_ssl_label(&target), "yes (insecure)");
        target.use_ssl = false;
        assert_eq!(use_ssl_label(&target), "no");
        target.tls_trust = 42;
        target.use_ssl = true;
        assert_eq!(use_ssl_label(&target), "yes (unknown (42))");
    }

    #[test]
    fn empty_lists_say_so_under_the_header() {
        assert_eq!(
            vms_targets_table(&[]),
            "NAME  IP ADDRESS  TCP PORT  USE SSL  METHOD  WHAT  VMS TYPE  ENABLED  QUEUE  STATUS\n(no VMS targets)\n"
        );
        assert_eq!(
            cameras_table(&[]),
            "ID  NAME  IP ADDRESS  URL  FPS  VMS MAPPING  ENABLED  STREAM  IN/OUT FPS  DROPPED  RECONNECTS\n(no cameras)\n"
        );
        assert!(analytic_overrides_table(&[]).ends_with("\n(no analytic overrides)\n"));
    }

    #[test]
    fn camera_list_shows_mapping_and_defaults() {
        let cameras = [
            Camera {
                id: "gate-1".into(),
                name: "Gate 1".into(),
                rtsp_url: "rtsp://10.1.2.3/stream".into(),
                ip_address: "10.1.2.3".into(),
                sample_fps: None,
                enabled: Some(true),
                status: Some(CameraStatus {
                    connected: true,
                    decoded_fps: 25.0,
                    published_fps: 10.0,
                    reconnects: 1,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Camera {
                id: "exit".into(),
                name: "exit".into(),
                rtsp_url: "rtsp://cam.local:554/s1".into(),
                ip_address: "10.1.2.4".into(),
                vms_camera_id: "3f2a".into(),
                encoder_channel: Some(1),
                sample_fps: Some(12.5),
                enabled: Some(false),
                ..Default::default()
            },
            Camera {
                id: "dvr-2".into(),
                name: "DVR 2".into(),
                rtsp_url: "rtsp://10.1.2.9/ch2".into(),
                ip_address: "10.1.2.9".into(),
                encoder_channel: Some(2),
                sample_fps: Some(5.0),
                status: Some(CameraStatus {
                    connected: false,
                    last_error: "RTSP DESCRIBE: connection refused".into(),
                    dropped_frames: 3,
                    reconnects: 7,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        let table = cameras_table(&cameras);
        assert_eq!(
            table.lines().collect::<Vec<_>>(),
            [
                "ID      NAME    IP ADDRESS  URL                      FPS   VMS MAPPING  ENABLED  STREAM                                   IN/OUT FPS  DROPPED  RECONNECTS",
                "gate-1  Gate 1  10.1.2.3    rtsp://10.1.2.3/stream   10    by IP        yes      live                                     25.0/10.0   0        1",
                "exit    exit    10.1.2.4    rtsp://cam.local:554/s1  12.5  id 3f2a      no       -                                        -           -        -",
                "dvr-2   DVR 2   10.1.2.9    rtsp://10.1.2.9/ch2      5     channel 2    yes      down: RTSP DESCRIBE: connection refused  0.0/0.0     3        7",
            ]
        );
    }

    #[test]
    fn show_lists_the_bridge_status() {
        let mut target = plain_detect();
        target.status = Some(VmsTargetStatus {
            last_success: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            server: "6.1.0 / rest v4".into(),
            queue_depth: 3,
            delivered: 40,
            camera_problems: vec![
                "yard: 2 VMS cameras have IP 10.0.0.9; set an encoder channel".into(),
            ],
            ..Default::default()
        });
        let text = vms_target_fields(&target);
        let fields: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key, value.trim()))
            .collect();
        for expected in [
            ("status", "ok (1 camera unmapped)"),
            ("server", "6.1.0 / rest v4"),
            ("last success", "2027-01-15T08:00:00.000Z"),
            ("last error", "-"),
            ("last error at", "never"),
            ("queue", "3"),
            ("delivered", "40"),
            (
                "camera problem",
                "yard: 2 VMS cameras have IP 10.0.0.9; set an encoder channel",
            ),
        ] {
            assert!(
                fields.contains(&expected),
                "missing {expected:?} in\n{text}"
            );
        }
    }

    #[test]
    fn show_says_whether_a_password_is_set_but_never_shows_it() {
        let mut target = ssl_pinned_lost();
        target.password = "hunter2-secret".into();
        target.password_set = true;
        target.revision = 9;
        let text = vms_target_fields(&target);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\npassword:           set\n"), "{text}");
        assert!(text.contains(&format!("pinned cert sha256: {}\n", "ab".repeat(32))));
        assert!(text.contains("tls trust:          pinned\n"), "{text}");
        assert!(text.contains("\nrevision:           9\n"), "{text}");
        assert!(text.ends_with("\nstatus:             -\n"), "{text}");
        target.password_set = false;
        assert!(vms_target_fields(&target).contains("password:           not set\n"));

        let camera = Camera {
            id: "gate-1".into(),
            rtsp_password: "cam-secret".into(),
            rtsp_password_set: true,
            ..Default::default()
        };
        let text = camera_fields(&camera);
        assert!(!text.contains("cam-secret"), "{text}");
        assert!(text.contains("rtsp password:   set\n"), "{text}");
    }

    #[test]
    fn analytic_view_marks_overridden_settings() {
        let defaults = AnalyticSettings {
            skip_first_reads: Some(2),
            min_confidence: Some(0.7),
            lost_timeout_ms: Some(5000),
            grouping_distance: Some(2),
            plate_formats: Some(PlateFormats::default()),
        };
        let overlay = AnalyticSettings {
            skip_first_reads: Some(3),
            plate_formats: Some(PlateFormats {
                patterns: vec!["^[A-Z]{3}[0-9]{4}$".into()],
            }),
            ..Default::default()
        };
        let effective = AnalyticSettings {
            skip_first_reads: Some(3),
            plate_formats: overlay.plate_formats.clone(),
            ..defaults.clone()
        };
        let view = AnalyticSettingsView {
            camera_id: "gate-1".into(),
            defaults: Some(defaults.clone()),
            r#override: Some(overlay),
            effective: Some(effective),
            revision: 4,
        };
        assert_eq!(
            analytic_view_table(&view).lines().collect::<Vec<_>>(),
            [
                "camera gate-1 (override revision 4)",
                "SETTING            VALUE               SOURCE",
                "skip_first_reads   3                   camera",
                "min_confidence     0.7                 default",
                "lost_timeout_ms    5000                default",
                "grouping_distance  2                   default",
                "plate_formats      ^[A-Z]{3}[0-9]{4}$  camera",
            ]
        );

        // The defaults view has no override: everything is a default.
        let view = AnalyticSettingsView {
            camera_id: String::new(),
            defaults: Some(defaults.clone()),
            r#override: Some(AnalyticSettings {
                skip_first_reads: Some(9),
                ..Default::default()
            }),
            effective: Some(defaults),
            revision: 0,
        };
        let text = analytic_view_table(&view);
        assert!(text.starts_with("global defaults (revision 0)\n"), "{text}");
        assert!(
            text.contains("plate_formats      (none)  default\n"),
            "{text}"
        );
        assert!(!text.contains("camera"), "{text}");
    }

    #[test]
    fn override_list_marks_inherited_settings() {
        let table = analytic_overrides_table(&[AnalyticOverride {
            camera_id: "gate-1".into(),
            settings: Some(AnalyticSettings {
                min_confidence: Some(0.85),
                ..Default::default()
            }),
            revision: 7,
        }]);
        assert_eq!(
            table.lines().nth(1),
            Some("gate-1  -           0.85            -                -                  -              7")
        );
    }
}
