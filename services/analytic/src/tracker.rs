//! The tracks of one camera: which read belongs to which plate, and when a
//! plate is gone. Pure: frames, settings and times go in, plate events come
//! out; nothing here touches the network or reads a clock.

use std::time::SystemTime;

use anpr_common::proto::PlateEvent;

use crate::frame::Frame;
use crate::settings::Settings;
use crate::text::distance;
use crate::track::PlateTrack;

/// What one step of a tracker produced.
#[derive(Debug, Default)]
pub struct Step {
    /// Events to publish, in order.
    pub events: Vec<PlateEvent>,
    pub tracks_opened: u64,
    /// Tracks that ended without ever reaching Detect.
    pub expired_undetected: u64,
}

impl Step {
    pub fn merge(&mut self, other: Step) {
        self.events.extend(other.events);
        self.tracks_opened += other.tracks_opened;
        self.expired_undetected += other.expired_undetected;
    }
}

#[derive(Debug)]
pub struct CameraTracker {
    camera_id: String,
    tracks: Vec<PlateTrack>,
}

impl CameraTracker {
    pub fn new(camera_id: &str) -> Self {
        CameraTracker {
            camera_id: camera_id.to_string(),
            tracks: Vec::new(),
        }
    }

    pub fn open_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// Continues a track another replica started; `false` if a track with
    /// its id is open here already.
    pub fn resume(&mut self, track: PlateTrack) -> bool {
        if self
            .tracks
            .iter()
            .any(|open| open.track_id == track.track_id)
        {
            return false;
        }
        self.tracks.push(track);
        true
    }

    /// Ids of the open tracks.
    pub fn track_ids(&self) -> impl Iterator<Item = &str> {
        self.tracks.iter().map(|track| track.track_id.as_str())
    }

    /// Takes one frame's reads. Tracks that timed out by this frame's capture
    /// time end first, so a plate that comes back after the timeout starts a
    /// new track. Then every read joins the closest matching track, best
    /// match first, one read per track per frame; the rest open new tracks.
    pub fn on_frame(&mut self, frame: Frame, settings: &Settings) -> Step {
        let mut step = self.expire(frame.capture_time, settings);
        let at = frame.capture_time;
        for track in &mut self.tracks {
            track.set_camera_ip(&frame.camera_ip);
        }

        // Every admissible (read, track) pair with its cost: edit distance
        // first, then how far the plate moved.
        let mut pairs: Vec<(f32, f32, usize, usize)> = Vec::new();
        for (read_index, read) in frame.reads.iter().enumerate() {
            for (track_index, track) in self.tracks.iter().enumerate() {
                let text_distance = distance(&read.text.chars, track.voted());
                if text_distance > settings.grouping_distance {
                    continue;
                }
                if let Some(moved) = track.displacement(read.bbox.as_ref(), at) {
                    pairs.push((text_distance, moved, read_index, track_index));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut track_of_read: Vec<Option<usize>> = vec![None; frame.reads.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, _, read_index, track_index) in pairs {
            if track_of_read[read_index].is_none() && !track_taken[track_index] {
                track_of_read[read_index] = Some(track_index);
                track_taken[track_index] = true;
            }
        }

        for (read, assigned) in frame.reads.into_iter().zip(track_of_read) {
            let track_index = match assigned {
                Some(index) => index,
                None => {
                    self.tracks
                        .push(PlateTrack::new(&self.camera_id, &frame.camera_ip, at));
                    step.tracks_opened += 1;
                    self.tracks.len() - 1
                }
            };
            if let Some(event) = self.tracks[track_index].add(read, at, settings) {
                step.events.push(event);
            }
        }
        step
    }

    /// Ends every track without a read for the lost timeout up to `now`
    /// (capture time of this camera).
    pub fn expire(&mut self, now: SystemTime, settings: &Settings) -> Step {
        let mut step = Step::default();
        let (ended, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|track| track.timed_out(now, settings.lost_timeout));
        self.tracks = open;
        for track in ended {
            end(track, settings, &mut step);
        }
        step
    }

    /// Ends every track at once (shutdown): a detected plate gets its Lost.
    pub fn flush(&mut self, settings: &Settings) -> Step {
        let mut step = Step::default();
        for track in std::mem::take(&mut self.tracks) {
            end(track, settings, &mut step);
        }
        step
    }
}

fn end(track: PlateTrack, settings: &Settings, step: &mut Step) {
    match track.lost(settings) {
        Some(event) => step.events.push(event),
        None => step.expired_undetected += 1,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use anpr_common::proto::{BoundingBox, PlateEventKind};
    use regex::Regex;

    use super::*;
    use crate::frame::Read;
    use crate::text::normalise;

    const CAMERA: &str = "gate-1";

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn at_ms(ms: u64) -> SystemTime {
        t0() + Duration::from_millis(ms)
    }

    fn settings(skip: u32) -> Settings {
        Settings {
            skip_first_reads: skip,
            min_confidence: 0.7,
            lost_timeout: Duration::from_secs(5),
            grouping_distance: 2.0,
            formats: Vec::new(),
        }
    }

    fn read(text: &str, confidence: f32, x: f32) -> Read {
        let confidences = vec![confidence; text.len()];
        Read {
            text: normalise(text, &confidences, confidence).expect("valid text"),
            confidence,
            bbox: Some(BoundingBox {
                x,
                y: 500.0,
                width: 120.0,
                height: 30.0,
            }),
            crop_jpeg: Some(format!("crop-{text}-{confidence}").into_bytes()),
        }
    }

    fn frame(ms: u64, reads: Vec<Read>) -> Frame {
        Frame {
            camera_id: CAMERA.into(),
            camera_ip: "10.0.0.9".into(),
            sequence: ms,
            capture_time: at_ms(ms),
            reads,
            repaired_reads: 0,
            skipped_reads: 0,
        }
    }

    fn kinds(events: &[PlateEvent]) -> Vec<PlateEventKind> {
        events.iter().map(|e| e.kind()).collect()
    }

    #[test]
    fn reads_arriving_out_of_order_stay_on_one_track() {
        // A car moving 300 px (about 2.4 box diagonals) every 300 ms. The
        // read of 300 ms arrives after the one of 600 ms (two recognizer
        // replicas finished in the other order).
        let mut tracker = CameraTracker::new(CAMERA);
        let mut events = Vec::new();
        for (ms, x) in [(0u64, 100.0), (600, 700.0), (300, 400.0), (900, 1000.0)] {
            let step = tracker.on_frame(frame(ms, vec![read("FAST12", 0.9, x)]), &settings(0));
            events.extend(step.events);
        }
        assert_eq!(kinds(&events), [PlateEventKind::Detect]);
        assert_eq!(tracker.open_tracks(), 1);
    }

    #[test]
    fn detect_comes_after_skipping_the_first_reads() {
        for skip in [0u32, 1, 3] {
            let mut tracker = CameraTracker::new(CAMERA);
            let mut events = Vec::new();
            for i in 0..6u64 {
                let step = tracker.on_frame(
                    frame(i * 100, vec![read("ABC123", 0.9, 100.0)]),
                    &settings(skip),
                );
                if !step.events.is_empty() {
                    events.push((i, step.events));
                }
            }
            assert_eq!(events.len(), 1, "skip {skip}: {events:?}");
            let (index, detect) = &events[0];
            assert_eq!(*index, u64::from(skip), "Detect on read {}", skip + 1);
            assert_eq!(kinds(detect), [PlateEventKind::Detect]);
            assert_eq!(detect[0].read_count, skip + 1);
            assert_eq!(
                detect[0].event_time,
                Some(at_ms(u64::from(skip) * 100).into())
            );
        }
    }

    #[test]
    fn detect_waits_for_min_confidence() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(1);
        assert!(tracker
            .on_frame(frame(0, vec![read("ABC123", 0.9, 100.0)]), &s)
            .events
            .is_empty());
        // Past the skipped read, but below the minimum confidence.
        assert!(tracker
            .on_frame(frame(100, vec![read("ABC123", 0.5, 100.0)]), &s)
            .events
            .is_empty());
        let step = tracker.on_frame(frame(200, vec![read("ABC123", 0.8, 100.0)]), &s);
        assert_eq!(kinds(&step.events), [PlateEventKind::Detect]);
        let detect = &step.events[0];
        assert_eq!(detect.read_count, 3);
        assert_eq!(detect.camera_id, CAMERA);
        assert_eq!(detect.camera_ip, "10.0.0.9");
        assert_eq!(detect.first_seen, Some(at_ms(0).into()));
        assert_eq!(detect.last_seen, Some(at_ms(200).into()));
        // The best crop is that of the highest-confidence read.
        assert_eq!(
            detect.best_crop_jpeg.as_deref(),
            Some(&b"crop-ABC123-0.9"[..])
        );
    }

    #[test]
    fn update_when_the_voted_text_changes_then_lost_with_final_vote() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(0);
        let detect = tracker
            .on_frame(frame(0, vec![read("ABC128", 0.8, 100.0)]), &s)
            .events;
        assert_eq!(kinds(&detect), [PlateEventKind::Detect]);
        assert_eq!(detect[0].plate_text, "ABC128");
        // Same vote again: nothing new.
        assert!(tracker
            .on_frame(frame(100, vec![read("ABC128", 0.8, 110.0)]), &s)
            .events
            .is_empty());
        // Two sharper reads outvote the last character.
        assert!(tracker
            .on_frame(frame(200, vec![read("ABC123", 0.85, 120.0)]), &s)
            .events
            .is_empty());
        let update = tracker
            .on_frame(frame(300, vec![read("ABC123", 0.95, 130.0)]), &s)
            .events;
        assert_eq!(kinds(&update), [PlateEventKind::Update]);
        assert_eq!(update[0].plate_text, "ABC123");
        assert_eq!(update[0].candidates[0].text, "ABC128");
        assert_eq!(update[0].track_id, detect[0].track_id);
        assert_ne!(update[0].event_id, detect[0].event_id);

        // Empty frames keep time moving; 5 s after the last read it is lost.
        assert!(tracker.on_frame(frame(5_200, vec![]), &s).events.is_empty());
        let lost = tracker.on_frame(frame(5_300, vec![]), &s).events;
        assert_eq!(kinds(&lost), [PlateEventKind::Lost]);
        assert_eq!(lost[0].plate_text, "ABC123");
        assert_eq!(lost[0].read_count, 4);
        assert_eq!(lost[0].event_time, Some(at_ms(300).into()));
        assert_eq!(lost[0].track_id, detect[0].track_id);
        assert_eq!(tracker.open_tracks(), 0);
    }

    #[test]
    fn confusable_reads_join_the_same_track() {
        let mut tracker = CameraTracker::new(CAMERA);
        let mut s = settings(0);
        s.grouping_distance = 1.0;
        tracker.on_frame(frame(0, vec![read("AB0123", 0.9, 100.0)]), &s);
        // O/0 and I/1 cost 0.5 each: distance 1 joins.
        let step = tracker.on_frame(frame(100, vec![read("ABO I23", 0.9, 100.0)]), &s);
        assert_eq!(step.tracks_opened, 0);
        // Two ordinary substitutions (distance 2) do not.
        let step = tracker.on_frame(frame(200, vec![read("XY0123", 0.9, 100.0)]), &s);
        assert_eq!(step.tracks_opened, 1);
        assert_eq!(tracker.open_tracks(), 2);
    }

    #[test]
    fn two_plates_in_one_frame_make_two_tracks() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(0);
        let first = tracker.on_frame(
            frame(
                0,
                vec![read("ABC123", 0.9, 100.0), read("ABC124", 0.9, 1200.0)],
            ),
            &s,
        );
        assert_eq!(first.tracks_opened, 2);
        assert_eq!(
            kinds(&first.events),
            [PlateEventKind::Detect, PlateEventKind::Detect]
        );
        assert_ne!(first.events[0].track_id, first.events[1].track_id);
        // Both texts are within distance of both tracks; each read goes to
        // its best match and no track takes two reads of one frame.
        let next = tracker.on_frame(
            frame(
                100,
                vec![read("ABC124", 0.9, 1210.0), read("ABC123", 0.9, 110.0)],
            ),
            &s,
        );
        assert_eq!(next.tracks_opened, 0);
        assert!(next.events.is_empty(), "{:?}", next.events);
        let lost = tracker.flush(&s).events;
        let mut texts: Vec<_> = lost.iter().map(|e| e.plate_text.as_str()).collect();
        texts.sort();
        assert_eq!(texts, ["ABC123", "ABC124"]);
        assert!(lost.iter().all(|e| e.read_count == 2));
    }

    #[test]
    fn same_text_far_away_is_another_plate() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(0);
        tracker.on_frame(frame(0, vec![read("ABC123", 0.9, 100.0)]), &s);
        let step = tracker.on_frame(frame(100, vec![read("ABC123", 0.9, 3000.0)]), &s);
        assert_eq!(step.tracks_opened, 1);
    }

    #[test]
    fn reappearance_after_the_timeout_is_a_new_track() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(0);
        let detect = tracker
            .on_frame(frame(0, vec![read("ABC123", 0.9, 100.0)]), &s)
            .events;
        let again = tracker.on_frame(frame(6_000, vec![read("ABC123", 0.9, 100.0)]), &s);
        assert_eq!(
            kinds(&again.events),
            [PlateEventKind::Lost, PlateEventKind::Detect]
        );
        assert_eq!(again.events[0].track_id, detect[0].track_id);
        assert_ne!(again.events[1].track_id, detect[0].track_id);
        assert_eq!(again.tracks_opened, 1);
    }

    #[test]
    fn never_detected_track_expires_silently() {
        let mut tracker = CameraTracker::new(CAMERA);
        let s = settings(2);
        // Two reads, both skipped.
        tracker.on_frame(frame(0, vec![read("ABC123", 0.9, 100.0)]), &s);
        tracker.on_frame(frame(100, vec![read("ABC123", 0.9, 100.0)]), &s);
        let step = tracker.expire(at_ms(5_100), &s);
        assert!(step.events.is_empty());
        assert_eq!(step.expired_undetected, 1);
        assert_eq!(tracker.open_tracks(), 0);
    }

    #[test]
    fn format_rules_pick_the_plate_text() {
        let mut tracker = CameraTracker::new(CAMERA);
        let mut s = settings(0);
        s.formats = vec![Regex::new("^(?:[A-Z]{3}[0-9]{3})$").expect("regex")];
        let events = tracker
            .on_frame(frame(0, vec![read("ABC12O", 0.9, 100.0)]), &s)
            .events;
        // The only reading fits no format as read, but does with its O
        // read as the digit the format wants there.
        assert_eq!(events[0].plate_text, "ABC120");
        assert_eq!(events[0].raw_text, "ABC12O");
        tracker.on_frame(frame(100, vec![read("ABC120", 0.8, 100.0)]), &s);
        let lost = tracker.flush(&s).events;
        assert_eq!(lost[0].plate_text, "ABC120");
        assert_eq!(lost[0].raw_text, "ABC12O");
        assert_eq!(lost[0].candidates[0].text, "ABC12O");
    }
}
