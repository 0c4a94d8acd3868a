//! Capped exponential back-off with full jitter between reconnection
//! attempts: the n-th wait is uniform in [base/2, min(cap, base·2ⁿ)], so the
//! cameras behind one dead switch do not all knock again in the same instant.
//! (The same idea as the vms-bridge's back-off; kept apart so that the two
//! services stay independent crates.)

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// First wait before reconnecting.
pub const RECONNECT_BASE: Duration = Duration::from_millis(500);
/// Longest wait before reconnecting.
pub const RECONNECT_CAP: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// The reconnection back-off: 0.5 s doubling up to 10 s.
    pub fn reconnect() -> Self {
        Self::new(RECONNECT_BASE, RECONNECT_CAP)
    }

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

    /// The next wait; each call widens the window until the cap. The floor of
    /// half the base keeps a camera that refuses at once from being hammered.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let floor = u64::try_from((self.base / 2).as_nanos()).unwrap_or(u64::MAX);
        let top = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(floor.min(top)..=top))
    }

    /// Starts over after a connection that worked.
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

    #[test]
    fn waits_double_from_half_a_second_to_ten_seconds() {
        let mut backoff = Backoff::seeded(RECONNECT_BASE, RECONNECT_CAP, 7);
        for ceiling_ms in [500u64, 1000, 2000, 4000, 8000, 10_000, 10_000] {
            assert_eq!(backoff.ceiling(), Duration::from_millis(ceiling_ms));
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(ceiling_ms), "{delay:?}");
            assert!(delay >= Duration::from_millis(250), "{delay:?}");
        }
        for _ in 0..100 {
            assert!(backoff.next_delay() <= RECONNECT_CAP);
        }
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.ceiling(), RECONNECT_BASE);
    }

    #[test]
    fn jitter_is_reproducible_per_seed_and_spread() {
        let mut a = Backoff::seeded(RECONNECT_BASE, RECONNECT_CAP, 42);
        let mut b = Backoff::seeded(RECONNECT_BASE, RECONNECT_CAP, 42);
        let first: Vec<_> = (0..20).map(|_| a.next_delay()).collect();
        let second: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        assert_eq!(first, second);
        let mut capped = Backoff::seeded(RECONNECT_BASE, RECONNECT_CAP, 1);
        for _ in 0..10 {
            capped.next_delay();
        }
        let waits: Vec<_> = (0..200).map(|_| capped.next_delay()).collect();
        assert!(waits.iter().any(|w| *w < RECONNECT_CAP / 4));
        assert!(waits.iter().any(|w| *w > RECONNECT_CAP * 3 / 4));
    }
}
