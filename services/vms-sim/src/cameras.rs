//! Camera lookup by "flexible id" and the two JSON shapes of the camera list
//! (`/ec2/getCamerasEx` legacy names, `/rest/vN/devices` v1+ names).

use serde_json::{json, Map, Value};

use crate::config::SimCamera;
use crate::fixture::SERVER_ID;

/// Resource type id of a generic camera; all simulated cameras share it.
const CAMERA_TYPE_ID: &str = "1657647e-f6e4-bc39-d5e8-563c93cb5e1c";
const VENDOR: &str = "Simulated";
const MODEL: &str = "ANPR-SIM-1";
const CHANNEL_MARKER: &str = "_channel=";

/// Finds a camera the way the server resolves a flexible id: UUID `id` first,
/// then `physicalId`, then MAC address, then a positive integer `logicalId`.
pub fn find_camera<'a>(cameras: &'a [SimCamera], flexible_id: &str) -> Option<&'a SimCamera> {
    let wanted = flexible_id.trim();
    if wanted.is_empty() {
        return None;
    }
    let as_uuid = wanted.trim_start_matches('{').trim_end_matches('}');
    if let Some(cam) = cameras.iter().find(|c| c.id.eq_ignore_ascii_case(as_uuid)) {
        return Some(cam);
    }
    if let Some(cam) = cameras.iter().find(|c| c.physical_id == wanted) {
        return Some(cam);
    }
    if let Some(mac) = normalise_mac(wanted) {
        if let Some(cam) = cameras
            .iter()
            .find(|c| normalise_mac(&c.mac).as_deref() == Some(mac.as_str()))
        {
            return Some(cam);
        }
    }
    match wanted.parse::<u32>() {
        Ok(n) if n > 0 => cameras.iter().find(|c| c.logical_id == Some(n)),
        _ => None,
    }
}

/// Canonical `XX-XX-XX-XX-XX-XX` for a MAC written with `-` or `:`; `None` if
/// the text is not a MAC.
fn normalise_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(['-', ':']).collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|ch| ch.is_ascii_hexdigit()));
    valid.then(|| parts.join("-").to_ascii_uppercase())
}

/// Group of a multichannel device: channels share the base physical id.
fn group_of(cameras: &[SimCamera], camera: &SimCamera) -> Option<(String, String)> {
    let base = camera
        .physical_id
        .split(CHANNEL_MARKER)
        .next()
        .unwrap_or(&camera.physical_id);
    let is_multichannel = cameras.iter().any(|c| {
        c.physical_id
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with(CHANNEL_MARKER))
    });
    is_multichannel.then(|| (base.to_string(), format!("Multichannel device {base}")))
}

/// One camera with the legacy `/ec2/getCamerasEx` field names.
pub fn ec2_camera_json(cameras: &[SimCamera], camera: &SimCamera) -> Value {
    let (group_id, group_name) = group_of(cameras, camera).unwrap_or_default();
    json!({
        "id": camera.id,
        "parentId": SERVER_ID,
        "name": camera.name,
        "url": camera.url,
        "typeId": CAMERA_TYPE_ID,
        "mac": camera.mac,
        "physicalId": camera.physical_id,
        "manuallyAdded": camera.url.contains("://"),
        "model": MODEL,
        "vendor": VENDOR,
        "groupId": group_id,
        "groupName": group_name,
        // The legacy API carries the logical id as text, empty when unset.
        "logicalId": camera.logical_id.map(|n| n.to_string()).unwrap_or_default(),
        "status": camera.status,
        "statusFlags": "CSF_NoFlags",
        "addParams": [
            {"name": "firmware", "value": "1.0.0"},
            {"name": "streamUrls", "value": format!("{{\"1\":\"rtsp://{}/stream1\"}}", host_of(&camera.url))},
        ],
        "userDefinedGroupName": "",
    })
}

/// One camera with the REST v1+ field names.
pub fn rest_device_json(cameras: &[SimCamera], camera: &SimCamera) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(camera.id));
    obj.insert("name".into(), json!(camera.name));
    obj.insert("url".into(), json!(camera.url));
    obj.insert("typeId".into(), json!(CAMERA_TYPE_ID));
    obj.insert("physicalId".into(), json!(camera.physical_id));
    obj.insert("mac".into(), json!(camera.mac));
    obj.insert("serverId".into(), json!(SERVER_ID));
    obj.insert("vendor".into(), json!(VENDOR));
    obj.insert("model".into(), json!(MODEL));
    if let Some((id, name)) = group_of(cameras, camera) {
        obj.insert("group".into(), json!({"id": id, "name": name}));
    }
    if let Some(n) = camera.logical_id {
        obj.insert("logicalId".into(), json!(n));
    }
    obj.insert("status".into(), json!(camera.status));
    obj.insert("deviceType".into(), json!("Camera"));
    Value::Object(obj)
}

/// Keeps only the fields named in a `_with=a,b,c` projection.
pub fn project(value: Value, with: Option<&str>) -> Value {
    let Some(with) = with else { return value };
    let keep: Vec<&str> = with
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

/// Whether a device object passes the REST field filters (`?url=…&name=…`):
/// every query parameter not starting with `_` must equal the field's text.
pub fn matches_filters(device: &Value, filters: &[(String, String)]) -> bool {
    filters
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .all(|(k, v)| match device.get(k) {
            Some(Value::String(s)) => s == v,
            Some(Value::Number(n)) => n.to_string() == *v,
            Some(Value::Bool(b)) => b.to_string() == *v,
            _ => false,
        })
}

/// Host part of a camera `url` (as the client is expected to extract it);
/// used only to make plausible stream URLs.
fn host_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or(after_scheme);
    let without_user = authority.rsplit('@').next().unwrap_or(authority);
    without_user.split(':').next().unwrap_or(without_user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::*;

    #[test]
    fn flexible_lookup_by_every_form() {
        let cams = fixture_cameras();
        assert_eq!(
            find_camera(&cams, GATE1_ID).map(|c| c.name.as_str()),
            Some("Gate 1")
        );
        let braced = format!("{{{}}}", GATE1_ID.to_uppercase());
        assert_eq!(
            find_camera(&cams, &braced).map(|c| c.id.as_str()),
            Some(GATE1_ID)
        );
        assert_eq!(
            find_camera(&cams, ENCODER_CH2_PHYSICAL_ID).map(|c| c.id.as_str()),
            Some(ENCODER_CH2_ID)
        );
        // The MAC is shared by both channels; the physical id of channel 1 wins.
        assert_eq!(
            find_camera(&cams, "aa:bb:cc:dd:ee:ff").map(|c| c.id.as_str()),
            Some(ENCODER_CH1_ID)
        );
        assert_eq!(
            find_camera(&cams, "3").map(|c| c.id.as_str()),
            Some(YARD_ID)
        );
        assert!(find_camera(&cams, "0").is_none());
        assert!(find_camera(&cams, "").is_none());
        assert!(find_camera(&cams, "00000000-0000-0000-0000-00000000dead").is_none());
    }

    #[test]
    fn encoder_channels_share_a_group() {
        let cams = fixture_cameras();
        let ch1 = rest_device_json(&cams, &cams[4]);
        let ch2 = rest_device_json(&cams, &cams[5]);
        assert_eq!(ch1["group"]["id"], ENCODER_PHYSICAL_ID);
        assert_eq!(ch1["group"], ch2["group"]);
        assert!(rest_device_json(&cams, &cams[0]).get("group").is_none());
    }

    #[test]
    fn projection_keeps_named_fields_only() {
        let cams = fixture_cameras();
        let projected = project(rest_device_json(&cams, &cams[0]), Some("id,url"));
        assert_eq!(projected, json!({"id": GATE1_ID, "url": "192.168.1.21"}));
    }

    #[test]
    fn host_extraction() {
        assert_eq!(host_of("http://u:p@192.168.1.22:80/onvif"), "192.168.1.22");
        assert_eq!(host_of("192.168.1.23:554"), "192.168.1.23");
        assert_eq!(
            host_of("cam-north.example.local"),
            "cam-north.example.local"
        );
    }
}
