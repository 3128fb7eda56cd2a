//! Leases against a real nats-server: one holder at a time, a dead holder's
//! lease taken over once it expires with a newer token, a released lease
//! taken at once, and a restarted holder taking its own lease back.

use std::time::Duration;

use mno_events::bus;
use mno_events::lease::{Leases, TTL};
use mno_harness::NatsServer;

#[tokio::test]
async fn one_holder_at_a_time_and_a_dead_holders_lease_is_taken_over_with_a_newer_token() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    let a = Leases::open(&bus.js, Some(1), "process-a").await.unwrap();
    let b = Leases::open(&bus.js, Some(1), "process-b").await.unwrap();

    let mut held_by_a = a.try_acquire("projection.x").await.unwrap().expect("free");
    assert_eq!(b.try_acquire("projection.x").await.unwrap(), None);
    assert!(a.renew(&mut held_by_a).await.unwrap());

    // A stops renewing (it died): once the TTL has run out, B takes it.
    let taken = mno_harness::wait_for("B takes the expired lease", TTL * 3, || async {
        b.try_acquire("projection.x").await.unwrap()
    })
    .await;
    assert!(
        taken.token > held_by_a.token,
        "fencing tokens must grow: {} after {}",
        taken.token,
        held_by_a.token
    );
    // A, back from its pause, finds it lost.
    assert!(!a.renew(&mut held_by_a).await.unwrap());

    // Released, a lease is taken at once.
    b.release(taken).await;
    let again = a.try_acquire("projection.x").await.unwrap();
    assert!(again.is_some(), "a released lease must be free at once");
}

#[tokio::test]
async fn a_restarted_holder_takes_its_own_lease_back_at_once() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    let first = Leases::open(&bus.js, Some(1), "data-dir-1").await.unwrap();
    let before = first.try_acquire("delivery.app1").await.unwrap().unwrap();
    // The same holder name (same data dir) after a kill -9 and restart.
    let restarted = Leases::open(&bus.js, Some(1), "data-dir-1").await.unwrap();
    let after = restarted
        .try_acquire("delivery.app1")
        .await
        .unwrap()
        .expect("its own lease");
    assert!(after.token > before.token);
    let other = Leases::open(&bus.js, Some(1), "data-dir-2").await.unwrap();
    assert_eq!(other.try_acquire("delivery.app1").await.unwrap(), None);
}

#[tokio::test]
async fn a_kept_lease_is_held_by_one_keeper_and_passes_on_release() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    let a = Leases::open(&bus.js, Some(1), "keeper-a").await.unwrap();
    let b = Leases::open(&bus.js, Some(1), "keeper-b").await.unwrap();
    let mut kept_a = a.keep("relay");
    let token_a = tokio::time::timeout(Duration::from_secs(10), kept_a.acquired())
        .await
        .unwrap()
        .unwrap();
    let mut kept_b = b.keep("relay");
    // Several renewals of A's: B still does not hold it.
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    assert!(kept_a.is_held() && !kept_b.is_held());
    kept_a.release().await;
    let token_b = tokio::time::timeout(Duration::from_secs(10), kept_b.acquired())
        .await
        .unwrap()
        .unwrap();
    assert!(token_b > token_a);
}

#[tokio::test]
async fn a_second_live_process_of_one_name_is_refused_and_a_stopped_ones_name_is_free_at_once() {
    let server = NatsServer::start().await;
    let bus = bus::connect(&server.url()).await.unwrap();
    let first = Leases::open(&bus.js, Some(1), "worker-1").await.unwrap();
    let held = first.claim_name().await.expect("a free name");
    // Another process under the same name, while the first runs.
    let second = Leases::open(&bus.js, Some(1), "worker-1").await.unwrap();
    let Err(refused) = second.claim_name().await else {
        panic!("the name is in use");
    };
    assert!(
        refused.to_string().contains("\"worker-1\"")
            && refused.to_string().contains("its own MNO_INSTANCE"),
        "{refused}"
    );
    // Other names are not held back.
    let other = Leases::open(&bus.js, Some(1), "worker-2").await.unwrap();
    other.claim_name().await.expect("another name");
    // Stopped cleanly, the name is free for its restart at once.
    held.release().await;
    let restarted = tokio::time::timeout(Duration::from_secs(2), second.claim_name())
        .await
        .expect("at once, not after the TTL");
    assert!(restarted.is_ok(), "the name is free again");
}
