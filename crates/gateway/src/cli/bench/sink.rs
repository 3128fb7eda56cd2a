//! `mno bench webhook-sink` (hidden): the subscriber apps' webhook receivers
//! of `bench mix`, in a process of their own, as real apps' receivers are.
//!
//! One listener; app `i` receives at `/hook/<i>`. Every record the mix writes
//! carries `"bench_sent_us":"<wall-clock micros when the write was sent>"`,
//! so a receiver counts records and their write-to-webhook latency by
//! scanning for it. `GET /stats` answers what was seen; `POST /stats/reset`
//! starts the latencies afresh (the count keeps running). The first line on
//! stdout is `{"url": "<base URL>"}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use super::report::Latencies;

/// The field each mix record carries its send time in.
pub const SENT_FIELD: &str = "bench_sent_us";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
}

#[derive(Default)]
struct Seen {
    records: AtomicU64,
    posts: AtomicU64,
    latencies: Mutex<Latencies>,
}

pub async fn run(args: Args) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/hook/{app}", post(receive))
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset))
        .with_state(seen);
    println!(
        "{}",
        json!({"url": format!("http://{}", listener.local_addr()?)})
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Wall-clock microseconds since the Unix epoch: the two processes share the clock.
pub fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn receive(State(seen): State<Arc<Seen>>, body: Bytes) -> &'static str {
    let now = wall_micros();
    let sent = sent_times(&body);
    {
        let mut latencies = seen.latencies.lock().expect("latencies");
        for t in &sent {
            latencies.record(Duration::from_micros(now.saturating_sub(*t)));
        }
    }
    seen.records.fetch_add(sent.len() as u64, Ordering::Relaxed);
    seen.posts.fetch_add(1, Ordering::Relaxed);
    "{}"
}

/// The send times of every record in a webhook body.
pub fn sent_times(body: &[u8]) -> Vec<u64> {
    let needle = format!("\"{SENT_FIELD}\":\"");
    let needle = needle.as_bytes();
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        rest = &rest[at + needle.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(t) = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
        {
            out.push(t);
        }
    }
    out
}

async fn stats(State(seen): State<Arc<Seen>>) -> Json<Value> {
    let latencies = seen.latencies.lock().expect("latencies");
    Json(json!({
        "records": seen.records.load(Ordering::Relaxed),
        "posts": seen.posts.load(Ordering::Relaxed),
        "latencies": latencies.count(),
        "p50_ms": latencies.p50_ms(),
        "p99_ms": latencies.p99_ms(),
    }))
}

async fn reset(State(seen): State<Arc<Seen>>) -> &'static str {
    *seen.latencies.lock().expect("latencies") = Latencies::default();
    "{}"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_of_a_body_gives_its_send_time() {
        let body = br#"{"invoices":[{"a":1,"bench_sent_us":"17","id":[]},{"bench_sent_us":"42"}],"people":[{"bench_sent_us":"x"}]}"#;
        assert_eq!(sent_times(body), vec![17, 42]);
        assert!(sent_times(b"{}").is_empty());
    }
}
