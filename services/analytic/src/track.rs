//! One plate's passage in front of one camera: its votes, its timing and
//! which events it has already produced.

use std::time::{Duration, SystemTime};

use anpr_common::proto::{BoundingBox, PlateCandidate, PlateEvent, PlateEventKind};
use uuid::Uuid;

use crate::frame::Read;
use crate::settings::Settings;
use crate::vote::Ballot;

/// How far a plate may move between reads and still be the same plate, in
/// diagonals of its last box: this much at once...
const MOTION_BASE: f32 = 2.0;
/// ...plus this much per second since its last read (frames may be dropped).
const MOTION_PER_SECOND: f32 = 10.0;
/// Most votes a resumed track's earlier reading counts for.
pub const RESUMED_VOTES: u32 = 5;

#[derive(Debug, Clone)]
pub struct PlateTrack {
    pub track_id: String,
    camera_id: String,
    camera_ip: String,
    ballot: Ballot,
    /// Voted text before format rules, what new reads are compared with.
    voted: Vec<char>,
    first_seen: SystemTime,
    last_seen: SystemTime,
    last_bbox: Option<BoundingBox>,
    best_confidence: f32,
    best_bbox: Option<BoundingBox>,
    best_crop: Option<Vec<u8>>,
    /// Plate text of the last Detect or Update; `None` before Detect.
    reported: Option<String>,
}

impl PlateTrack {
    /// A track with no reads yet; feed its first read with [`add`](Self::add).
    pub fn new(camera_id: &str, camera_ip: &str, at: SystemTime) -> Self {
        PlateTrack {
            track_id: Uuid::new_v4().to_string(),
            camera_id: camera_id.to_string(),
            camera_ip: camera_ip.to_string(),
            ballot: Ballot::default(),
            voted: Vec::new(),
            first_seen: at,
            last_seen: at,
            last_bbox: None,
            best_confidence: -1.0,
            best_bbox: None,
            best_crop: None,
            reported: None,
        }
    }

    /// A detected track continued from its last Detect or Update event, as
    /// published by a replica that no longer holds the camera: same track id
    /// (so its Lost carries the ids the VMS already knows), the plate already
    /// reported (no second Detect), and the event's reading voted once per
    /// read it summarised (up to [`RESUMED_VOTES`]), so that one stray read
    /// does not overturn it. It counts as seen `now` (the takeover): the
    /// plate may still be in view however long ago its last event was, and
    /// if it is gone, the Lost comes one lost timeout later.
    pub fn resumed(event: &PlateEvent, now: SystemTime) -> Option<Self> {
        let seen = |t: &Option<anpr_common::prost_types::Timestamp>| {
            t.as_ref().and_then(|t| SystemTime::try_from(*t).ok())
        };
        let first_seen = seen(&event.first_seen)?;
        let last_seen = seen(&event.last_seen).unwrap_or(first_seen).max(now);
        let text = if event.raw_text.is_empty() {
            &event.plate_text
        } else {
            &event.raw_text
        };
        let read = crate::text::normalise(text, &[], event.confidence)?;
        let mut ballot = Ballot::default();
        for _ in 0..event.read_count.clamp(1, RESUMED_VOTES) {
            ballot.add(&read);
        }
        Some(PlateTrack {
            track_id: event.track_id.clone(),
            camera_id: event.camera_id.clone(),
            camera_ip: event.camera_ip.clone(),
            voted: ballot.voted_chars().unwrap_or_default(),
            ballot,
            first_seen,
            last_seen,
            last_bbox: event.best_bbox,
            best_confidence: event.confidence,
            best_bbox: event.best_bbox,
            best_crop: event.best_crop_jpeg.clone(),
            reported: Some(event.plate_text.clone()),
        })
    }

    pub fn detected(&self) -> bool {
        self.reported.is_some()
    }

    pub fn voted(&self) -> &[char] {
        &self.voted
    }

    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    pub fn last_seen(&self) -> SystemTime {
        self.last_seen
    }

    pub fn set_camera_ip(&mut self, camera_ip: &str) {
        if self.camera_ip != camera_ip {
            self.camera_ip = camera_ip.to_string();
        }
    }

    /// Whether the track lost continuity at `now` (capture time): no read
    /// for `timeout`. A gap of `timeout` backwards counts too: the camera's
    /// time jumped (clock reset, ingest reconnect), and a track must never
    /// wait for a capture time that will not come.
    pub fn timed_out(&self, now: SystemTime, timeout: Duration) -> bool {
        let gap = match now.duration_since(self.last_seen) {
            Ok(forward) => forward,
            Err(backward) => backward.duration(),
        };
        gap >= timeout
    }

    /// How far a read's box is from the last one, in diagonals of the last
    /// box, if it is close enough to be this plate moving; `None` if it is
    /// too far. Reads without a usable box cannot be placed and pass.
    pub fn displacement(&self, bbox: Option<&BoundingBox>, at: SystemTime) -> Option<f32> {
        let (Some(last), Some(next)) = (self.last_bbox.as_ref(), bbox) else {
            return Some(0.0);
        };
        let diagonal = last.width.hypot(last.height);
        if !(diagonal.is_finite() && diagonal > 0.0) {
            return Some(0.0);
        }
        let dx = (next.x + next.width / 2.0) - (last.x + last.width / 2.0);
        let dy = (next.y + next.height / 2.0) - (last.y + last.height / 2.0);
        let moved = dx.hypot(dy) / diagonal;
        if !moved.is_finite() {
            return Some(0.0);
        }
        // Either way in time: with several recognizer replicas (or
        // workers), a camera's reads may arrive slightly out of order, and
        // an earlier read is as far from the last one as a later one.
        let elapsed = match at.duration_since(self.last_seen) {
            Ok(forward) => forward,
            Err(backward) => backward.duration(),
        }
        .as_secs_f32();
        (moved <= MOTION_BASE + MOTION_PER_SECOND * elapsed).then_some(moved)
    }

    /// Adds a read captured at `at`; returns the Detect or Update it causes.
    ///
    /// The read is voted whether or not it counts for Detect: the first
    /// `skip_first_reads` reads and reads below `min_confidence` still carry
    /// information about the characters, weighted by their confidence.
    pub fn add(&mut self, read: Read, at: SystemTime, settings: &Settings) -> Option<PlateEvent> {
        self.ballot.add(&read.text);
        // The latest read sets the time, even if it is earlier than the one
        // before: a single read with a wild capture time must not hold the
        // track open until that time.
        self.last_seen = at;
        if at < self.first_seen {
            self.first_seen = at;
        }
        if read.bbox.is_some() {
            self.last_bbox = read.bbox;
        }
        if read.confidence > self.best_confidence {
            self.best_confidence = read.confidence;
            self.best_bbox = read.bbox;
            self.best_crop = read.crop_jpeg;
        }
        if let Some(voted) = self.ballot.voted_chars() {
            self.voted = voted;
        }

        let verdict = self.ballot.verdict(&settings.formats)?;
        match &self.reported {
            None => {
                let past_skip = self.ballot.reads() > settings.skip_first_reads;
                if past_skip && read.confidence >= settings.min_confidence {
                    self.reported = Some(verdict.plate_text.clone());
                    Some(self.event(PlateEventKind::Detect, at, verdict))
                } else {
                    None
                }
            }
            Some(reported) if *reported != verdict.plate_text => {
                self.reported = Some(verdict.plate_text.clone());
                Some(self.event(PlateEventKind::Update, at, verdict))
            }
            Some(_) => None,
        }
    }

    /// The Lost event with the final vote, stamped with the last read's
    /// capture time; `None` for a track that never reached Detect.
    pub fn lost(&self, settings: &Settings) -> Option<PlateEvent> {
        self.reported.as_ref()?;
        let verdict = self.ballot.verdict(&settings.formats)?;
        Some(self.event(PlateEventKind::Lost, self.last_seen, verdict))
    }

    fn event(
        &self,
        kind: PlateEventKind,
        event_time: SystemTime,
        verdict: crate::vote::Verdict,
    ) -> PlateEvent {
        PlateEvent {
            event_id: event_id(&self.track_id, kind),
            kind: kind as i32,
            track_id: self.track_id.clone(),
            camera_id: self.camera_id.clone(),
            camera_ip: self.camera_ip.clone(),
            plate_text: verdict.plate_text,
            raw_text: verdict.raw_text,
            confidence: verdict.confidence,
            candidates: verdict
                .candidates
                .into_iter()
                .map(|c| PlateCandidate {
                    text: c.text,
                    confidence: c.confidence,
                })
                .collect(),
            first_seen: Some(self.first_seen.into()),
            last_seen: Some(self.last_seen.into()),
            read_count: self.ballot.reads(),
            best_crop_jpeg: self.best_crop.clone(),
            best_bbox: self.best_bbox,
            event_time: Some(event_time.into()),
        }
    }
}

/// Detect and Lost ids follow from the track, so that two replicas that
/// both report it (one about to lose the camera, one that resumed it)
/// publish the same id, and JetStream's duplicate window and the bridge's
/// delivered log keep the VMS free of duplicates. An Update is one of
/// possibly several changes (even back and forth), so it gets a fresh id.
pub fn event_id(track_id: &str, kind: PlateEventKind) -> String {
    match kind {
        PlateEventKind::Detect | PlateEventKind::Lost => {
            let name = format!("{track_id}/{}", kind.as_str_name());
            Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
        }
        _ => Uuid::new_v4().to_string(),
    }
}

/// Namespace of event ids (a random UUID fixed for this purpose).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f0b_3c1e_9a4d_4e8b_b2c7_5d1f_0a93_e64c);
