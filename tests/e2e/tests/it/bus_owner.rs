//! One bus, one platform. A process whose database is not the bus's platform
//! refuses to start before it consumes anything (its durable consumers would
//! otherwise take half of the other platform's events), and `mno up` with no
//! bus URL never joins a server it did not start.

use mno_e2e::hub_client::HubClient;
use mno_e2e::TestPlatform;
use mno_gateway::{Platform, PlatformConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_with_another_database_refuses_the_bus() {
    let mut platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup_and_login("ann@example.com").await.unwrap();
    let consumers_before = consumer_names(&platform).await;

    let other_dir = tempfile::tempdir().unwrap();
    let other = PlatformConfig::for_tests(other_dir.path().to_owned(), Some(platform.nats.url()));
    let refused = Platform::start(other)
        .await
        .err()
        .expect("a platform with another database must not start on this bus");
    let message = format!("{refused:#}");
    assert!(
        message.contains("belongs to another platform") && message.contains("MNO_NATS_URL"),
        "{message}"
    );
    // Nothing of it stayed on the bus: the owner's consumers are as they were.
    assert_eq!(consumer_names(&platform).await, consumers_before);

    // The owner itself (same database) restarts on its bus.
    platform.restart().await;
    let hub = HubClient::new(&platform.base_url);
    hub.login("ann@example.com", mno_e2e::hub_client::TEST_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platforms_without_a_bus_url_each_start_their_own_server() {
    let binary = mno_harness::nats_server_binary().unwrap();
    let mut running = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PlatformConfig::for_tests(dir.path().to_owned(), None);
        config.nats_server_bin = Some(binary.clone());
        running.push(Platform::start(config).await.expect("start a platform"));
        dirs.push(dir);
    }
    assert_ne!(
        running[0].nats_url, running[1].nats_url,
        "the second platform joined the first one's server"
    );
    for platform in running {
        platform.shutdown().await.unwrap();
    }
}

/// The durable consumers on the platform's bus, sorted.
async fn consumer_names(platform: &TestPlatform) -> Vec<String> {
    use futures::TryStreamExt;
    let js = &platform.running().bus.js;
    let mut names = Vec::new();
    for stream in ["RECORDS", "HUB"] {
        let stream = js.get_stream(stream).await.unwrap();
        let found: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
        names.extend(found);
    }
    names.sort();
    names
}
