//! Which decoded pictures are published: the camera's `sample_fps`, measured
//! on the stream's own media time (RTP or container timestamps), so that a
//! file read as fast as possible is sampled the same as one played in real
//! time, and network jitter in arrival times does not change the rate.
//!
//! Every picture is still decoded: an H.264 decoder that skips a picture
//! corrupts the following ones until the next key frame.

/// Media time in microseconds since an arbitrary start.
pub type MediaMicros = i64;

/// Picks pictures at a target rate from a stream of any rate.
#[derive(Debug, Clone)]
pub struct Sampler {
    interval: MediaMicros,
    /// Pictures less than this early still count as on time, so that
    /// timestamps jittering around the exact interval do not halve the rate.
    tolerance: MediaMicros,
    next_due: Option<MediaMicros>,
    last: Option<MediaMicros>,
}

impl Sampler {
    /// A sampler for `fps` pictures per second. A rate that is not a positive
    /// number takes every picture.
    pub fn new(fps: f32) -> Self {
        let interval = if fps.is_finite() && fps > 0.0 {
            (1_000_000.0 / f64::from(fps)).round() as MediaMicros
        } else {
            0
        };
        Sampler {
            interval,
            tolerance: interval / 8,
            next_due: None,
            last: None,
        }
    }

    /// Whether the picture at media time `t` is to be published.
    pub fn offer(&mut self, t: MediaMicros) -> bool {
        let went_back = self.last.is_some_and(|last| t < last);
        self.last = Some(t);
        let due = match self.next_due {
            // First picture, or the clock restarted (a looped file, a new
            // RTP timeline): start afresh from here.
            None => None,
            Some(_) if went_back => None,
            Some(due) => Some(due),
        };
        match due {
            None => {
                self.next_due = Some(t + self.interval);
                true
            }
            Some(due) if t + self.tolerance >= due => {
                // Advancing from the due time, not from `t`, keeps the average
                // rate exact; a stream slower than the target (or a gap) would
                // otherwise leave `due` far behind and cause a burst.
                let next = due + self.interval;
                self.next_due = Some(if next <= t { t + self.interval } else { next });
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(fps: f32, times: impl IntoIterator<Item = MediaMicros>) -> Vec<MediaMicros> {
        let mut sampler = Sampler::new(fps);
        times.into_iter().filter(|t| sampler.offer(*t)).collect()
    }

    #[test]
    fn twenty_five_fps_sampled_to_ten_gives_ten_per_second() {
        let frames = (0..250).map(|i| i * 40_000); // 10 s at 25 fps
        let kept = taken(10.0, frames);
        assert_eq!(kept.len(), 100, "{kept:?}");
        // Never two kept pictures closer than one source frame apart.
        assert!(kept.windows(2).all(|w| w[1] - w[0] >= 40_000));
    }

    #[test]
    fn a_target_above_the_source_rate_keeps_every_picture() {
        let frames: Vec<_> = (0..50).map(|i| i * 40_000).collect();
        assert_eq!(taken(30.0, frames.clone()).len(), 50);
        assert_eq!(taken(25.0, frames).len(), 50);
    }

    #[test]
    fn jitter_around_the_interval_does_not_halve_the_rate() {
        // 25 fps with +-0.3 ms arrival jitter, sampled at 25 fps.
        let frames = (0..100).map(|i| i * 40_000 + if i % 2 == 0 { 300 } else { -300 });
        assert_eq!(taken(25.0, frames).len(), 100);
    }

    #[test]
    fn a_restarted_timeline_starts_afresh_and_a_gap_causes_no_burst() {
        let mut sampler = Sampler::new(10.0);
        assert!(sampler.offer(5_000_000));
        assert!(!sampler.offer(5_040_000));
        // Looped file: time goes back to 0, which is published at once.
        assert!(sampler.offer(0));
        assert!(!sampler.offer(40_000));
        assert!(sampler.offer(120_000));
        // A 10 s gap: one picture, then the normal rate, no catch-up burst.
        assert!(sampler.offer(10_120_000));
        assert!(!sampler.offer(10_160_000));
        assert!(sampler.offer(10_240_000));
    }

    #[test]
    fn one_fps_from_thirty() {
        let frames = (0..300).map(|i| i * 33_333); // 10 s at 30 fps
        let kept = taken(1.0, frames).len();
        // One at the start of each second, plus at most the tolerance-early
        // one just before the 10 s mark.
        assert!((10..=11).contains(&kept), "{kept}");
        assert_eq!(taken(0.0, (0..7).map(|i| i * 10)).len(), 7);
    }
}
