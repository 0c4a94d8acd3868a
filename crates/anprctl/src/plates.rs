//! `anprctl plates tail`: the plate events on the bus, one line each, as
//! they are published.

use std::io::Write;

use anpr_common::bus::NatsArgs;
use anpr_common::proto::{PlateEvent, PlateEventKind};
use anpr_common::subjects::{self, validate_token, PREFIX};
use anyhow::{bail, Context as _};
use futures::StreamExt;
use prost::Message as _;

use crate::cli::{KindArg, OutputFormat, PlatesCommand};
use crate::format::rfc3339_millis;
use crate::json;

/// `anpr.v1.plates.<camera>.<kind>`, with `*` for what is not filtered.
pub fn subject(camera: Option<&str>, kind: Option<KindArg>) -> anyhow::Result<String> {
    let camera = match camera {
        Some(id) => {
            // A `.` or `*` here would silently subscribe to something else.
            validate_token(id).with_context(|| format!("--camera {id:?}"))?;
            id
        }
        None => "*",
    };
    let kind = kind
        .and_then(|kind| PlateEventKind::from(kind).subject_token())
        .unwrap_or("*");
    Ok(format!("{PREFIX}.plates.{camera}.{kind}"))
}

/// One event on one line:
/// `2026-11-28T15:04:05.123Z  DETECT  gate-1        ABC1234     0.93  track=1b4e28ba  reads=5`.
///
/// The camera comes from the event, or from the subject for a sender that
/// left it out.
pub fn event_line(event: &PlateEvent, subject: &str) -> String {
    let time = event
        .event_time
        .as_ref()
        .map_or_else(|| "-".to_string(), rfc3339_millis);
    let kind = match PlateEventKind::try_from(event.kind) {
        Ok(PlateEventKind::Detect) => "DETECT".to_string(),
        Ok(PlateEventKind::Update) => "UPDATE".to_string(),
        Ok(PlateEventKind::Lost) => "LOST".to_string(),
        Ok(PlateEventKind::Unspecified) => "-".to_string(),
        Err(_) => format!("KIND{}", event.kind),
    };
    let camera = if event.camera_id.is_empty() {
        subjects::camera_of(subject).unwrap_or("-")
    } else {
        event.camera_id.as_str()
    };
    let plate = if event.plate_text.is_empty() {
        "-"
    } else {
        event.plate_text.as_str()
    };
    let track: String = event.track_id.chars().take(8).collect();
    format!(
        // Fixed widths so a stream of lines reads as columns; longer values
        // push the rest of their line, nothing is cut.
        "{time}  {kind:<6}  {camera:<12}  {plate:<10}  {:.2}  track={}  reads={}",
        event.confidence,
        if track.is_empty() { "-" } else { &track },
        event.read_count
    )
}

pub async fn run(
    command: PlatesCommand,
    nats: &NatsArgs,
    output: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let PlatesCommand::Tail(args) = command;
    let subject = subject(args.camera.as_deref(), args.kind)?;
    // BusError's message already includes its cause; keeping it as a source
    // as well would print the cause twice.
    let client = nats
        .connect("anprctl")
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut subscription = client
        .subscribe(subject.clone())
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    // After the flush the server has the subscription: nothing published from
    // now on is missed, which is what the line below promises.
    client
        .flush()
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    eprintln!("listening on {subject} at {}; Ctrl-C stops", nats.url);

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut printed: u64 = 0;
    while args.count.is_none_or(|count| printed < count) {
        let message = tokio::select! {
            message = subscription.next() => message,
            result = &mut ctrl_c => {
                result.context("waiting for Ctrl-C")?;
                break;
            }
        };
        let Some(message) = message else {
            bail!("the NATS server ended the subscription to {subject}");
        };
        match PlateEvent::decode(message.payload.as_ref()) {
            Ok(event) => {
                match output {
                    OutputFormat::Table => {
                        writeln!(out, "{}", event_line(&event, &message.subject))?
                    }
                    OutputFormat::Json => writeln!(out, "{}", json::plate_event(&event))?,
                }
                // Lines go out as they come, also when stdout is a pipe.
                out.flush()?;
                printed += 1;
            }
            // One bad publisher must not end the view of everyone else's events.
            Err(err) => eprintln!(
                "warning: {}: not a PlateEvent, skipped: {err}",
                message.subject
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    #[test]
    fn subjects_filter_by_camera_and_kind() {
        assert_eq!(subject(None, None).expect("subject"), "anpr.v1.plates.*.*");
        assert_eq!(
            subject(Some("gate-1"), None).expect("subject"),
            "anpr.v1.plates.gate-1.*"
        );
        assert_eq!(
            subject(None, Some(KindArg::Lost)).expect("subject"),
            "anpr.v1.plates.*.lost"
        );
        // The same subject the analytic publishes to.
        assert_eq!(
            subject(Some("gate-1"), Some(KindArg::Detect)).expect("subject"),
            subjects::plates("gate-1", PlateEventKind::Detect).expect("subject")
        );
        let err = subject(Some("gate.1"), None).expect_err("not a token");
        assert!(
            format!("{err:#}").starts_with("--camera \"gate.1\": "),
            "{err:#}"
        );
        assert!(subject(Some(">"), None).is_err());
    }

    #[test]
    fn an_event_is_one_line() {
        let mut event = PlateEvent {
            track_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
            camera_id: "gate-1".into(),
            plate_text: "ABC1234".into(),
            confidence: 0.934,
            read_count: 5,
            event_time: Some(Timestamp {
                seconds: 1_795_878_245,
                nanos: 123_000_000,
            }),
            ..Default::default()
        };
        event.set_kind(PlateEventKind::Detect);
        assert_eq!(
            event_line(&event, "anpr.v1.plates.gate-1.detect"),
            "2026-11-28T15:04:05.123Z  DETECT  gate-1        ABC1234     0.93  track=1b4e28ba  reads=5"
        );
        event.set_kind(PlateEventKind::Lost);
        event.camera_id.clear();
        event.event_time = None;
        event.track_id.clear();
        assert_eq!(
            event_line(&event, "anpr.v1.plates.exit-2.lost"),
            "-  LOST    exit-2        ABC1234     0.93  track=-  reads=5"
        );
    }
}
