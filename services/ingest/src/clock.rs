//! Wall-clock capture times of RTP frames.
//!
//! retina hands RTCP sender reports through without interpreting them. A
//! report pairs the camera's wall clock (NTP format) with an RTP timestamp,
//! so a frame's capture time is the report's time plus the RTP distance from
//! the report, in seconds of the stream's clock rate. Until the first report
//! (1-3 s after PLAY) the local receive time stands in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// The time/RTP pair of one RTCP sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    /// NTP timestamp, 32.32 fixed point seconds since 1900.
    pub ntp: u64,
    /// The RTP timestamp of the same instant, extended past 32-bit wraps
    /// (retina's `Timestamp::timestamp`).
    pub rtp: i64,
}

/// An NTP 32.32 timestamp as a system time; `None` for 0, which a sender
/// without a wall clock sends (RFC 3550, 6.4.1). Times before 1970 are taken
/// as NTP era 1 (from 2036 on, when the 32-bit seconds wrap).
pub fn ntp_to_system_time(ntp: u64) -> Option<SystemTime> {
    if ntp == 0 {
        return None;
    }
    let seconds = ntp >> 32;
    let fraction = ntp & 0xFFFF_FFFF;
    let unix_seconds = if seconds >= NTP_UNIX_OFFSET_SECS {
        seconds - NTP_UNIX_OFFSET_SECS
    } else {
        seconds + (1u64 << 32) - NTP_UNIX_OFFSET_SECS
    };
    let nanos = (fraction * 1_000_000_000) >> 32;
    UNIX_EPOCH.checked_add(Duration::from_secs(unix_seconds) + Duration::from_nanos(nanos))
}

/// The wall-clock time of the frame at RTP time `frame_rtp`, given a report
/// and the stream's clock rate (90 kHz for video).
pub fn capture_time(report: &SenderReport, frame_rtp: i64, clock_rate: u32) -> Option<SystemTime> {
    if clock_rate == 0 {
        return None;
    }
    let base = ntp_to_system_time(report.ntp)?;
    let ticks = i128::from(frame_rtp) - i128::from(report.rtp);
    let nanos = ticks * 1_000_000_000 / i128::from(clock_rate);
    let magnitude = Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).ok()?);
    if nanos >= 0 {
        base.checked_add(magnitude)
    } else {
        base.checked_sub(magnitude)
    }
}

/// The latest sender report of one stream, and the mapping through it.
#[derive(Debug, Clone, Default)]
pub struct CaptureClock {
    report: Option<SenderReport>,
}

impl CaptureClock {
    /// Takes a new report; reports without a wall clock are ignored.
    pub fn on_sender_report(&mut self, report: SenderReport) {
        if ntp_to_system_time(report.ntp).is_some() {
            self.report = Some(report);
        }
    }

    /// Whether a report has been seen.
    pub fn synchronised(&self) -> bool {
        self.report.is_some()
    }

    /// The capture time of a frame, or `received` before the first report.
    pub fn capture_time(
        &self,
        frame_rtp: i64,
        clock_rate: u32,
        received: SystemTime,
    ) -> SystemTime {
        self.report
            .and_then(|report| capture_time(&report, frame_rtp, clock_rate))
            .unwrap_or(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntp(unix_secs: u64, millis: u64) -> u64 {
        ((unix_secs + NTP_UNIX_OFFSET_SECS) << 32) | ((millis << 32) / 1000)
    }

    fn unix(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    fn close(a: SystemTime, b: SystemTime) -> bool {
        let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
        d < Duration::from_micros(2)
    }

    #[test]
    fn ntp_converts_to_unix_time() {
        assert_eq!(ntp_to_system_time(0), None);
        let t = ntp_to_system_time(ntp(1_700_000_000, 250)).expect("valid");
        assert!(close(t, unix(1_700_000_000, 250)));
        // Era 1: seconds wrapped after 2036-02-07.
        let after_wrap = ntp_to_system_time(10 << 32).expect("valid");
        assert!(close(
            after_wrap,
            unix((1 << 32) + 10 - NTP_UNIX_OFFSET_SECS, 0)
        ));
    }

    #[test]
    fn frames_are_timed_by_their_rtp_distance_from_the_report() {
        let report = SenderReport {
            ntp: ntp(1_700_000_000, 0),
            rtp: 1_000_000,
        };
        // 90 kHz: 45 000 ticks = 0.5 s after, 9 000 ticks = 0.1 s before.
        let later = capture_time(&report, 1_045_000, 90_000).expect("in range");
        assert!(close(later, unix(1_700_000_000, 500)));
        let earlier = capture_time(&report, 991_000, 90_000).expect("in range");
        assert!(close(earlier, unix(1_699_999_999, 900)));
        // Extended timestamps past a 32-bit wrap keep counting.
        let wrapped = SenderReport {
            ntp: report.ntp,
            rtp: (1 << 32) - 90_000,
        };
        let after = capture_time(&wrapped, (1 << 32) + 90_000, 90_000).expect("in range");
        assert!(close(after, unix(1_700_000_002, 0)));
        assert_eq!(capture_time(&report, 0, 0), None);
    }

    #[test]
    fn receive_time_until_the_first_usable_report() {
        let mut clock = CaptureClock::default();
        let received = unix(1_800_000_000, 0);
        assert_eq!(clock.capture_time(5, 90_000, received), received);
        clock.on_sender_report(SenderReport { ntp: 0, rtp: 0 });
        assert!(!clock.synchronised());
        assert_eq!(clock.capture_time(5, 90_000, received), received);
        clock.on_sender_report(SenderReport {
            ntp: ntp(1_700_000_000, 0),
            rtp: 0,
        });
        assert!(clock.synchronised());
        let t = clock.capture_time(90_000, 90_000, received);
        assert!(close(t, unix(1_700_000_001, 0)));
    }
}
