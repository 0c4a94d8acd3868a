//! Every camera's tracker, and the time keeping that ends the tracks of a
//! camera that stopped sending frames. Still no I/O: the service feeds it
//! frames and periodic sweeps and publishes what comes out.
//!
//! A track's timeout is measured in the capture time of its camera's frames.
//! When frames stop coming there is no capture time to measure with, so the
//! sweep estimates the camera's "now" as the capture time of its last frame
//! plus the wall time (from the [`Clock`]) since that frame arrived.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::Clock;
use crate::frame::Frame;
use crate::settings::Settings;
use crate::track::PlateTrack;
use crate::tracker::{CameraTracker, Step};

struct CameraSlot {
    tracker: CameraTracker,
    /// Capture time of the camera's latest frame to arrive.
    last_capture: SystemTime,
    /// Wall time at which that frame arrived.
    arrived_at: SystemTime,
}

pub struct Engine {
    cameras: HashMap<String, CameraSlot>,
    clock: Arc<dyn Clock>,
}

impl Engine {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Engine {
            cameras: HashMap::new(),
            clock,
        }
    }

    /// Tracks open over every camera.
    pub fn open_tracks(&self) -> usize {
        self.cameras
            .values()
            .map(|slot| slot.tracker.open_tracks())
            .sum()
    }

    pub fn on_frame(&mut self, frame: Frame, settings: &Settings) -> Step {
        let arrived_at = self.clock.now();
        let slot = self
            .cameras
            .entry(frame.camera_id.clone())
            .or_insert_with(|| CameraSlot {
                tracker: CameraTracker::new(&frame.camera_id),
                last_capture: frame.capture_time,
                arrived_at,
            });
        // The latest frame to arrive sets the camera's time, also when it is
        // earlier than the one before (a camera clock stepping back): one
        // frame with a wild capture time must not skew the camera for good.
        slot.last_capture = frame.capture_time;
        slot.arrived_at = arrived_at;
        slot.tracker.on_frame(frame, settings)
    }

    /// Ends the tracks that timed out by each camera's estimated current
    /// capture time. Cameras left without tracks are forgotten.
    pub fn sweep(&mut self, settings_for: &mut dyn FnMut(&str) -> Arc<Settings>) -> Step {
        let wall_now = self.clock.now();
        let mut step = Step::default();
        for (camera_id, slot) in &mut self.cameras {
            let quiet = wall_now.duration_since(slot.arrived_at).unwrap_or_default();
            let camera_now = slot.last_capture + quiet;
            step.merge(slot.tracker.expire(camera_now, &settings_for(camera_id)));
        }
        self.cameras
            .retain(|_, slot| slot.tracker.open_tracks() > 0);
        step
    }

    /// Continues `track`, which another replica started on a camera this
    /// one has just taken over. The camera's time starts at the track's last
    /// read, so with no new reads it ends one lost timeout from now.
    pub fn resume(&mut self, track: PlateTrack) -> bool {
        let arrived_at = self.clock.now();
        let camera_id = track.camera_id().to_string();
        let last_seen = track.last_seen();
        let slot = self
            .cameras
            .entry(camera_id.clone())
            .or_insert_with(|| CameraSlot {
                tracker: CameraTracker::new(&camera_id),
                last_capture: last_seen,
                arrived_at,
            });
        slot.tracker.resume(track)
    }

    /// Drops a camera's tracks without ending them (another replica has
    /// taken the camera over and continues them); returns their ids.
    pub fn forget(&mut self, camera_id: &str) -> Vec<String> {
        self.cameras
            .remove(camera_id)
            .map(|slot| slot.tracker.track_ids().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Ends every track of every camera (shutdown).
    pub fn flush(&mut self, settings_for: &mut dyn FnMut(&str) -> Arc<Settings>) -> Step {
        let mut step = Step::default();
        for (camera_id, mut slot) in self.cameras.drain() {
            step.merge(slot.tracker.flush(&settings_for(&camera_id)));
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use anpr_common::proto::PlateEventKind;

    use super::*;
    use crate::clock::ManualClock;
    use crate::frame::Read;
    use crate::text::normalise;

    fn frame(camera: &str, capture_time: SystemTime, text: Option<&str>) -> Frame {
        Frame {
            camera_id: camera.into(),
            camera_ip: String::new(),
            sequence: 0,
            capture_time,
            reads: text
                .map(|text| Read {
                    text: normalise(text, &[], 0.9).expect("text"),
                    confidence: 0.9,
                    bbox: None,
                    crop_jpeg: None,
                })
                .into_iter()
                .collect(),
            repaired_reads: 0,
            skipped_reads: 0,
        }
    }

    #[test]
    fn tracks_expire_when_the_camera_goes_silent() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = Arc::new(ManualClock::new(start));
        let mut engine = Engine::new(clock.clone());
        let settings = Arc::new(Settings {
            skip_first_reads: 0,
            ..Settings::default()
        });
        let mut settings_for = |_: &str| settings.clone();
        // The camera's clock is an hour behind the wall clock: only elapsed
        // wall time counts, not the difference between the clocks.
        let capture = start - Duration::from_secs(3600);
        let step = engine.on_frame(frame("cam", capture, Some("ABC123")), &settings_for("cam"));
        assert_eq!(step.events[0].kind(), PlateEventKind::Detect);

        clock.advance(Duration::from_millis(4_900));
        assert!(engine.sweep(&mut settings_for).events.is_empty());
        assert_eq!(engine.open_tracks(), 1);

        clock.advance(Duration::from_millis(100));
        let lost = engine.sweep(&mut settings_for).events;
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].kind(), PlateEventKind::Lost);
        assert_eq!(lost[0].event_time, Some(capture.into()));
        assert_eq!(engine.open_tracks(), 0);
    }

    #[test]
    fn tracks_expire_when_the_camera_clock_jumps() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let clock = Arc::new(ManualClock::new(start));
        let mut engine = Engine::new(clock.clone());
        let settings = Settings {
            skip_first_reads: 0,
            ..Settings::default()
        };
        engine.on_frame(frame("cam", start, Some("ABC123")), &settings);
        // One read stamped a year ahead, then the clock is back to normal.
        let wild = start + Duration::from_secs(365 * 24 * 3600);
        let step = engine.on_frame(frame("cam", wild, Some("XYZ789")), &settings);
        // The first track is a year older than this frame: lost.
        assert_eq!(step.events.len(), 2, "{:?}", step.events);
        let back = engine.on_frame(
            frame("cam", start + Duration::from_secs(1), None),
            &settings,
        );
        // The wild track does not wait a year for its timeout.
        assert_eq!(back.events.len(), 1);
        assert_eq!(back.events[0].plate_text, "XYZ789");
        assert_eq!(back.events[0].kind(), PlateEventKind::Lost);
        assert_eq!(engine.open_tracks(), 0);
    }

    #[test]
    fn flush_ends_every_track() {
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
        let mut engine = Engine::new(clock);
        let settings = Arc::new(Settings::default());
        let mut settings_for = |_: &str| settings.clone();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        for i in 0..3 {
            engine.on_frame(
                frame("a", t + Duration::from_millis(i * 100), Some("AAA111")),
                &settings,
            );
        }
        // Only skipped reads: never detected.
        engine.on_frame(frame("b", t, Some("BBB222")), &settings);
        let step = engine.flush(&mut settings_for);
        assert_eq!(step.events.len(), 1);
        assert_eq!(step.events[0].kind(), PlateEventKind::Lost);
        assert_eq!(step.events[0].plate_text, "AAA111");
        assert_eq!(step.expired_undetected, 1);
        assert_eq!(engine.open_tracks(), 0);
    }
}
