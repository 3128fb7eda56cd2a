//! `deploy/nats/` must say what the code does: the stream definitions there
//! equal what `mno up` provisions, and every server config parses and works.

use std::path::PathBuf;

use mno_events::streams;
use mno_harness::{nats_server_binary, workspace_root, NatsCluster};

fn streams_dir() -> PathBuf {
    workspace_root().join("deploy/nats/streams")
}

#[test]
fn stream_definition_files_equal_what_the_code_provisions() {
    for config in streams::all(1) {
        let path = streams_dir().join(format!("{}.json", config.name));
        let from_code = serde_json::to_value(&config).unwrap();
        if std::env::var_os("MNO_WRITE_STREAM_DEFINITIONS").is_some() {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&from_code).unwrap() + "\n",
            )
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with MNO_WRITE_STREAM_DEFINITIONS=1",
                path.display()
            )
        });
        let from_file: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            from_file,
            from_code,
            "{} differs from streams::{}; regenerate with MNO_WRITE_STREAM_DEFINITIONS=1 cargo test -p mno-events --test it deploy_files::",
            path.display(),
            config.name.to_lowercase()
        );
    }
}

#[test]
fn every_server_config_passes_the_servers_own_check() {
    let binary = nats_server_binary().unwrap();
    let root = workspace_root().join("deploy/nats");
    for file in [
        "dev.conf",
        "cluster/n1.conf",
        "cluster/n2.conf",
        "cluster/n3.conf",
    ] {
        let output = std::process::Command::new(&binary)
            .arg("-t")
            .arg("-c")
            .arg(root.join(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn a_three_node_cluster_takes_replicated_streams_and_survives_losing_a_node() {
    let mut cluster = NatsCluster::start().await;
    let bus = mno_events::bus::connect(&cluster.urls()).await.unwrap();
    let outcome = streams::provision_all(&bus.js, 3).await.unwrap();
    assert_eq!(outcome.len(), 3);
    let publisher = mno_events::publish::Publisher::new(bus.js.clone(), streams::RECORDS);
    let first = publisher
        .publish(mno_events::publish::Outgoing::new(
            "rec.o.items.a",
            "c1",
            "x".into(),
        ))
        .await
        .unwrap();
    let info = bus
        .js
        .get_stream(streams::RECORDS)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(
        info.cluster.as_ref().map(|c| c.replicas.len()),
        Some(2),
        "two followers"
    );
    // A process set to one replica is refused before it lowers anything.
    for refused in [
        streams::check_replicas(&bus.js, 1).await,
        streams::provision_all(&bus.js, 1).await.map(|_| ()),
    ] {
        let error = refused.expect_err("fewer replicas than the streams keep");
        assert!(
            error.to_string().contains("set MNO_STREAM_REPLICAS=3"),
            "{error}"
        );
    }
    streams::check_replicas(&bus.js, 3).await.unwrap();
    let mut records = bus.js.get_stream(streams::RECORDS).await.unwrap();
    assert_eq!(records.info().await.unwrap().config.num_replicas, 3);

    // Lose one node: two of three still form a quorum and accept writes.
    let down = kill_a_node_the_client_is_not_on(&mut cluster, &bus);
    // If it led the stream, a new leader is elected first; until then publishes find no responder.
    let mut attempts = 0;
    let second = loop {
        match publisher
            .publish(mno_events::publish::Outgoing::new(
                "rec.o.items.b",
                "c2",
                "y".into(),
            ))
            .await
        {
            Ok(p) => break p,
            Err(e) if attempts < 150 => {
                attempts += 1;
                eprintln!("waiting for the stream to elect a leader: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(second.seq, first.seq + 1);
    cluster.restart(down).await;
}

/// Right after a node is killed, the stream may have no leader for seconds, and
/// a replay's consumer (one replica, on a random peer) lands on the dead node
/// one time in three until the others miss its heartbeats: each replay made in
/// that time must still read the whole stream (a request that times out is sent
/// again).
#[tokio::test]
async fn replays_read_everything_right_after_a_cluster_node_is_killed() {
    let mut cluster = NatsCluster::start().await;
    let bus = mno_events::bus::connect(&cluster.urls()).await.unwrap();
    streams::provision_all(&bus.js, 3).await.unwrap();
    let publisher = mno_events::publish::Publisher::new(bus.js.clone(), streams::RECORDS);
    for i in 0..20 {
        publisher
            .publish(mno_events::publish::Outgoing::new(
                format!("rec.o.items.r{i}"),
                format!("c{i}"),
                "x".into(),
            ))
            .await
            .unwrap();
    }
    let down = kill_a_node_the_client_is_not_on(&mut cluster, &bus);
    for replay in 0..6 {
        let mut subjects = Vec::new();
        let applied = mno_events::consume::replay_until_caught_up(
            &bus.js,
            streams::RECORDS,
            &["rec.>".to_owned()],
            mno_events::consume::ReplayFrom::Beginning,
            None,
            |m| {
                subjects.push(m.subject);
                true
            },
        )
        .await
        .unwrap_or_else(|e| panic!("replay {replay} after the node was lost: {e}"));
        assert_eq!(applied, 20, "replay {replay}");
        assert_eq!(subjects.first().map(String::as_str), Some("rec.o.items.r0"));
        assert_eq!(subjects.last().map(String::as_str), Some("rec.o.items.r19"));
    }
    cluster.restart(down).await;
}

/// Kill -9 a node other than the one `bus` is connected to (so the client
/// keeps its connection); its index, to restart it.
fn kill_a_node_the_client_is_not_on(
    cluster: &mut NatsCluster,
    bus: &mno_events::bus::Bus,
) -> usize {
    let connected = bus.client.server_info().port;
    let down = cluster
        .nodes
        .iter()
        .position(|n| n.port != connected)
        .unwrap();
    cluster.nodes[down].kill9();
    down
}
