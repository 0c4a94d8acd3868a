//! What the previous holder of a camera left open: the detected tracks whose
//! Lost was never published (it died, or handed the camera over at
//! shutdown), read back from the plate stream, so the new holder continues
//! them instead of reporting the same car again.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anpr_common::proto::{PlateEvent, PlateEventKind};
use anpr_common::subjects;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use prost::Message as _;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("reading the plate stream: {0}")]
    Stream(String),
    #[error("reading the plate stream took longer than {0:?}")]
    TimedOut(Duration),
}

/// The latest Detect or Update of every track of `camera` published since
/// `since` that has no Lost, oldest first.
pub async fn open_tracks(
    js: &jetstream::Context,
    camera: &str,
    since: SystemTime,
    timeout: Duration,
) -> Result<Vec<PlateEvent>, ResumeError> {
    tokio::time::timeout(timeout, read(js, camera, since))
        .await
        .map_err(|_| ResumeError::TimedOut(timeout))?
}

async fn read(
    js: &jetstream::Context,
    camera: &str,
    since: SystemTime,
) -> Result<Vec<PlateEvent>, ResumeError> {
    let failed = |error: &dyn std::fmt::Display| ResumeError::Stream(error.to_string());
    let stream = js
        .get_stream(subjects::PLATE_STREAM)
        .await
        .map_err(|e| failed(&e))?;
    let start_time = time::OffsetDateTime::from(since);
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            // One camera, every kind: a single filter works on NATS 2.9.
            filter_subject: subjects::camera_plates(camera),
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time },
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let pending = ordered.cached_info().num_pending;
    let mut tracks = Tracks::default();
    if pending == 0 {
        return Ok(tracks.open());
    }
    let mut messages = ordered.messages().await.map_err(|e| failed(&e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| failed(&e))?;
        let left = message.info().map(|info| info.pending).unwrap_or(0);
        // A message that does not decode is someone else's business here.
        if let Ok(event) = PlateEvent::decode(message.payload.as_ref()) {
            tracks.add(event);
        }
        if left == 0 {
            break;
        }
    }
    Ok(tracks.open())
}

/// Folds a camera's events in stream order into its open tracks.
#[derive(Default)]
struct Tracks {
    order: Vec<String>,
    latest: HashMap<String, Option<PlateEvent>>,
}

impl Tracks {
    fn add(&mut self, event: PlateEvent) {
        let track = event.track_id.clone();
        if !self.latest.contains_key(&track) {
            self.order.push(track.clone());
        }
        match event.kind() {
            PlateEventKind::Detect | PlateEventKind::Update => {
                let entry = self.latest.entry(track).or_insert(None);
                // A Lost seen earlier closes the track for good.
                if !matches!(entry, Some(e) if e.kind() == PlateEventKind::Lost) {
                    *entry = Some(event);
                }
            }
            PlateEventKind::Lost => {
                self.latest.insert(track, Some(event));
            }
            PlateEventKind::Unspecified => {}
        }
    }

    fn open(mut self) -> Vec<PlateEvent> {
        self.order
            .iter()
            .filter_map(|track| self.latest.remove(track).flatten())
            .filter(|event| event.kind() != PlateEventKind::Lost)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(track: &str, kind: PlateEventKind, text: &str) -> PlateEvent {
        PlateEvent {
            track_id: track.into(),
            kind: kind as i32,
            plate_text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn open_tracks_are_those_without_lost() {
        let mut tracks = Tracks::default();
        tracks.add(event("a", PlateEventKind::Detect, "ABC1"));
        tracks.add(event("b", PlateEventKind::Detect, "XYZ9"));
        tracks.add(event("a", PlateEventKind::Lost, "ABC1"));
        tracks.add(event("b", PlateEventKind::Update, "XYZ8"));
        tracks.add(event("c", PlateEventKind::Detect, "KKK1"));
        let open = tracks.open();
        let summary: Vec<_> = open
            .iter()
            .map(|e| (e.track_id.as_str(), e.plate_text.as_str()))
            .collect();
        assert_eq!(summary, [("b", "XYZ8"), ("c", "KKK1")]);
    }

    #[test]
    fn a_late_update_does_not_reopen_a_lost_track() {
        let mut tracks = Tracks::default();
        tracks.add(event("a", PlateEventKind::Detect, "ABC1"));
        tracks.add(event("a", PlateEventKind::Lost, "ABC1"));
        tracks.add(event("a", PlateEventKind::Update, "ABC2"));
        assert!(tracks.open().is_empty());
    }
}
