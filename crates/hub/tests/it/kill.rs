//! A real process is killed (SIGKILL) at the crash points of the outbox:
//! after the SQL commit and before the publish, and after the publish and
//! before the row is marked. A fresh Hub on the same database and bus then
//! delivers every event exactly once.
//!
//! The process killed is this test binary run again as a child: its
//! `hub_child_process` entry (ignored in normal runs) starts a Hub with a relay
//! failpoint, makes changes, says so on stdout and waits to be killed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mno_events::bus;
use mno_events::consume::{replay_until_caught_up, ReplayFrom};
use mno_events::proto::HubEvent;
use mno_harness::NatsServer;
use mno_hub::store::{orgs, outbox, users};
use mno_hub::{Hub, HubConfig, HubDeps, RelayFailpoint};

const ENV_NATS: &str = "MNO_TEST_CHILD_NATS_URL";
const ENV_DB: &str = "MNO_TEST_CHILD_DATABASE_URL";
const ENV_FAILPOINT: &str = "MNO_TEST_CHILD_FAILPOINT";
/// Events the child's changes make: user_created, org_created, member_added.
const EVENTS: usize = 3;

/// The child: run only when the parent test starts this binary with the env set.
#[test]
#[ignore = "run as a child process by the kill tests"]
fn hub_child_process() {
    let (Ok(nats), Ok(db), Ok(failpoint)) = (
        std::env::var(ENV_NATS),
        std::env::var(ENV_DB),
        std::env::var(ENV_FAILPOINT),
    ) else {
        panic!("hub_child_process runs only as the child of a kill test");
    };
    let failpoint = match failpoint.as_str() {
        "never_publish" => RelayFailpoint::NeverPublish,
        _ => RelayFailpoint::PublishWithoutMarking,
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let bus = bus::connect(&nats).await.unwrap();
            let hub = Hub::start(HubDeps {
                bus,
                db: mno_events::db::open(&db).await.unwrap(),
                config: HubConfig {
                    relay_failpoint: Some(failpoint),
                    ..HubConfig::default()
                },
            })
            .await
            .unwrap();
            let user = users::create(hub.store(), "ann@example.com", "Ann", "x")
                .await
                .unwrap();
            orgs::create(hub.store(), &user.id, "Acme", "USD", "UTC", "US")
                .await
                .unwrap();
            println!("COMMITTED");
            tokio::time::sleep(Duration::from_secs(600)).await;
        });
}

fn start_child(nats: &str, db: &str, failpoint: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill::hub_child_process",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_NATS, nats)
        .env(ENV_DB, db)
        .env(ENV_FAILPOINT, failpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run this test binary as a child");
    let stdout = child.stdout.take().unwrap();
    let committed = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("COMMITTED"));
    assert!(committed, "the child process did not commit its changes");
    child
}

async fn hub_events(js: &async_nats::jetstream::Context) -> Vec<HubEvent> {
    let mut stream = js.get_stream("HUB").await.unwrap();
    if stream.info().await.unwrap().state.messages == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    replay_until_caught_up(
        js,
        "HUB",
        &["hub.>".to_owned()],
        ReplayFrom::Beginning,
        None,
        |m| {
            out.push(HubEvent::from_bytes(&m.payload).unwrap());
            true
        },
    )
    .await
    .unwrap();
    out
}

async fn killed_then_restarted(failpoint: &str) {
    let nats = NatsServer::start().await;
    let bus = bus::connect(&nats.url()).await.unwrap();
    mno_events::streams::provision_all(&bus.js, 1)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = mno_events::db::sqlite_url(dir.path());

    let mut child = start_child(&nats.url(), &db, failpoint);
    if failpoint == "publish_without_marking" {
        // Wait until the child published everything it committed.
        let js = bus.js.clone();
        mno_harness::wait_for("the child's events on HUB", Duration::from_secs(20), || {
            let js = js.clone();
            async move { (hub_events(&js).await.len() == EVENTS).then_some(()) }
        })
        .await;
    } else {
        assert!(
            hub_events(&bus.js).await.is_empty(),
            "nothing is published yet"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let pool = mno_events::db::open(&db).await.unwrap();
    assert_eq!(
        outbox::backlog(&pool).await.unwrap(),
        EVENTS as i64,
        "every change is committed, none marked published"
    );
    let hub = Hub::start(HubDeps {
        bus: bus.clone(),
        db: pool.clone(),
        config: HubConfig::default(),
    })
    .await
    .unwrap();
    mno_harness::wait_for("an empty outbox", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move { (outbox::backlog(&pool).await.ok()? == 0).then_some(()) }
    })
    .await;
    // A later change proves the relay is live and everything before it is in.
    users::create(hub.store(), "bob@example.com", "Bob", "x")
        .await
        .unwrap();
    let js = bus.js.clone();
    let events = mno_harness::wait_for("the later event", Duration::from_secs(20), || {
        let js = js.clone();
        async move {
            let events = hub_events(&js).await;
            events
                .iter()
                .any(|e| e.payload_json().is_ok_and(|p| p["name"] == "Bob"))
                .then_some(events)
        }
    })
    .await;
    let ids: Vec<u64> = events.iter().map(|e| e.outbox_id).collect();
    assert_eq!(
        ids,
        (1..=EVENTS as u64 + 1).collect::<Vec<_>>(),
        "each event once, in order"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_process_killed_after_the_commit_and_before_the_publish_loses_nothing() {
    killed_then_restarted("never_publish").await;
}

#[tokio::test]
async fn a_process_killed_after_the_publish_and_before_marking_doubles_nothing() {
    killed_then_restarted("publish_without_marking").await;
}
