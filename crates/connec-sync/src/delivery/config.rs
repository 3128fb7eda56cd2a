//! Settings of delivery, with defaults that suit production; tests shorten
//! the retry schedule and the ack wait.

use std::time::Duration;

/// How delivery behaves.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Delay before each retry; after the last one an event is dead-lettered.
    /// Default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    pub retry_schedule: Vec<Duration>,
    /// Each delay is spread by up to this fraction either way (0.2 = ±20%).
    pub jitter: f64,
    /// Most events in one POST.
    pub batch_max: usize,
    /// How long a ready event may wait for others to share its POST (0: send at once).
    pub linger: Duration,
    /// POSTs in flight to one app at once (each holds different records).
    pub max_in_flight: usize,
    /// Timeout of one POST, connect to last byte.
    pub request_timeout: Duration,
    /// The most of a receiver's answer that is read (the rest is ignored).
    pub max_response_bytes: usize,
    /// Allow webhook URLs on loopback, private, link-local and unique-local addresses.
    pub allow_private_webhooks: bool,
    /// How long JetStream waits for an ack before it redelivers (held events are kept alive with progress acks).
    pub ack_wait: Duration,
    /// Unacknowledged events one app may hold at once (events waiting behind failing records count).
    /// Each held event is in memory (a few kB, decoded), so this bounds a backlog's cost per app:
    /// the rest of a backlog waits on the bus.
    pub max_ack_pending: i64,
    /// How long a cached install list is trusted before it is read again from the Hub.
    pub installs_ttl: Duration,
    /// How often SSE streams send a heartbeat comment.
    pub sse_heartbeat: Duration,
    /// SSE streams one caller (an app, or a user) may hold open at once.
    pub sse_max_streams: usize,
    /// Events one SSE stream holds for its client before the client must take them.
    pub sse_buffer: usize,
    /// How long an SSE client may leave a full buffer untaken before its
    /// stream is closed (it resumes with `Last-Event-ID`).
    pub sse_slow_after: Duration,
    /// Attempts kept in the in-memory delivery log.
    pub log_capacity: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            retry_schedule: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(300),
                minutes(600),
                minutes(600),
            ],
            jitter: 0.2,
            batch_max: 50,
            linger: Duration::ZERO,
            max_in_flight: 4,
            request_timeout: Duration::from_secs(15),
            max_response_bytes: 64 * 1024,
            allow_private_webhooks: false,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1_000,
            installs_ttl: Duration::from_secs(1),
            sse_heartbeat: Duration::from_secs(15),
            sse_max_streams: 10,
            sse_buffer: 64,
            sse_slow_after: Duration::from_secs(30),
            log_capacity: 10_000,
        }
    }
}

impl DeliveryConfig {
    /// Settings for tests: retries after 200 ms, 400 ms, 800 ms, then the DLQ; private URLs allowed.
    pub fn for_tests() -> Self {
        Self {
            retry_schedule: vec![
                Duration::from_millis(200),
                Duration::from_millis(400),
                Duration::from_millis(800),
            ],
            allow_private_webhooks: true,
            ack_wait: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            sse_heartbeat: Duration::from_secs(1),
            ..Self::default()
        }
    }

    /// Parse a schedule like "5s,5m,30m,2h" (units ms, s, m, h).
    pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|schedule| {
                if schedule.is_empty() {
                    Err("the retry schedule is empty; give delays like 5s,5m,30m".into())
                } else {
                    Ok(schedule)
                }
            })
    }
}

fn parse_duration(part: &str) -> Result<Duration, String> {
    let split = part
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{part:?} has no unit; write e.g. 500ms, 5s, 5m or 2h"))?;
    let (number, unit) = part.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{part:?} does not start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!(
            "{part:?} has the unit {other:?}; use ms, s, m or h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedules_and_names_bad_parts() {
        assert_eq!(
            DeliveryConfig::parse_schedule("500ms, 5s,2m,1h").unwrap(),
            vec![
                Duration::from_millis(500),
                Duration::from_secs(5),
                Duration::from_secs(120),
                Duration::from_secs(3600)
            ]
        );
        assert!(DeliveryConfig::parse_schedule("5")
            .unwrap_err()
            .contains("no unit"));
        assert!(DeliveryConfig::parse_schedule("5d")
            .unwrap_err()
            .contains("\"d\""));
        assert!(DeliveryConfig::parse_schedule("").is_err());
    }
}
