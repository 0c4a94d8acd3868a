//! Capped exponential back-off with full jitter: the n-th wait is uniform in
//! [0, min(cap, base·2ⁿ)], so many bridges retrying one VMS spread out
//! instead of hitting it in waves.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_rng(base, cap, StdRng::from_os_rng())
    }

    /// A back-off with a fixed random sequence (tests).
    pub fn seeded(base: Duration, cap: Duration, seed: u64) -> Self {
        Self::with_rng(base, cap, StdRng::seed_from_u64(seed))
    }

    fn with_rng(base: Duration, cap: Duration, rng: StdRng) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
            rng,
        }
    }

    /// The upper bound of the next wait.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next wait; each call widens the window until the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..=nanos))
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(30);

    #[test]
    fn waits_stay_within_a_doubling_capped_window() {
        let mut backoff = Backoff::seeded(BASE, CAP, 7);
        let expected_ceilings = [
            250u64, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
        ];
        for ceiling_ms in expected_ceilings {
            assert_eq!(backoff.ceiling(), Duration::from_millis(ceiling_ms));
            let delay = backoff.next_delay();
            assert!(
                delay <= Duration::from_millis(ceiling_ms),
                "{delay:?} > {ceiling_ms} ms"
            );
        }
        for _ in 0..100 {
            assert!(backoff.next_delay() <= CAP);
        }
        backoff.reset();
        assert_eq!(backoff.ceiling(), BASE);
        assert_eq!(backoff.attempts(), 0);
    }

    #[test]
    fn same_seed_same_jitter_and_jitter_is_spread() {
        let mut a = Backoff::seeded(BASE, CAP, 42);
        let mut b = Backoff::seeded(BASE, CAP, 42);
        let first: Vec<Duration> = (0..20).map(|_| a.next_delay()).collect();
        let second: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert_eq!(first, second);
        // Full jitter: at the cap the waits are spread over the window, not
        // all at its top.
        let mut capped = Backoff::seeded(BASE, CAP, 1);
        for _ in 0..10 {
            capped.next_delay();
        }
        let waits: Vec<Duration> = (0..200).map(|_| capped.next_delay()).collect();
        assert!(waits.iter().any(|w| *w < CAP / 4));
        assert!(waits.iter().any(|w| *w > CAP * 3 / 4));
    }
}
