//! Generated wire types (`proto/anpr/v1`), plus hand-written `Debug` for the
//! messages that carry passwords.

use std::fmt;

#[allow(clippy::all, missing_docs)]
mod generated {
    tonic::include_proto!("anpr.v1");
}

pub use generated::*;

/// What a secret field shows in `Debug` output.
const REDACTED: &str = "<redacted>";

/// Shows whether a secret is present without showing it.
fn redact(secret: &str) -> &'static str {
    if secret.is_empty() {
        "\"\""
    } else {
        REDACTED
    }
}

impl fmt::Debug for VmsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmsTarget")
            .field("name", &self.name)
            .field("type", &self.r#type())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("use_ssl", &self.use_ssl)
            .field("tls_trust", &self.tls_trust())
            .field("pinned_cert_sha256", &self.pinned_cert_sha256)
            .field("login", &self.login)
            .field("password", &format_args!("{}", redact(&self.password)))
            .field("password_set", &self.password_set)
            .field("events", &self.events())
            .field("enabled", &self.enabled)
            .field("auth", &self.auth())
            .field("prolonged", &self.prolonged)
            .field("revision", &self.revision)
            .field("status", &self.status)
            .finish()
    }
}

impl fmt::Debug for Camera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Camera")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("rtsp_url", &self.rtsp_url)
            .field("rtsp_username", &self.rtsp_username)
            .field(
                "rtsp_password",
                &format_args!("{}", redact(&self.rtsp_password)),
            )
            .field("rtsp_password_set", &self.rtsp_password_set)
            .field("ip_address", &self.ip_address)
            .field("vms_camera_id", &self.vms_camera_id)
            .field("encoder_channel", &self.encoder_channel)
            .field("sample_fps", &self.sample_fps)
            .field("enabled", &self.enabled)
            .field("revision", &self.revision)
            .finish()
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSecret")
            .field("password", &format_args!("{}", redact(&self.password)))
            .finish()
    }
}

impl AnalyticSettings {
    /// The built-in analytic defaults, used until an operator sets others.
    /// Every field is set.
    pub fn builtin_defaults() -> Self {
        AnalyticSettings {
            skip_first_reads: Some(2),
            min_confidence: Some(0.7),
            lost_timeout_ms: Some(5_000),
            grouping_distance: Some(2),
            plate_formats: Some(PlateFormats::default()),
        }
    }

    /// `self` with every field that is set in `overlay` replaced.
    pub fn merged_with(&self, overlay: &AnalyticSettings) -> AnalyticSettings {
        AnalyticSettings {
            skip_first_reads: overlay.skip_first_reads.or(self.skip_first_reads),
            min_confidence: overlay.min_confidence.or(self.min_confidence),
            lost_timeout_ms: overlay.lost_timeout_ms.or(self.lost_timeout_ms),
            grouping_distance: overlay.grouping_distance.or(self.grouping_distance),
            plate_formats: overlay
                .plate_formats
                .clone()
                .or_else(|| self.plate_formats.clone()),
        }
    }
}

impl PlateEventKind {
    /// The subject token of this kind: `detect`, `update` or `lost`.
    pub fn subject_token(self) -> Option<&'static str> {
        match self {
            PlateEventKind::Detect => Some("detect"),
            PlateEventKind::Update => Some("update"),
            PlateEventKind::Lost => Some("lost"),
            PlateEventKind::Unspecified => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_passwords() {
        let target = VmsTarget {
            name: "nx1".into(),
            login: "admin".into(),
            password: "hunter2-secret".into(),
            ..Default::default()
        };
        let camera = Camera {
            id: "gate".into(),
            rtsp_password: "cam-secret-pw".into(),
            ..Default::default()
        };
        let request = CreateVmsTargetRequest {
            target: Some(target.clone()),
        };
        for shown in [
            format!("{target:?}"),
            format!("{target:#?}"),
            format!("{camera:?}"),
            format!("{request:?}"),
            format!(
                "{:?}",
                StoredSecret {
                    password: "stored-secret".into()
                }
            ),
        ] {
            assert!(!shown.contains("secret"), "leaked: {shown}");
            assert!(!shown.contains("hunter2"), "leaked: {shown}");
        }
        assert!(format!("{target:?}").contains(REDACTED));
        assert!(format!("{target:?}").contains("admin"));
    }
}
