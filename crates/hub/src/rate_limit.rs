//! Failed-login limits: a sliding window of failures per key (an email, an
//! address). Once a key has `limit` failures inside the window, every attempt
//! for it, right or wrong, is refused until the oldest failure leaves the window.
//!
//! The failures are kept on the bus (JetStream KV bucket `MNO_SIGNIN_LIMITS`,
//! one entry per key, updated by compare-and-set), so that the limits hold
//! across every edge process of the platform; the bucket's `max_age` is the
//! window, so idle keys vanish by themselves. This process's own count is
//! kept too and used when the bus does not answer: a sign-in never depends
//! on the bus being up, and is never less limited than in one process.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use dashmap::DashMap;
use sha2::Digest;

/// Past this many keys, idle ones are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;
/// The bucket that holds the failures of every limiter.
pub const BUCKET: &str = "MNO_SIGNIN_LIMITS";
/// Attempts of one compare-and-set update when other processes race it.
const CAS_ATTEMPTS: usize = 8;

/// Open (or create) the bucket with `window` as its entries' lifetime.
pub async fn open_bucket(
    js: &jetstream::Context,
    window: Duration,
    replicas: usize,
) -> Result<kv::Store, String> {
    mno_events::lease::open_bucket(
        js,
        kv::Config {
            bucket: BUCKET.into(),
            description: "Failed sign-ins per email and per address, within the window".into(),
            history: 1,
            max_age: window.max(Duration::from_secs(1)),
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..Default::default()
        },
    )
    .await
}

pub struct FailureLimiter {
    limit: usize,
    window: Duration,
    failures: DashMap<String, VecDeque<Instant>>,
    /// The shared count: the bucket, and this limiter's prefix in it.
    shared: Option<(kv::Store, &'static str)>,
}

impl FailureLimiter {
    /// A limiter that counts in this process only.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            failures: DashMap::new(),
            shared: None,
        }
    }

    /// A limiter whose failures are shared on the bus under `kind`.
    pub fn shared(limit: usize, window: Duration, bucket: kv::Store, kind: &'static str) -> Self {
        Self {
            shared: Some((bucket, kind)),
            ..Self::new(limit, window)
        }
    }

    /// `Err(seconds)` to wait when `key` is locked out now.
    pub async fn check(&self, key: &str) -> Result<(), u64> {
        self.check_here(key)?;
        let Some((bucket, kind)) = &self.shared else {
            return Ok(());
        };
        let Ok(Some(value)) = bucket.get(entry_key(kind, key)).await else {
            return Ok(());
        };
        let now = now_ms();
        let times = self.recent(parse(&value), now);
        if times.len() < self.limit {
            return Ok(());
        }
        let until = times[0] + self.window.as_millis() as i64;
        Err(((until - now).max(0) as u64).div_ceil(1000).max(1))
    }

    fn check_here(&self, key: &str) -> Result<(), u64> {
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

    pub async fn record_failure(&self, key: &str) {
        self.record_here(key);
        let Some((bucket, kind)) = &self.shared else {
            return;
        };
        let name = entry_key(kind, key);
        for _ in 0..CAS_ATTEMPTS {
            let (times, revision) = match bucket.entry(name.as_str()).await {
                Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                    (parse(&entry.value), Some(entry.revision))
                }
                Ok(_) => (Vec::new(), None),
                Err(e) => {
                    tracing::warn!(error = %e, "sign-in limits: the bus did not answer; counting in this process only");
                    return;
                }
            };
            let now = now_ms();
            let mut times = self.recent(times, now);
            times.push(now);
            // Only the last `limit` failures decide a lock-out.
            let keep = times.len().saturating_sub(self.limit);
            let value = Bytes::from(serde_json::to_vec(&times[keep..]).expect("numbers"));
            let written = match revision {
                Some(revision) => bucket.update(name.as_str(), value, revision).await.is_ok(),
                None => bucket.create(name.as_str(), value).await.is_ok(),
            };
            if written {
                return;
            }
        }
        tracing::warn!(
            "sign-in limits: too many concurrent updates of one key; counted in this process only"
        );
    }

    fn record_here(&self, key: &str) {
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
    pub async fn clear(&self, key: &str) {
        self.failures.remove(key);
        if let Some((bucket, kind)) = &self.shared {
            let _ = bucket.purge(entry_key(kind, key)).await;
        }
    }

    fn forget_old(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }

    /// The failures (milliseconds since the epoch) still inside the window, oldest first.
    fn recent(&self, mut times: Vec<i64>, now: i64) -> Vec<i64> {
        let window = self.window.as_millis() as i64;
        times.retain(|t| now - *t < window);
        times.sort_unstable();
        times
    }
}

/// A bucket key for `key` (an email or an address, which may hold characters
/// keys cannot): its kind and a hash.
fn entry_key(kind: &str, key: &str) -> String {
    let hash = sha2::Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{kind}.{hex}")
}

fn parse(value: &[u8]) -> Vec<i64> {
    serde_json::from_slice(value).unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_after_the_limit_and_names_the_wait() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("a@x.com").await.is_ok());
            limiter.record_failure("a@x.com").await;
        }
        let wait = limiter.check("a@x.com").await.unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(
            limiter.check("b@x.com").await.is_ok(),
            "other keys are not affected"
        );
        limiter.clear("a@x.com").await;
        assert!(limiter.check("a@x.com").await.is_ok());
    }

    #[tokio::test]
    async fn failures_leave_the_window() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(0));
        limiter.record_failure("k").await;
        assert!(limiter.check("k").await.is_ok());
    }
}
