//! The README's tour, pasted into bash as a newcomer would, against a real
//! `mno up`: what it promises comes out. Two things differ from the page,
//! each for a reason: the address (the test's `mno up` listens on a free
//! port, not 8080) and the binary (`target/debug/mno`, the build the tests
//! made, for `target/release/mno`). The tour's bench lines are left out:
//! they run for a fixed time and have tests of their own.

use std::process::{Command, Stdio};

use mno_harness::{free_port, NatsServer};

use crate::support;

/// The shell blocks of the README's section "A tour", in order.
fn tour_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## A tour\n")
        .nth(1)
        .expect("the README has a section \"A tour\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap_or(rest).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_works_as_written() {
    let readme = include_str!("../../../../README.md");
    let blocks = tour_blocks(readme);
    assert!(blocks.len() >= 2, "the tour's shell blocks: {blocks:?}");

    let nats = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = support::mno_command(data.path())
        .env("MNO_NATS_URL", nats.url())
        .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run mno up");
    let _up = support::Up(child);
    let base = format!("http://127.0.0.1:{port}");
    support::wait_ready(&base).await;

    let script: String = blocks
        .iter()
        .flat_map(|block| block.lines())
        .filter(|line| !line.contains(" bench "))
        .map(|line| {
            line.replace("localhost:8080", &format!("127.0.0.1:{port}"))
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
                .replace("target/release/mno", env!("CARGO_BIN_EXE_mno"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let workdir = tempfile::tempdir().unwrap();
    let (nats_url, data_dir) = (nats.url(), data.path().to_owned());
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("bash");
        for (key, _) in std::env::vars() {
            if key.starts_with("MNO_") {
                command.env_remove(key);
            }
        }
        command
            .arg("-c")
            .arg(&script)
            .current_dir(workdir.path())
            // The operator commands find this platform as they find `mno up`'s.
            .env("MNO_NATS_URL", nats_url)
            .env("MNO_DATA_DIR", data_dir)
            .env("MNO_LOG", "warn")
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "the tour failed: {said}");
    for promised in [
        // `curl .../readyz`
        r#""status":"ready""#,
        // `mno streams`
        "RECORDS",
        // Archive's stream (`cat archive.log`): the invoice Books wrote.
        "event: invoices",
        "1250.50",
        // Books' own id, read back.
        "INV-1",
        // The KPI over the P&L's revenue.
        "totals.revenue",
        // `mno billing run` and `mno billing rebuild`.
        "1 invoice(s) issued",
        "identical",
    ] {
        assert!(
            stdout.contains(promised),
            "the tour's output lacks {promised:?}: {said}"
        );
    }
    assert!(
        !stdout.contains(r#""errors""#),
        "a step of the tour was refused: {said}"
    );
}
