//! The portal in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by tests/run.sh) driven by Python selenium
//! (`tests/portal/browser.py`) against a real `mno up --demo` on free ports.
//! Screenshots land in `target/portal-screenshots/` (look at them).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mno_harness::{free_port, NatsServer};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_works_in_a_browser_against_mno_up_demo() {
    let _heavy = support::HEAVY.lock().await;
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: bash tests/run.sh installs chromium and chromium-driver"
        );
    }
    let nats = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = support::mno_command(data.path())
        .env("MNO_NATS_URL", nats.url())
        .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        // The test's webhook receiver is on loopback; its retries are quick, so dead letters come soon.
        .env("MNO_ALLOW_PRIVATE_WEBHOOKS", "true")
        .env("MNO_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms")
        .env("MNO_OPERATORS", "demo@mno.example")
        .args(["up", "--demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run mno up --demo");
    let stdout = child.stdout.take().unwrap();
    let up = support::Up(child);
    // `mno up --demo` prints its URL and the demo login once the demo is seeded.
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(2)
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(120), lines)
        .await
        .expect("mno up --demo printed its URL and login within 2 minutes")
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert!(lines[0].contains(&base), "{lines:?}");
    assert!(
        lines[1].contains("demo@mno.example") && lines[1].contains("mno demo password"),
        "{lines:?}"
    );
    support::wait_ready(&base).await;

    let shots = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/portal-screenshots"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/portal/browser.py");
    // The script runs `mno billing run` beside the platform, on its bus and data dir.
    let (nats_url, data_dir) = (nats.url(), data.path().to_owned());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("BASE", &base)
            .env("SHOTS", shots)
            .env("MNO_BIN", env!("CARGO_BIN_EXE_mno"))
            .env("MNO_TEST_NATS_URL", nats_url)
            .env("MNO_TEST_DATA_DIR", data_dir)
            .output()
            .expect("python3 runs (tests/python-requirements.txt installs selenium)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    // The message leads with the step and the error: a CI summary may show only its start.
    let last_step = stdout.lines().rev().find(|l| l.starts_with("step:"));
    let error = stderr.lines().rev().find(|l| !l.trim().is_empty());
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "the browser test failed at {last_step:?}: {error:?} (its whole output is printed above)"
    );
    drop(up);
}
