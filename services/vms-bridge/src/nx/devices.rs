//! The VMS's camera list and the matching of an ANPR camera to a VMS camera.
//!
//! Nx stores a camera's address in the device `url` field in several forms: a
//! bare IP, `host:port`, or a complete URL for manually added cameras and every
//! channel of a multi-channel encoder. Channels of one encoder share the
//! address and are told apart by the `_channel=<k>` suffix of their
//! `physicalId` (1-based; the first channel has no suffix).

use std::net::IpAddr;

use serde::Deserialize;

/// One device of the VMS, with the fields the mapping needs. The legacy
/// `/ec2/getCamerasEx` and the REST `/rest/vN/devices` lists share them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub physical_id: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub status: String,
    /// Absent in the legacy list, which holds cameras only.
    #[serde(default)]
    pub device_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("camera list is not a JSON array of devices: {0}")]
pub struct DeviceListError(#[from] serde_json::Error);

/// Parses a device list: a bare array, or (as one Nx sample defensively
/// accepts) an object whose `reply` holds the array.
pub fn parse_device_list(body: &[u8]) -> Result<Vec<Device>, DeviceListError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Bare(Vec<Device>),
        Wrapped { reply: Vec<Device> },
    }
    let devices = match serde_json::from_slice::<List>(body)? {
        List::Bare(devices) | List::Wrapped { reply: devices } => devices,
    };
    Ok(devices.into_iter().filter(is_camera_like).collect())
}

/// I/O modules and speakers share addresses with cameras but never show
/// video, so they must not make an IP ambiguous.
fn is_camera_like(device: &Device) -> bool {
    !matches!(
        device.device_type.as_deref(),
        Some("IOModule") | Some("HornSpeaker")
    )
}

/// The host of a device `url` in any of the forms Nx uses, normalised for
/// comparison (lower case; IPs in canonical form, IPv4-mapped IPv6 as IPv4).
/// `None` when the field holds no host at all.
pub fn host_of(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    if url.contains("://") {
        let parsed = url::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        return Some(normalize_host(host));
    }
    // No scheme: `host`, `host:port`, `[v6]`, `[v6]:port`, a bare IPv6
    // address, each maybe followed by a path.
    let authority = url.split('/').next().unwrap_or(url);
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if authority.parse::<IpAddr>().is_ok() {
        authority
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(normalize_host(host))
}

/// Canonical text of a host for comparison.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// The 0-based encoder channel of a device: Nx's `_channel=<k>` suffix is
/// 1-based, and the first channel carries no suffix (or `_channel=1`).
pub fn channel_of(device: &Device) -> u32 {
    device
        .physical_id
        .rsplit_once("_channel=")
        .and_then(|(_, k)| k.parse::<u32>().ok())
        .map(|k| k.saturating_sub(1))
        .unwrap_or(0)
}

/// What the ANPR side knows about the camera of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameraKey {
    pub camera_id: String,
    /// IP (or host) the VMS knows the camera by; may be empty.
    pub ip_address: String,
    /// Explicit VMS camera id; wins over matching.
    pub vms_camera_id: String,
    pub encoder_channel: Option<u32>,
}

/// How an event's camera maps onto the VMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The operator named the VMS camera; sent as is.
    Explicit(String),
    /// Exactly one VMS camera (or the configured channel) matched.
    Matched(String),
    /// No VMS camera has the address; the text explains it.
    Missing(String),
    /// Several VMS cameras share the address and no channel picks one.
    Ambiguous(String),
}

impl Mapping {
    /// The references to send with the event.
    pub fn refs(&self) -> Vec<String> {
        match self {
            Mapping::Explicit(id) | Mapping::Matched(id) => vec![id.clone()],
            Mapping::Missing(_) | Mapping::Ambiguous(_) => Vec::new(),
        }
    }

    /// The problem line for the target status, if any.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Mapping::Missing(text) | Mapping::Ambiguous(text) => Some(text),
            Mapping::Explicit(_) | Mapping::Matched(_) => None,
        }
    }
}

/// Finds the VMS camera of `camera` in `devices`.
pub fn resolve(camera: &CameraKey, devices: &[Device]) -> Mapping {
    let explicit = camera.vms_camera_id.trim();
    if !explicit.is_empty() {
        return Mapping::Explicit(explicit.to_string());
    }
    let id = &camera.camera_id;
    let Some(wanted) = host_of(&camera.ip_address) else {
        return Mapping::Missing(format!(
            "{id}: no IP address configured to find its VMS camera"
        ));
    };
    let on_host: Vec<&Device> = devices
        .iter()
        .filter(|device| host_of(&device.url).as_deref() == Some(wanted.as_str()))
        .collect();
    match (on_host.as_slice(), camera.encoder_channel) {
        ([], _) => Mapping::Missing(format!("{id}: no VMS camera has IP {wanted}")),
        ([only], None) => Mapping::Matched(only.id.clone()),
        (several, Some(channel)) => {
            let chosen: Vec<&&Device> = several
                .iter()
                .filter(|device| channel_of(device) == channel)
                .collect();
            match chosen.as_slice() {
                [only] => Mapping::Matched(only.id.clone()),
                [] => Mapping::Missing(format!(
                    "{id}: no VMS camera on IP {wanted} is encoder channel {channel} (0-based)"
                )),
                _ => Mapping::Ambiguous(format!(
                    "{id}: {} VMS cameras on IP {wanted} claim encoder channel {channel}",
                    chosen.len()
                )),
            }
        }
        (several, None) => Mapping::Ambiguous(format!(
            "{id}: {} VMS cameras share IP {wanted}; set the camera's encoder channel",
            several.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, url: &str, physical_id: &str) -> Device {
        Device {
            id: id.into(),
            name: id.into(),
            url: url.into(),
            physical_id: physical_id.into(),
            mac: String::new(),
            status: "Online".into(),
            device_type: Some("Camera".into()),
        }
    }

    fn key(ip: &str, channel: Option<u32>) -> CameraKey {
        CameraKey {
            camera_id: "gate".into(),
            ip_address: ip.into(),
            vms_camera_id: String::new(),
            encoder_channel: channel,
        }
    }

    #[test]
    fn host_is_found_in_every_url_form() {
        let cases = [
            ("192.168.1.21", Some("192.168.1.21")),
            (" 192.168.1.21 ", Some("192.168.1.21")),
            ("192.168.1.23:554", Some("192.168.1.23")),
            (
                "http://192.168.1.22:80/onvif/device_service",
                Some("192.168.1.22"),
            ),
            ("rtsp://user:pw@192.168.1.24/stream", Some("192.168.1.24")),
            (
                "https://Cam-North.Example.COM/onvif",
                Some("cam-north.example.com"),
            ),
            ("cam-north.example.com", Some("cam-north.example.com")),
            ("cam-north.example.com:8080", Some("cam-north.example.com")),
            ("192.168.1.25/onvif/device_service", Some("192.168.1.25")),
            ("fe80::1", Some("fe80::1")),
            ("2001:DB8:0:0::1", Some("2001:db8::1")),
            ("[2001:db8::1]:554", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("http://[2001:db8::1]:8080/x", Some("2001:db8::1")),
            ("::ffff:10.0.0.7", Some("10.0.0.7")),
            ("http://[::ffff:10.0.0.7]/", Some("10.0.0.7")),
            ("", None),
            ("   ", None),
            ("http://", None),
            (":554", None),
        ];
        for (url, expected) in cases {
            assert_eq!(host_of(url).as_deref(), expected, "url {url:?}");
        }
    }

    #[test]
    fn channels_are_zero_based_from_the_one_based_suffix() {
        assert_eq!(channel_of(&device("a", "", "AA-BB")), 0);
        assert_eq!(channel_of(&device("a", "", "AA-BB_channel=1")), 0);
        assert_eq!(channel_of(&device("a", "", "AA-BB_channel=2")), 1);
        assert_eq!(channel_of(&device("a", "", "AA-BB_channel=16")), 15);
        assert_eq!(channel_of(&device("a", "", "AA-BB_channel=x")), 0);
    }

    fn fixture() -> Vec<Device> {
        vec![
            device("bare", "192.168.1.21", "00-1A"),
            device(
                "full",
                "http://192.168.1.22:80/onvif/device_service",
                "00-1B",
            ),
            device("port", "192.168.1.23:554", "00-1C"),
            device("dns", "cam-north.example.com", "00-1D"),
            device("enc1", "http://192.168.1.40/onvif", "AA-BB-CC-DD-EE-FF"),
            device(
                "enc2",
                "http://192.168.1.40/onvif",
                "AA-BB-CC-DD-EE-FF_channel=2",
            ),
        ]
    }

    #[test]
    fn mapping_by_ip_channel_and_explicit_id() {
        let devices = fixture();
        for (ip, id) in [
            ("192.168.1.21", "bare"),
            ("192.168.1.22", "full"),
            ("192.168.1.23", "port"),
            ("CAM-NORTH.example.com", "dns"),
        ] {
            assert_eq!(
                resolve(&key(ip, None), &devices),
                Mapping::Matched(id.into())
            );
        }
        assert_eq!(
            resolve(&key("192.168.1.40", Some(0)), &devices),
            Mapping::Matched("enc1".into())
        );
        assert_eq!(
            resolve(&key("192.168.1.40", Some(1)), &devices),
            Mapping::Matched("enc2".into())
        );
        let explicit = CameraKey {
            vms_camera_id: "my-uuid".into(),
            ..key("192.168.1.40", None)
        };
        assert_eq!(
            resolve(&explicit, &devices),
            Mapping::Explicit("my-uuid".into())
        );
        assert_eq!(resolve(&explicit, &devices).refs(), ["my-uuid"]);
    }

    #[test]
    fn ambiguous_and_unknown_cameras_are_problems_without_refs() {
        let devices = fixture();
        let ambiguous = resolve(&key("192.168.1.40", None), &devices);
        assert!(matches!(ambiguous, Mapping::Ambiguous(_)), "{ambiguous:?}");
        assert!(ambiguous.refs().is_empty());
        assert_eq!(
            ambiguous.problem(),
            Some("gate: 2 VMS cameras share IP 192.168.1.40; set the camera's encoder channel")
        );
        let unknown = resolve(&key("10.9.9.9", None), &devices);
        assert_eq!(
            unknown.problem(),
            Some("gate: no VMS camera has IP 10.9.9.9")
        );
        assert!(unknown.refs().is_empty());
        let no_channel = resolve(&key("192.168.1.40", Some(5)), &devices);
        assert!(matches!(no_channel, Mapping::Missing(_)));
        let no_ip = resolve(&key("", None), &devices);
        assert!(matches!(no_ip, Mapping::Missing(_)));
        // A channel configured for a single camera still has to match it.
        assert_eq!(
            resolve(&key("192.168.1.21", Some(0)), &devices),
            Mapping::Matched("bare".into())
        );
    }

    #[test]
    fn device_lists_parse_bare_wrapped_and_skip_non_cameras() {
        let bare = br#"[{"id":"a","name":"Gate","url":"10.0.0.1","physicalId":"p","status":"Offline","deviceType":"Camera","extra":1},
                        {"id":"io","url":"10.0.0.1","deviceType":"IOModule"}]"#;
        let devices = parse_device_list(bare).unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].status, "Offline");
        let legacy =
            br#"{"reply":[{"id":"b","url":"http://10.0.0.2/","parentId":"s","groupId":"g"}]}"#;
        assert_eq!(parse_device_list(legacy).unwrap()[0].id, "b");
        assert!(parse_device_list(b"{\"error\":\"4\"}").is_err());
        assert!(parse_device_list(b"<html>").is_err());
    }
}
