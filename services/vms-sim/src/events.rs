//! Generic events: the normalised record the simulator keeps, and the
//! parameter validation of the two endpoints (`/api/createEvent`, VMS notes
//! §1.1; `/rest/v4/events/generic`, §1.2), with the server's error texts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cameras::find_camera;
use crate::config::SimCamera;
use crate::timestamp::parse_event_timestamp;

/// An event the simulator received, as `GET /_fake/events` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    /// `"legacy"` (`/api/createEvent`) or `"v4"` (`/rest/v4/events/generic`).
    pub api: String,
    /// HTTP method used.
    pub method: String,
    pub source: String,
    pub caption: String,
    pub description: String,
    /// `metadata.cameraRefs` (legacy) or `deviceIds` (v4), as sent.
    pub camera_refs: Vec<String>,
    /// Ids of the cameras the refs resolved to; unknown refs are left out.
    pub resolved_camera_ids: Vec<String>,
    /// Legacy `Active`/`Inactive`/`Undefined` or v4 `instant`/`started`/`stopped`/`none`.
    pub state: Option<String>,
    /// The event time as the server reads the `timestamp` parameter.
    pub timestamp_ms: Option<i64>,
    /// Simulator clock when the request arrived.
    pub received_at_ms: i64,
    /// How the caller authenticated (`bearer`, `digest`, `basic`…).
    pub auth_method: String,
    /// Login of the caller.
    pub user: String,
}

/// The event fields both APIs share, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    pub source: String,
    pub caption: String,
    pub description: String,
    pub camera_refs: Vec<String>,
    pub state: Option<String>,
    pub timestamp_ms: i64,
}

impl EventFields {
    /// The record of these fields, with refs resolved against `cameras`.
    pub fn into_record(
        self,
        api: &str,
        method: &str,
        cameras: &[SimCamera],
        received_at_ms: i64,
        auth_method: &str,
        user: &str,
    ) -> RecordedEvent {
        let resolved_camera_ids = self
            .camera_refs
            .iter()
            .filter_map(|r| find_camera(cameras, r))
            .map(|c| c.id.clone())
            .collect();
        RecordedEvent {
            api: api.to_string(),
            method: method.to_string(),
            source: self.source,
            caption: self.caption,
            description: self.description,
            camera_refs: self.camera_refs,
            resolved_camera_ids,
            state: self.state,
            timestamp_ms: Some(self.timestamp_ms),
            received_at_ms,
            auth_method: auth_method.to_string(),
            user: user.to_string(),
        }
    }
}

/// Outcome of a valid legacy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyEvent {
    /// A Generic Event (`event_type` absent or `userDefinedEvent`).
    Generic(EventFields),
    /// Another event type the API can inject; accepted, not a Generic Event.
    Other(String),
}

/// A legacy request parameter: query text, or a JSON value from the body.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Json(Value),
}

const LEGACY_STATES: [&str; 3] = ["Active", "Inactive", "Undefined"];

/// Event types `/api/createEvent` accepts in `event_type`.
const EVENT_TYPES: [&str; 20] = [
    "undefinedEvent",
    "cameraMotionEvent",
    "cameraInputEvent",
    "cameraDisconnectEvent",
    "storageFailureEvent",
    "networkIssueEvent",
    "cameraIpConflictEvent",
    "serverFailureEvent",
    "serverConflictEvent",
    "serverStartEvent",
    "licenseIssueEvent",
    "backupFinishedEvent",
    "softwareTriggerEvent",
    "analyticsSdkEvent",
    "pluginDiagnosticEvent",
    "poeOverBudgetEvent",
    "fanErrorEvent",
    "serverCertificateError",
    "ldapSyncIssueEvent",
    "userDefinedEvent",
];

const REASON_CODES: [&str; 12] = [
    "none",
    "networkNoFrame",
    "networkConnectionClosed",
    "networkRtpPacketLoss",
    "serverTerminated",
    "serverStarted",
    "networkNoResponseFromDevice",
    "licenseRemoved",
    "backupDone",
    "storageIoError",
    "storageTooSlow",
    "storageFull",
];

/// The error text the legacy API gives for an invalid value.
fn invalid(name: &str, hint: &str) -> String {
    format!("Invalid value for parameter '{name}'. {hint}")
}

/// Text of a scalar parameter; JSON numbers and booleans are read as text.
fn text(params: &[(String, Param)], name: &str) -> Result<Option<String>, String> {
    match params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v) {
        None | Some(Param::Json(Value::Null)) => Ok(None),
        Some(Param::Text(t)) => Ok(Some(t.clone())),
        Some(Param::Json(Value::String(s))) => Ok(Some(s.clone())),
        Some(Param::Json(Value::Number(n))) => Ok(Some(n.to_string())),
        Some(Param::Json(Value::Bool(b))) => Ok(Some(b.to_string())),
        Some(Param::Json(_)) => Err(invalid(name, "Expected a string.")),
    }
}

/// Validates `/api/createEvent` parameters (query and/or JSON body; later
/// entries win). `Err` carries the `errorString` of an error-2 result.
pub fn parse_legacy(params: &[(String, Param)], now_ms: i64) -> Result<LegacyEvent, String> {
    let state = match text(params, "state")? {
        None => None,
        Some(s) => match LEGACY_STATES.iter().find(|v| v.eq_ignore_ascii_case(&s)) {
            Some(v) => Some((*v).to_string()),
            None => {
                return Err(invalid(
                    "state",
                    &format!("Got '{s}', expected one of: Active, Inactive, Undefined."),
                ))
            }
        },
    };
    let event_type = text(params, "event_type")?;
    if let Some(t) = &event_type {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(invalid("event_type", &format!("Unknown event type '{t}'.")));
        }
    }
    if let Some(code) = text(params, "reasonCode")? {
        if !REASON_CODES.contains(&code.as_str()) {
            return Err(invalid(
                "reasonCode",
                &format!("Unknown reason code '{code}'."),
            ));
        }
    }
    let camera_refs = legacy_camera_refs(params)?;
    if let Some(t) = event_type.filter(|t| t != "userDefinedEvent") {
        return Ok(LegacyEvent::Other(t));
    }
    let source = text(params, "source")?.unwrap_or_default();
    let caption = text(params, "caption")?.unwrap_or_default();
    let description = text(params, "description")?.unwrap_or_default();
    if source.is_empty() && caption.is_empty() && description.is_empty() {
        return Err(
            "At least one of values 'source', 'caption' or 'description' should be filled"
                .to_string(),
        );
    }
    let timestamp = text(params, "timestamp")?;
    Ok(LegacyEvent::Generic(EventFields {
        source,
        caption,
        description,
        camera_refs,
        state,
        timestamp_ms: parse_event_timestamp(timestamp.as_deref(), now_ms),
    }))
}

/// `metadata.cameraRefs`; metadata must be a JSON object (or its JSON text).
fn legacy_camera_refs(params: &[(String, Param)]) -> Result<Vec<String>, String> {
    let bad = || {
        invalid(
            "metadata",
            "It should be a JSON object like {\"cameraRefs\":[\"<camera id>\"]}.",
        )
    };
    let metadata = match params
        .iter()
        .rev()
        .find(|(k, _)| k == "metadata")
        .map(|(_, v)| v)
    {
        None | Some(Param::Json(Value::Null)) => return Ok(Vec::new()),
        Some(Param::Text(t)) if t.trim().is_empty() => return Ok(Vec::new()),
        Some(Param::Text(t)) | Some(Param::Json(Value::String(t))) => {
            serde_json::from_str::<Value>(t).map_err(|_| bad())?
        }
        Some(Param::Json(v)) => v.clone(),
    };
    let Value::Object(map) = metadata else {
        return Err(bad());
    };
    string_array(map.get("cameraRefs")).ok_or_else(bad)
}

/// An absent/null value is an empty list; otherwise it must be an array of strings.
fn string_array(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => None,
    }
}

/// Why a v4 request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V4Error {
    /// Not a JSON object: 400.
    Malformed(String),
    /// A field with a wrong type or value: 422.
    InvalidParameter(String),
}

const V4_STATES: [&str; 4] = ["instant", "started", "stopped", "none"];

/// Validates a `POST /rest/v4/events/generic` body.
pub fn parse_v4(body: &[u8], now_ms: i64) -> Result<EventFields, V4Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| V4Error::Malformed(format!("Invalid JSON in request body: {e}")))?;
    let Value::Object(map) = value else {
        return Err(V4Error::Malformed(
            "Request body must be a JSON object".to_string(),
        ));
    };
    let state = v4_string(&map, "state")?;
    if let Some(s) = &state {
        if !V4_STATES.contains(&s.as_str()) {
            return Err(V4Error::InvalidParameter(format!(
                "Invalid parameter `state`: '{s}' is not one of instant, started, stopped, none"
            )));
        }
    }
    let camera_refs = string_array(map.get("deviceIds")).ok_or_else(|| {
        V4Error::InvalidParameter(
            "Invalid parameter `deviceIds`: expected an array of device id strings".to_string(),
        )
    })?;
    let timestamp = v4_string(&map, "timestamp")?;
    Ok(EventFields {
        source: v4_string(&map, "source")?.unwrap_or_default(),
        caption: v4_string(&map, "caption")?.unwrap_or_default(),
        description: v4_string(&map, "description")?.unwrap_or_default(),
        camera_refs,
        state,
        timestamp_ms: parse_event_timestamp(timestamp.as_deref(), now_ms),
    })
}

fn v4_string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, V4Error> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(V4Error::InvalidParameter(format!(
            "Invalid parameter `{name}`: expected a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, Param)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Param::Text(v.to_string())))
            .collect()
    }

    #[test]
    fn legacy_query_event() {
        let got = parse_legacy(
            &q(&[
                ("caption", "AB123CD"),
                ("metadata", r#"{"cameraRefs":["x","y"]}"#),
                ("timestamp", "1718553761123"),
                ("state", "active"),
            ]),
            NOW,
        )
        .unwrap();
        let LegacyEvent::Generic(f) = got else {
            panic!("not generic")
        };
        assert_eq!(f.caption, "AB123CD");
        assert_eq!(f.camera_refs, vec!["x", "y"]);
        assert_eq!(f.timestamp_ms, 1_718_553_761_123);
        assert_eq!(f.state.as_deref(), Some("Active"));
    }

    #[test]
    fn legacy_validation_errors() {
        let err = parse_legacy(&q(&[("caption", "A"), ("state", "Begin")]), NOW).unwrap_err();
        assert!(
            err.starts_with("Invalid value for parameter 'state'"),
            "{err}"
        );
        let err =
            parse_legacy(&q(&[("caption", "A"), ("metadata", "cameraRefs")]), NOW).unwrap_err();
        assert!(
            err.starts_with("Invalid value for parameter 'metadata'"),
            "{err}"
        );
        let err = parse_legacy(&q(&[("caption", "A"), ("event_type", "boom")]), NOW).unwrap_err();
        assert!(
            err.starts_with("Invalid value for parameter 'event_type'"),
            "{err}"
        );
        let err = parse_legacy(&q(&[("metadata", r#"{"cameraRefs":["x"]}"#)]), NOW).unwrap_err();
        assert_eq!(
            err,
            "At least one of values 'source', 'caption' or 'description' should be filled"
        );
    }

    #[test]
    fn legacy_json_metadata_as_object_or_string() {
        for metadata in [
            json!({"cameraRefs": ["a"]}),
            json!("{\"cameraRefs\":[\"a\"]}"),
        ] {
            let params = vec![
                ("caption".to_string(), Param::Json(json!("P1"))),
                ("metadata".to_string(), Param::Json(metadata)),
                (
                    "timestamp".to_string(),
                    Param::Json(json!(1718553761123_i64)),
                ),
            ];
            let LegacyEvent::Generic(f) = parse_legacy(&params, NOW).unwrap() else {
                panic!("not generic")
            };
            assert_eq!(f.camera_refs, vec!["a"]);
            assert_eq!(f.timestamp_ms, 1_718_553_761_123);
        }
        let params = vec![("metadata".to_string(), Param::Json(json!([1])))];
        assert!(parse_legacy(&params, NOW).is_err());
    }

    #[test]
    fn legacy_other_event_types_need_no_text() {
        let got = parse_legacy(&q(&[("event_type", "cameraInputEvent")]), NOW).unwrap();
        assert_eq!(got, LegacyEvent::Other("cameraInputEvent".into()));
    }

    #[test]
    fn v4_validation() {
        let ok = parse_v4(
            br#"{"state":"instant","caption":"P","deviceIds":["a"],"timestamp":"now"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(ok.timestamp_ms, NOW);
        assert_eq!(ok.camera_refs, vec!["a"]);
        assert!(matches!(
            parse_v4(br#"{"state":"active"}"#, NOW),
            Err(V4Error::InvalidParameter(m)) if m.starts_with("Invalid parameter `state`")
        ));
        assert!(matches!(
            parse_v4(br#"{"caption":"P","deviceIds":"a"}"#, NOW),
            Err(V4Error::InvalidParameter(m)) if m.contains("deviceIds")
        ));
        assert!(matches!(
            parse_v4(b"{nope", NOW),
            Err(V4Error::Malformed(_))
        ));
        assert!(matches!(parse_v4(b"[1]", NOW), Err(V4Error::Malformed(_))));
    }
}
