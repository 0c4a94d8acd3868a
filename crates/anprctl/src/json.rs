//! JSON output for scripts: one object per record, built by hand from the
//! proto fields (the generated types do not derive `Serialize`, and a
//! hand-built object also guarantees no password field can slip in). Enum
//! values use the same words as the command-line flags.

use anpr_common::proto::{
    AnalyticOverride, AnalyticSettings, AnalyticSettingsView, Camera, EventSelection, PlateEvent,
    PlateEventKind, VmsTarget, VmsType,
};
use serde_json::{json, Value};

use crate::format::{f32_json, timestamp_json};
use crate::table::{
    auth_label, setting_source, tls_trust_label, DEFAULT_SAMPLE_FPS, DEFAULT_VMS_PORT, SETTINGS,
};

pub fn vms_target(target: &VmsTarget) -> Value {
    let vms_type = match VmsType::try_from(target.r#type) {
        Ok(VmsType::NxGenericEvent) => json!("nx-generic-event"),
        Ok(VmsType::Unspecified) => Value::Null,
        Err(_) => json!(target.r#type),
    };
    let events = match EventSelection::try_from(target.events) {
        Ok(EventSelection::Unspecified | EventSelection::Detect) => json!("detect"),
        Ok(EventSelection::Lost) => json!("lost"),
        Ok(EventSelection::Both) => json!("both"),
        Err(_) => json!(target.events),
    };
    json!({
        "name": target.name,
        "type": vms_type,
        "host": target.host,
        "port": target.port.unwrap_or(DEFAULT_VMS_PORT),
        "use_ssl": target.use_ssl,
        "tls_trust": tls_trust_label(target),
        "pinned_cert_sha256": target.pinned_cert_sha256,
        "login": target.login,
        "password_set": target.password_set,
        "events": events,
        "auth": auth_label(target),
        "prolonged": target.prolonged,
        "enabled": target.enabled.unwrap_or(true),
        "revision": target.revision,
    })
}

pub fn camera(camera: &Camera) -> Value {
    json!({
        "id": camera.id,
        "name": camera.name,
        "rtsp_url": camera.rtsp_url,
        "rtsp_username": camera.rtsp_username,
        "rtsp_password_set": camera.rtsp_password_set,
        "ip_address": camera.ip_address,
        "vms_camera_id": camera.vms_camera_id,
        "encoder_channel": camera.encoder_channel,
        "sample_fps": f32_json(camera.sample_fps.unwrap_or(DEFAULT_SAMPLE_FPS)),
        "enabled": camera.enabled.unwrap_or(true),
        "revision": camera.revision,
        "mask_regions": camera
            .mask_regions
            .iter()
            .map(|r| json!({
                "x": f32_json(r.x),
                "y": f32_json(r.y),
                "width": f32_json(r.width),
                "height": f32_json(r.height),
            }))
            .collect::<Vec<_>>(),
        "status": camera.status.as_ref().map(|status| json!({
            "connected": status.connected,
            "decoded_fps": f32_json(status.decoded_fps),
            "published_fps": f32_json(status.published_fps),
            "dropped_frames": status.dropped_frames,
            "reconnects": status.reconnects,
            "last_error": status.last_error,
            "last_error_at": timestamp_json(status.last_error_at.as_ref()),
            "last_frame_at": timestamp_json(status.last_frame_at.as_ref()),
            "stream": status.stream,
            "ingest_instance": status.ingest_instance,
            "updated_at": timestamp_json(status.updated_at.as_ref()),
        })),
    })
}

/// The set fields of a settings message; unset ones are left out, so an
/// override shows exactly what it overrides.
pub fn analytic_settings(settings: &AnalyticSettings) -> Value {
    let mut object = serde_json::Map::new();
    if let Some(value) = settings.skip_first_reads {
        object.insert("skip_first_reads".into(), json!(value));
    }
    if let Some(value) = settings.min_confidence {
        object.insert("min_confidence".into(), f32_json(value));
    }
    if let Some(value) = settings.lost_timeout_ms {
        object.insert("lost_timeout_ms".into(), json!(value));
    }
    if let Some(value) = settings.grouping_distance {
        object.insert("grouping_distance".into(), json!(value));
    }
    if let Some(formats) = &settings.plate_formats {
        object.insert("plate_formats".into(), json!(formats.patterns));
    }
    Value::Object(object)
}

pub fn analytic_view(view: &AnalyticSettingsView) -> Value {
    let sources: serde_json::Map<String, Value> = SETTINGS
        .iter()
        .map(|column| (column.name.to_string(), json!(setting_source(view, column))))
        .collect();
    let empty = AnalyticSettings::default();
    json!({
        "camera_id": view.camera_id,
        "effective": analytic_settings(view.effective.as_ref().unwrap_or(&empty)),
        "source": sources,
        "defaults": analytic_settings(view.defaults.as_ref().unwrap_or(&empty)),
        "override": analytic_settings(view.r#override.as_ref().unwrap_or(&empty)),
        "revision": view.revision,
    })
}

pub fn analytic_override(entry: &AnalyticOverride) -> Value {
    json!({
        "camera_id": entry.camera_id,
        "settings": analytic_settings(entry.settings.as_ref().unwrap_or(&AnalyticSettings::default())),
        "revision": entry.revision,
    })
}

/// A plate event without its crop image (binary, and large); only whether
/// one is attached.
pub fn plate_event(event: &PlateEvent) -> Value {
    let kind = match PlateEventKind::try_from(event.kind) {
        Ok(kind) => kind
            .subject_token()
            .map_or(Value::Null, |token| json!(token)),
        Err(_) => json!(event.kind),
    };
    let candidates: Vec<Value> = event
        .candidates
        .iter()
        .map(|c| json!({ "text": c.text, "confidence": f32_json(c.confidence) }))
        .collect();
    let bbox = event.best_bbox.as_ref().map_or(Value::Null, |b| {
        json!({
            "x": f32_json(b.x),
            "y": f32_json(b.y),
            "width": f32_json(b.width),
            "height": f32_json(b.height),
        })
    });
    json!({
        "event_id": event.event_id,
        "kind": kind,
        "track_id": event.track_id,
        "camera_id": event.camera_id,
        "camera_ip": event.camera_ip,
        "plate_text": event.plate_text,
        "raw_text": event.raw_text,
        "confidence": f32_json(event.confidence),
        "candidates": candidates,
        "first_seen": timestamp_json(event.first_seen.as_ref()),
        "last_seen": timestamp_json(event.last_seen.as_ref()),
        "event_time": timestamp_json(event.event_time.as_ref()),
        "read_count": event.read_count,
        "has_crop": event.best_crop_jpeg.is_some(),
        "best_bbox": bbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::proto::{PlateCandidate, PlateFormats, TlsTrust};
    use prost_types::Timestamp;

    #[test]
    fn vms_target_json_has_no_password() {
        let mut target = VmsTarget {
            name: "nx1".into(),
            host: "10.0.0.5".into(),
            login: "admin".into(),
            password: "hunter2-secret".into(),
            password_set: true,
            use_ssl: true,
            ..Default::default()
        };
        target.set_type(VmsType::NxGenericEvent);
        target.set_tls_trust(TlsTrust::Insecure);
        target.set_events(EventSelection::Both);
        let value = vms_target(&target);
        assert!(!value.to_string().contains("hunter2"));
        assert_eq!(value["type"], "nx-generic-event");
        assert_eq!(value["port"], 7001);
        assert_eq!(value["tls_trust"], "insecure");
        assert_eq!(value["events"], "both");
        assert_eq!(value["auth"], "auto");
        assert_eq!(value["password_set"], true);
        assert_eq!(value["enabled"], true);
    }

    #[test]
    fn camera_json_has_no_password() {
        let value = camera(&Camera {
            id: "gate-1".into(),
            rtsp_password: "cam-secret".into(),
            rtsp_password_set: true,
            encoder_channel: Some(2),
            ..Default::default()
        });
        assert!(!value.to_string().contains("cam-secret"));
        assert_eq!(value["rtsp_password_set"], true);
        assert_eq!(value["encoder_channel"], 2);
        assert_eq!(value["sample_fps"], 10.0);
    }

    #[test]
    fn analytic_settings_json_lists_only_set_fields() {
        let value = analytic_settings(&AnalyticSettings {
            min_confidence: Some(0.85),
            plate_formats: Some(PlateFormats {
                patterns: vec!["^A".into()],
            }),
            ..Default::default()
        });
        assert_eq!(
            value,
            json!({ "min_confidence": 0.85, "plate_formats": ["^A"] })
        );
    }

    #[test]
    fn plate_event_json_carries_times_and_leaves_the_crop_out() {
        let mut event = PlateEvent {
            event_id: "e1".into(),
            track_id: "t1".into(),
            camera_id: "gate-1".into(),
            plate_text: "ABC1234".into(),
            confidence: 0.93,
            candidates: vec![PlateCandidate {
                text: "ABC1284".into(),
                confidence: 0.41,
            }],
            event_time: Some(Timestamp {
                seconds: 0,
                nanos: 5_000_000,
            }),
            read_count: 5,
            best_crop_jpeg: Some(vec![0xff, 0xd8, 0xff]),
            ..Default::default()
        };
        event.set_kind(PlateEventKind::Lost);
        let value = plate_event(&event);
        assert_eq!(value["kind"], "lost");
        assert_eq!(value["confidence"], 0.93);
        assert_eq!(value["candidates"][0]["confidence"], 0.41);
        assert_eq!(value["event_time"], "1970-01-01T00:00:00.005Z");
        assert_eq!(value["first_seen"], Value::Null);
        assert_eq!(value["has_crop"], true);
        assert!(value.get("best_crop_jpeg").is_none());
    }
}
