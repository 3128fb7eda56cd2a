//! Failed-login limits: a sliding window of failures per key (an email, an
//! address). Once a key has `limit` failures inside the window, every attempt
//! for it, right or wrong, is refused until the oldest failure leaves the window.
//! The counts live in this process (a restart forgets them).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Past this many keys, idle ones are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;

pub struct FailureLimiter {
    limit: usize,
    window: Duration,
    failures: DashMap<String, VecDeque<Instant>>,
}

impl FailureLimiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            failures: DashMap::new(),
        }
    }

    /// `Err(seconds)` to wait when `key` is locked out now.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Some(mut entry) = self.failures.get_mut(key) else {
            return Ok(());
        };
        self.forget_old(&mut entry, now);
        if entry.len() < self.limit {
            return Ok(());
        }
        let oldest = *entry.front().expect("limit is at least 1");
        let wait = (oldest + self.window).saturating_duration_since(now);
        Err(wait.as_secs().max(1))
    }

    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        if self.failures.len() > PRUNE_ABOVE {
            self.failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < self.window)
            });
        }
        let mut entry = self.failures.entry(key.to_owned()).or_default();
        self.forget_old(&mut entry, now);
        entry.push_back(now);
    }

    /// A successful sign-in clears the key's failures.
    pub fn clear(&self, key: &str) {
        self.failures.remove(key);
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_names_the_wait() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("a@x.com").is_ok());
            limiter.record_failure("a@x.com");
        }
        let wait = limiter.check("a@x.com").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(
            limiter.check("b@x.com").is_ok(),
            "other keys are not affected"
        );
        limiter.clear("a@x.com");
        assert!(limiter.check("a@x.com").is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(0));
        limiter.record_failure("k");
        assert!(limiter.check("k").is_ok());
    }
}
