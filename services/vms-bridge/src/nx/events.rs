//! Generic Event requests built from plate events, and the classification of
//! the VMS's answer. Pure: no I/O here.

use anpr_common::proto::{PlateEvent, PlateEventKind};
use serde_json::{json, Map, Value};

/// Instant event, or the start/end of a prolonged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    Instant,
    Started,
    Stopped,
}

/// One Generic Event, independent of the API that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericEvent {
    pub source: String,
    pub caption: String,
    pub description: String,
    /// Milliseconds since the epoch; `None` lets the server stamp it.
    pub timestamp_ms: Option<i64>,
    pub state: EventState,
    pub camera_refs: Vec<String>,
}

/// Builds the Generic Event for a plate event, or `None` for a kind that is
/// not sent (UPDATE, UNSPECIFIED). `camera_name` is the event's source.
pub fn generic_event(
    event: &PlateEvent,
    camera_name: &str,
    prolonged: bool,
    camera_refs: Vec<String>,
) -> Option<GenericEvent> {
    let (kind_word, state) = match (event.kind(), prolonged) {
        (PlateEventKind::Detect, false) => ("Detect", EventState::Instant),
        (PlateEventKind::Lost, false) => ("Lost", EventState::Instant),
        (PlateEventKind::Detect, true) => ("Detect", EventState::Started),
        (PlateEventKind::Lost, true) => ("Lost", EventState::Stopped),
        (PlateEventKind::Update | PlateEventKind::Unspecified, _) => return None,
    };
    let plate = [&event.plate_text, &event.raw_text]
        .into_iter()
        .map(|text| text.trim())
        .find(|text| !text.is_empty())
        .unwrap_or("?")
        .to_string();
    let time = event.event_time.as_ref().or(event.last_seen.as_ref());
    let timestamp_ms = time.map(|t| {
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos / 1_000_000))
    });
    // A prolonged pair only closes when start and stop carry the same texts,
    // so neither the kind nor the confidence (which differ) may appear then.
    let description = if prolonged {
        format!("ANPR plate {plate} on {camera_name}")
    } else {
        let confidence = (event.confidence.clamp(0.0, 1.0) * 100.0).round() as u32;
        let at = timestamp_ms
            .map(|ms| format!(" at {}", format_utc(ms)))
            .unwrap_or_default();
        format!("ANPR {kind_word} {plate} {confidence}% on {camera_name}{at}")
    };
    Some(GenericEvent {
        source: camera_name.to_string(),
        caption: plate,
        description,
        timestamp_ms,
        state,
        camera_refs,
    })
}

/// `POST /api/createEvent` JSON body (all versions).
pub fn legacy_body(event: &GenericEvent) -> Value {
    let mut body = common_fields(event);
    if !event.camera_refs.is_empty() {
        body.insert(
            "metadata".into(),
            json!({ "cameraRefs": event.camera_refs }),
        );
    }
    match event.state {
        EventState::Instant => {}
        EventState::Started => {
            body.insert("state".into(), json!("Active"));
        }
        EventState::Stopped => {
            body.insert("state".into(), json!("Inactive"));
        }
    }
    Value::Object(body)
}

/// `POST /rest/v4/events/generic` body (6.1+).
pub fn v4_body(event: &GenericEvent) -> Value {
    let mut body = common_fields(event);
    body.insert("deviceIds".into(), json!(event.camera_refs));
    let state = match event.state {
        EventState::Instant => "instant",
        EventState::Started => "started",
        EventState::Stopped => "stopped",
    };
    body.insert("state".into(), json!(state));
    Value::Object(body)
}

fn common_fields(event: &GenericEvent) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("source".into(), json!(event.source));
    body.insert("caption".into(), json!(event.caption));
    body.insert("description".into(), json!(event.description));
    // Integer milliseconds: the one timestamp form every version parses
    // without losing precision or the time zone.
    if let Some(ms) = event.timestamp_ms {
        body.insert("timestamp".into(), json!(ms.to_string()));
    }
    body
}

/// What a VMS answer means for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused for good: retrying the same request cannot succeed.
    Permanent(String),
    /// Worth retrying later (overload, server error, timeout).
    Retry(String),
    /// Credentials refused; the client re-authenticates.
    Unauthorized,
}

/// Classifies an answer: success is 2xx with `error` absent or "0"; an
/// `error` other than "0" or a 4xx other than 401/408/429 is permanent.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let result = ResultBody::parse(body);
    match status {
        200..=299 => match result.and_then(|r| r.failure()) {
            None => Outcome::Success,
            Some(failure) => Outcome::Permanent(format!("HTTP {status} {failure}")),
        },
        401 => Outcome::Unauthorized,
        408 | 429 | 500..=599 => Outcome::Retry(describe(status, result, body)),
        400..=499 => Outcome::Permanent(describe(status, result, body)),
        _ => Outcome::Retry(format!("unexpected HTTP {status}")),
    }
}

fn describe(status: u16, result: Option<ResultBody>, body: &[u8]) -> String {
    match result {
        Some(result) => format!("HTTP {status} {}", result.text()),
        None => {
            let text = short(String::from_utf8_lossy(body).trim());
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    }
}

/// Nx's result object: `{"error":"2","errorId":"invalidParameter","errorString":"..."}`.
struct ResultBody {
    error: Option<String>,
    error_id: String,
    error_string: String,
}

impl ResultBody {
    fn parse(body: &[u8]) -> Option<Self> {
        let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
            return None;
        };
        let text = |key: &str| match map.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Some(ResultBody {
            error: text("error"),
            error_id: text("errorId").unwrap_or_default(),
            error_string: text("errorString").unwrap_or_default(),
        })
    }

    fn failure(&self) -> Option<String> {
        match self.error.as_deref() {
            None | Some("0") | Some("") => None,
            Some(_) => Some(self.text()),
        }
    }

    fn text(&self) -> String {
        let mut text = String::new();
        if let Some(error) = &self.error {
            text.push_str(&format!("error {error}"));
        }
        if !self.error_id.is_empty() {
            text.push_str(&format!(" {}", self.error_id));
        }
        if !self.error_string.is_empty() {
            text.push_str(&format!(": {}", short(&self.error_string)));
        }
        text.trim().to_string()
    }
}

/// Bounds a server-provided text for logs and the status.
fn short(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// `YYYY-MM-DD HH:MM:SSZ` in UTC.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's days-to-civil algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_common::prost_types::Timestamp;

    fn plate(kind: PlateEventKind) -> PlateEvent {
        PlateEvent {
            event_id: "e1".into(),
            kind: kind as i32,
            camera_id: "gate-1".into(),
            plate_text: "AB123CD".into(),
            confidence: 0.934,
            event_time: Some(Timestamp {
                seconds: 1_795_946_401,
                nanos: 250_000_000,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn hostile_times_and_confidences_do_not_panic() {
        let mut event = plate(PlateEventKind::Detect);
        event.event_time = Some(Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        });
        event.confidence = f32::NAN;
        let generic = generic_event(&event, "Gate 1", false, vec![]).unwrap();
        assert_eq!(generic.timestamp_ms, Some(i64::MAX));
        assert!(
            generic.description.contains(" 0% on Gate 1"),
            "{}",
            generic.description
        );
        event.event_time = Some(Timestamp {
            seconds: i64::MIN,
            nanos: -999_999_999,
        });
        generic_event(&event, "Gate 1", false, vec![]).unwrap();
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_utc(1_795_946_401_250), "2026-11-29 10:00:01Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn instant_events_describe_kind_confidence_camera_and_time() {
        let event = generic_event(
            &plate(PlateEventKind::Detect),
            "Gate 1",
            false,
            vec!["cam".into()],
        )
        .unwrap();
        assert_eq!(event.caption, "AB123CD");
        assert_eq!(event.source, "Gate 1");
        assert_eq!(
            event.description,
            "ANPR Detect AB123CD 93% on Gate 1 at 2026-11-29 10:00:01Z"
        );
        assert_eq!(event.timestamp_ms, Some(1_795_946_401_250));
        let legacy = legacy_body(&event);
        assert_eq!(legacy["timestamp"], "1795946401250");
        assert_eq!(legacy["metadata"]["cameraRefs"][0], "cam");
        assert!(legacy.get("state").is_none());
        let v4 = v4_body(&event);
        assert_eq!(v4["deviceIds"][0], "cam");
        assert_eq!(v4["state"], "instant");
        assert!(generic_event(&plate(PlateEventKind::Update), "Gate 1", false, vec![]).is_none());
        let lost = generic_event(&plate(PlateEventKind::Lost), "Gate 1", false, vec![]).unwrap();
        assert!(lost.description.starts_with("ANPR Lost AB123CD"));
        assert!(legacy_body(&lost).get("metadata").is_none());
        assert_eq!(v4_body(&lost)["deviceIds"], json!([]));
    }

    #[test]
    fn prolonged_pairs_share_their_texts() {
        let start = generic_event(&plate(PlateEventKind::Detect), "Gate 1", true, vec![]).unwrap();
        let mut lost = plate(PlateEventKind::Lost);
        lost.confidence = 0.5;
        let stop = generic_event(&lost, "Gate 1", true, vec![]).unwrap();
        assert_eq!(start.description, "ANPR plate AB123CD on Gate 1");
        assert_eq!(
            (&start.source, &start.caption, &start.description),
            (&stop.source, &stop.caption, &stop.description)
        );
        assert_eq!(legacy_body(&start)["state"], "Active");
        assert_eq!(legacy_body(&stop)["state"], "Inactive");
        assert_eq!(v4_body(&start)["state"], "started");
        assert_eq!(v4_body(&stop)["state"], "stopped");
    }

    #[test]
    fn outcome_table() {
        let cases: [(u16, &[u8], &str); 16] = [
            (200, b"", "success"),
            (200, b"{}", "success"),
            (204, b"", "success"),
            (
                200,
                br#"{"error":"0","errorId":"ok","errorString":""}"#,
                "success",
            ),
            (200, br#"{"error":0}"#, "success"),
            (200, b"not json", "success"),
            (
                200,
                br#"{"error":"2","errorId":"invalidParameter","errorString":"bad state"}"#,
                "permanent",
            ),
            (200, br#"{"error":"4","errorId":"forbidden"}"#, "permanent"),
            (400, b"", "permanent"),
            (
                403,
                br#"{"error":"4","errorId":"forbidden","errorString":"no"}"#,
                "permanent",
            ),
            (422, br#"{"error":"2"}"#, "permanent"),
            (401, b"", "unauthorized"),
            (408, b"", "retry"),
            (429, b"", "retry"),
            (
                500,
                br#"{"error":"6","errorId":"internalServerError"}"#,
                "retry",
            ),
            (503, b"busy", "retry"),
        ];
        for (status, body, expected) in cases {
            let outcome = classify(status, body);
            let got = match outcome {
                Outcome::Success => "success",
                Outcome::Permanent(_) => "permanent",
                Outcome::Retry(_) => "retry",
                Outcome::Unauthorized => "unauthorized",
            };
            assert_eq!(
                got,
                expected,
                "HTTP {status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            classify(
                200,
                br#"{"error":"2","errorId":"invalidParameter","errorString":"bad state"}"#
            ),
            Outcome::Permanent("HTTP 200 error 2 invalidParameter: bad state".into())
        );
        assert_eq!(
            classify(503, b"busy"),
            Outcome::Retry("HTTP 503: busy".into())
        );
        assert_eq!(
            classify(302, b""),
            Outcome::Retry("unexpected HTTP 302".into())
        );
    }
}
