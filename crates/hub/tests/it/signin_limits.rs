//! Sign-in limits on the bus: two processes' limiters (two edges) share one
//! count, so a client cannot try the limit times at each edge.

use std::time::Duration;

use mno_harness::NatsServer;
use mno_hub::rate_limit::{open_bucket, FailureLimiter};

#[tokio::test]
async fn failures_at_two_edges_add_up_to_one_limit() {
    let server = NatsServer::start().await;
    let bus = mno_events::bus::connect(&server.url()).await.unwrap();
    let window = Duration::from_secs(300);
    let edge_a = FailureLimiter::shared(
        4,
        window,
        open_bucket(&bus.js, window, 1).await.unwrap(),
        "signin-email",
    );
    let edge_b = FailureLimiter::shared(
        4,
        window,
        open_bucket(&bus.js, window, 1).await.unwrap(),
        "signin-email",
    );
    for _ in 0..2 {
        edge_a.record_failure("ann@example.com").await;
        edge_b.record_failure("ann@example.com").await;
    }
    // Two failures at each edge: four in all, the limit, at both edges.
    for edge in [&edge_a, &edge_b] {
        let wait = edge.check("ann@example.com").await.unwrap_err();
        assert!((1..=300).contains(&wait), "{wait}");
        assert!(edge.check("bob@example.com").await.is_ok());
    }
    // A successful sign-in at one edge clears the count for both.
    edge_b.clear("ann@example.com").await;
    // Edge A's own count (two) is under the limit, and the shared one is gone.
    assert!(edge_a.check("ann@example.com").await.is_ok());
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let server = NatsServer::start().await;
    let bus = mno_events::bus::connect(&server.url()).await.unwrap();
    let window = Duration::from_secs(300);
    let bucket = open_bucket(&bus.js, window, 1).await.unwrap();
    let limiters: Vec<FailureLimiter> = (0..3)
        .map(|_| FailureLimiter::shared(6, window, bucket.clone(), "signin-address"))
        .collect();
    // Two failures from each of three processes at once: compare-and-set keeps every one.
    futures::future::join_all(
        limiters
            .iter()
            .flat_map(|l| [l.record_failure("10.0.0.9"), l.record_failure("10.0.0.9")]),
    )
    .await;
    assert!(FailureLimiter::shared(6, window, bucket, "signin-address")
        .check("10.0.0.9")
        .await
        .is_err());
}
