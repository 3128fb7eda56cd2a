//! The `mno` binary end to end: `mno up` starts the platform (its own
//! nats-server child included), answers /readyz, stops cleanly on SIGTERM
//! losing nothing; operator commands read the live bus; bad settings get one
//! clear line and a non-zero exit.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mno_harness::{free_port, nats_server_binary, wait_for, NatsServer};

use crate::support;

/// Held by each test whose `mno up` starts its own nats-server child. Such an
/// `mno up` first adopts any server answering on the default port 4222, where
/// an earlier one's child listens: run side by side, one test would use
/// another's bus. So these tests take turns.
static OWN_BUS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `mno` with a clean environment, starting the installed nats-server when it needs one.
fn mno(data_dir: &Path) -> Command {
    let mut command = support::mno_command(data_dir);
    command.env("MNO_NATS_SERVER_BIN", nats_server_binary().unwrap());
    command
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Run a `mno up` that must fail; return its one error line. Bounded: one
/// that wrongly starts is killed and fails the test instead of hanging it.
fn failing_up(command: &mut Command) -> String {
    let mut child = command
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mno up");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("mno up should have failed but still ran after 60 s: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "mno up should have failed: {output:?}"
    );
    let lines: Vec<String> = stderr_lines(&output)
        .into_iter()
        .filter(|l| l.starts_with("mno:"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {output:?}");
    lines[0].clone()
}

/// A loopback port that refuses connections for as long as the socket lives:
/// bound, never listening. A port merely found free may be taken meanwhile by
/// another test's server (test binaries run side by side), which then answers.
fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use nix::sys::socket::{
        bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let bound: SockaddrIn = getsockname(fd.as_raw_fd()).unwrap();
    (fd, bound.port())
}

async fn get(url: &str) -> Option<reqwest::Response> {
    reqwest::get(url).await.ok()
}

/// `mno up` serving HTTP on `port`, its output discarded.
fn quiet_up(command: &mut Command, port: u16) -> Child {
    command
        .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    wait_for("mno to exit", Duration::from_secs(30), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await
}

#[tokio::test]
async fn mno_up_starts_its_own_bus_serves_readyz_and_stops_cleanly_losing_nothing() {
    let _turn = OWN_BUS.lock().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let metrics_port = free_port();
    let start = || {
        mno(data.path())
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MNO_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .arg("up")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut up = start();
    let mut first_line = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert!(first_line.starts_with("mno is up"), "{first_line}");

    let ready = wait_for("readyz", Duration::from_secs(30), || async {
        let r = get(&format!("{base}/readyz")).await?;
        (r.status() == 200).then_some(r)
    })
    .await;
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["bus"], "ok");
    assert_eq!(body["database"], "ok");
    let health = get(&format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // Metrics are the operator's, on their own address; the public edge has none.
    assert!(
        first_line.contains(&format!("metrics http://127.0.0.1:{metrics_port}/metrics")),
        "{first_line}"
    );
    let metrics = get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mno_stream_messages{stream=\"RECORDS\"} 0"),
        "{metrics}"
    );
    let edge = get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(edge.status(), 404, "the edge serves no metrics");

    // Its child nats-server is where `mno up` said; write an event there.
    let nats_url = std::fs::read_to_string(data.path().join("nats.url")).unwrap();
    let bus = mno_events::bus::connect(nats_url.trim()).await.unwrap();
    let publisher = mno_events::publish::Publisher::new(bus.js.clone(), "RECORDS");
    publisher
        .publish(mno_events::publish::Outgoing::new(
            "rec.o1.items.i1",
            "evt-1",
            "x".into(),
        ))
        .await
        .unwrap();

    // Operator view of the live bus.
    let streams = mno(data.path())
        .args(["streams", "--json"])
        .output()
        .unwrap();
    assert!(streams.status.success(), "{streams:?}");
    // It says which bus it read, and why that one (stderr: stdout stays the report).
    let said = String::from_utf8_lossy(&streams.stderr);
    assert!(
        said.contains(&format!("bus: {}", nats_url.trim())) && said.contains("nats.url"),
        "{said}"
    );
    let report: serde_json::Value = serde_json::from_slice(&streams.stdout).unwrap();
    let records = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "RECORDS")
        .unwrap();
    assert_eq!(records["messages"], 1);
    let table = mno(data.path()).arg("streams").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("RECORDS") && table.contains("rec.>"),
        "{table}"
    );

    // SIGTERM: exit 0, the child nats-server gone with it.
    sigterm(&up);
    assert!(wait_exit(&mut up).await.success());
    drop(bus);
    assert!(
        async_nats::connect(nats_url.trim()).await.is_err(),
        "the child nats-server stopped"
    );
    assert!(
        get(&format!("{base}/healthz")).await.is_none(),
        "HTTP stopped"
    );

    // Start again on the same data dir: the acknowledged event is still there.
    let mut again = start();
    wait_for("readyz after restart", Duration::from_secs(30), || async {
        let r = get(&format!("{base}/readyz")).await?;
        (r.status() == 200).then_some(())
    })
    .await;
    let streams = mno(data.path())
        .args(["streams", "--json"])
        .output()
        .unwrap();
    assert!(streams.status.success(), "{streams:?}");
    let report: serde_json::Value = serde_json::from_slice(&streams.stdout).unwrap();
    let records = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "RECORDS")
        .unwrap();
    assert_eq!(records["messages"], 1, "{report}");
    sigterm(&again);
    assert!(wait_exit(&mut again).await.success());
}

#[tokio::test]
async fn mno_up_uses_a_given_server_and_does_not_stop_it() {
    let server = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(mno(data.path()).env("MNO_NATS_URL", server.url()), port);
    wait_ready(port).await;
    assert!(
        !data.path().join("nats.url").exists(),
        "no child was started"
    );
    sigterm(&up);
    assert!(wait_exit(&mut up).await.success());
    let client = server.client().await;
    let js = async_nats::jetstream::new(client);
    assert!(
        js.get_stream("RECORDS").await.is_ok(),
        "the given server still runs, streams provisioned"
    );
}

#[tokio::test]
async fn mno_up_stops_on_sigterm_even_when_its_bus_is_gone() {
    let mut server = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(mno(data.path()).env("MNO_NATS_URL", server.url()), port);
    wait_ready(port).await;
    // The bus dies; nothing can be flushed or acknowledged any more.
    server.kill9();
    sigterm(&up);
    let status = wait_exit(&mut up).await;
    assert!(
        status.success(),
        "it stops, not hangs or dies by the signal: {status:?}"
    );
}

#[tokio::test]
async fn a_stop_signal_during_start_up_stops_cleanly_and_leaves_no_nats_server_behind() {
    let _turn = OWN_BUS.lock().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(&mut mno(data.path()), port);
    // The child's URL is written once it is up, while streams, database and
    // services are still starting: stop the platform right there.
    let url_file = data.path().join("nats.url");
    let nats_url = wait_for("the child's nats.url", Duration::from_secs(30), || {
        let url = std::fs::read_to_string(&url_file).ok();
        async move { url.filter(|u| !u.trim().is_empty()) }
    })
    .await;
    sigterm(&up);
    let status = wait_exit(&mut up).await;
    assert!(
        status.success(),
        "a clean stop, not death by signal: {status:?}"
    );
    let address = nats_url.trim().trim_start_matches("nats://").to_owned();
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "the nats-server child at {address} was stopped too"
    );
}

/// Whether process `pid` runs (exists and is not a zombie awaiting its reaper).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// The child nats-server's pid that `mno up` recorded under the data dir.
fn child_pid(data_dir: &Path) -> u32 {
    let record = std::fs::read_to_string(data_dir.join("nats.pid")).unwrap();
    record.split_whitespace().next().unwrap().parse().unwrap()
}

async fn wait_ready(port: u16) {
    wait_for("readyz", Duration::from_secs(30), || async {
        let r = get(&format!("http://127.0.0.1:{port}/readyz")).await?;
        (r.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn mno_up_starts_its_nats_server_again_when_it_dies() {
    let _turn = OWN_BUS.lock().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(&mut mno(data.path()), port);
    wait_ready(port).await;
    let first = child_pid(data.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Ready again, on a new server over the same store.
    wait_for("a new child", Duration::from_secs(30), || {
        let pid = std::fs::read_to_string(data.path().join("nats.pid")).ok();
        async move {
            pid.and_then(|p| p.trim().parse::<u32>().ok())
                .filter(|p| *p != first && running(*p))
        }
    })
    .await;
    wait_ready(port).await;
    sigterm(&up);
    assert!(wait_exit(&mut up).await.success());
    assert!(!data.path().join("nats.pid").exists());
}

#[tokio::test]
async fn a_nats_server_left_by_a_killed_mno_up_is_stopped_by_the_next_one_losing_nothing() {
    let _turn = OWN_BUS.lock().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(&mut mno(data.path()), port);
    wait_ready(port).await;
    let nats_url = std::fs::read_to_string(data.path().join("nats.url")).unwrap();
    let bus = mno_events::bus::connect(nats_url.trim()).await.unwrap();
    mno_events::publish::Publisher::new(bus.js.clone(), "RECORDS")
        .publish(mno_events::publish::Outgoing::new(
            "rec.o1.items.i1",
            "evt-1",
            "x".into(),
        ))
        .await
        .unwrap();
    drop(bus);

    // Killed: no chance to stop its child, which keeps serving the store.
    let leftover = child_pid(data.path());
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(running(leftover), "the child outlives a killed mno up");

    // The next start on this data dir stops it before starting its own.
    let mut again = quiet_up(&mut mno(data.path()), port);
    wait_ready(port).await;
    assert!(
        !running(leftover),
        "the leftover server {leftover} was stopped"
    );
    let fresh = child_pid(data.path());
    assert_ne!(fresh, leftover);
    assert!(running(fresh));
    let nats_url = std::fs::read_to_string(data.path().join("nats.url")).unwrap();
    let bus = mno_events::bus::connect(nats_url.trim()).await.unwrap();
    let mut records = bus.js.get_stream("RECORDS").await.unwrap();
    assert_eq!(
        records.info().await.unwrap().state.messages,
        1,
        "the acknowledged event is kept"
    );
    drop(bus);

    sigterm(&again);
    assert!(wait_exit(&mut again).await.success());
    assert!(!running(fresh), "a clean stop stops the child");
    assert!(!data.path().join("nats.pid").exists());
}

#[tokio::test]
async fn a_second_mno_up_on_a_data_dir_in_use_is_refused_in_one_clear_line() {
    let _turn = OWN_BUS.lock().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(&mut mno(data.path()), port);
    wait_ready(port).await;
    let line =
        failing_up(mno(data.path()).env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port())));
    assert!(
        line.contains("another mno up") && line.contains("MNO_DATA_DIR"),
        "{line}"
    );
    // The first one was not disturbed.
    wait_ready(port).await;
    sigterm(&up);
    assert!(wait_exit(&mut up).await.success());
}

#[tokio::test]
async fn one_data_dir_serves_one_mno_up_whatever_the_bus_and_a_killed_one_frees_it() {
    let server = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = quiet_up(mno(data.path()).env("MNO_NATS_URL", server.url()), port);
    wait_ready(port).await;

    // A second one on the same data dir, even on the same given bus, would share the SQLite file.
    let line = failing_up(
        mno(data.path())
            .env("MNO_NATS_URL", server.url())
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
    );
    assert!(
        line.contains("another mno up")
            && line.contains(&format!("pid {}", up.id()))
            && line.contains("MNO_DATA_DIR"),
        "{line}"
    );
    wait_ready(port).await;

    // Killed, it cannot release anything itself: the lock goes with the process.
    up.kill().unwrap();
    up.wait().unwrap();
    let mut again = quiet_up(mno(data.path()).env("MNO_NATS_URL", server.url()), port);
    wait_ready(port).await;
    sigterm(&again);
    assert!(wait_exit(&mut again).await.success());
}

#[test]
fn a_malformed_nats_url_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let line = failing_up(mno(data.path()).env("MNO_NATS_URL", "nats://host:notaport"));
    assert!(
        line.contains("MNO_NATS_URL") && line.contains("nats://host:port"),
        "{line}"
    );
}

#[test]
fn three_replicas_on_mno_ups_own_single_server_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let line = failing_up(mno(data.path()).env("MNO_STREAM_REPLICAS", "3"));
    assert!(
        line.contains("MNO_STREAM_REPLICAS is 3") && line.contains("point MNO_NATS_URL at"),
        "{line}"
    );
}

#[test]
fn a_postgresql_that_does_not_answer_is_named_with_its_cause() {
    let data = tempfile::tempdir().unwrap();
    let (_refusing, port) = refusing_port();
    let url = format!("postgres://mno@127.0.0.1:{port}/mno");
    let line = failing_up(mno(data.path()).env("MNO_DATABASE_URL", &url));
    assert!(
        line.contains(&url) && line.contains("refused") && line.contains("is the server running"),
        "{line}"
    );
}

#[test]
fn a_zero_sign_up_limit_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let line = failing_up(mno(data.path()).env("MNO_SIGNUPS_PER_ADDRESS", "0"));
    assert!(
        line.contains("MNO_SIGNUPS_PER_ADDRESS") && line.contains("1 or more"),
        "{line}"
    );
}

/// The platform does not verify emails: an operator address nobody holds yet
/// could be claimed by anyone who signs up with it, so it stops the start.
#[test]
fn an_operator_email_no_account_holds_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let line = failing_up(
        mno(data.path())
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("MNO_OPERATORS", "ops@example.com"),
    );
    assert!(
        line.contains("MNO_OPERATORS")
            && line.contains("ops@example.com")
            && line.contains("sign its operator up"),
        "{line}"
    );
}

#[test]
fn an_unreachable_server_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let (_refusing, port) = refusing_port();
    let url = format!("nats://127.0.0.1:{port}");
    let line = failing_up(
        mno(data.path())
            .env("MNO_NATS_URL", &url)
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
    );
    assert!(
        line.contains("no nats-server answers") && line.contains(&url),
        "{line}"
    );
}

#[test]
fn a_server_older_than_2_10_is_refused_naming_its_version() {
    // A peer that greets like a nats-server 2.9.10 (Debian's), then waits.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let info = format!(
                "INFO {{\"server_id\":\"OLD\",\"server_name\":\"old\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\"go1.19\",\"host\":\"127.0.0.1\",\"port\":{port},\"headers\":true,\"max_payload\":1048576,\"jetstream\":true}}\r\n"
            );
            let _ = stream.write_all(info.as_bytes());
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line.starts_with("PING") {
                    let _ = stream.write_all(b"PONG\r\n");
                }
                line.clear();
            }
        }
    });
    let data = tempfile::tempdir().unwrap();
    let line = failing_up(
        mno(data.path())
            .env("MNO_NATS_URL", format!("nats://127.0.0.1:{port}"))
            .env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
    );
    assert!(
        line.contains("version 2.9.10") && line.contains("2.10 or newer"),
        "{line}"
    );
    assert!(line.contains("deploy/nats/install.sh"), "{line}");
}

#[test]
fn a_data_dir_that_cannot_be_written_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let line = failing_up(
        mno(&file.join("data")).env("MNO_HTTP_ADDR", format!("127.0.0.1:{}", free_port())),
    );
    assert!(
        line.contains("MNO_DATA_DIR") && line.contains("cannot be written"),
        "{line}"
    );
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let line = failing_up(mno(data.path()).env("MNO_HTTP_ADDR", addr.to_string()));
    assert!(
        line.contains(&addr.to_string()) && line.contains("MNO_HTTP_ADDR"),
        "{line}"
    );
}

/// Run `mno bench <args>`, which must succeed; its JSON lines and their scenario names.
fn bench_figures(args: &[&str]) -> (Vec<serde_json::Value>, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let output = mno(data.path()).arg("bench").args(args).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap().to_owned())
        .collect();
    (lines, names)
}

#[tokio::test]
async fn a_report_piped_into_a_reader_that_stopped_reading_ends_quietly() {
    let server = NatsServer::start().await;
    let data = tempfile::tempdir().unwrap();
    // The reader is gone before the report is written: every write meets a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = mno(data.path())
        .env("MNO_NATS_URL", server.url())
        .arg("streams")
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bench_bus_prints_each_baseline_as_a_json_line() {
    let _heavy = support::HEAVY.blocking_lock();
    let (lines, names) = bench_figures(&["bus", "--messages", "2000", "--sync-messages", "200"]);
    assert_eq!(
        names,
        [
            "bus.publish_pipelined",
            "bus.publish_sync",
            "bus.durable_consume",
            "bus.ordered_replay"
        ]
    );
    for line in &lines {
        assert!(line["value"].as_f64().unwrap() > 0.0, "{line}");
        assert_eq!(line["ratio"], 1.0);
    }
}

#[test]
fn bench_ingest_prints_each_figure_with_what_a_record_cost_in_cpu() {
    let _heavy = support::HEAVY.blocking_lock();
    let (lines, names) = bench_figures(&[
        "ingest",
        "--records",
        "2000",
        "--clients",
        "4",
        "--seconds",
        "1",
        "--batch",
        "50",
    ]);
    assert_eq!(
        names,
        [
            "ingest",
            "ingest.vs_http_floor",
            "ingest.half_load",
            "ingest.batch"
        ]
    );
    for line in &lines {
        let (value, baseline) = (
            line["value"].as_f64().unwrap(),
            line["baseline"].as_f64().unwrap(),
        );
        assert!(value > 0.0 && baseline > 0.0, "{line}");
        let ratio = line["ratio"].as_f64().unwrap();
        assert!((ratio - value / baseline).abs() < 0.001, "{line}");
    }
    // A write costs more CPU than a raw publish of its bytes, in our process and in nats-server.
    let (single, floor, batch) = (&lines[0], &lines[1], &lines[3]);
    // The HTTP floor is measured in the same run, in passes, and costs less than a write.
    assert_eq!(floor["value"], single["value"], "{floor}");
    assert_eq!(
        floor["baseline_runs"].as_array().unwrap().len(),
        3,
        "{floor}"
    );
    assert!(
        floor["baseline_cpu_us_per_record"]["mno"].as_f64().unwrap()
            < single["cpu_us_per_record"]["mno"].as_f64().unwrap(),
        "{floor}"
    );
    for process in ["mno", "nats_server"] {
        let raw = single["baseline_cpu_us_per_record"][process]
            .as_f64()
            .unwrap();
        let written = single["cpu_us_per_record"][process].as_f64().unwrap();
        assert!(written > raw, "{process}: {single}");
        assert!(
            batch["cpu_us_per_record"][process].as_f64().unwrap() > 0.0,
            "{batch}"
        );
    }
    assert!(
        single["reference_publish"]["rate"].as_f64().unwrap() > 0.0,
        "{single}"
    );
    assert_eq!(batch["records"], 2000);
    // The baseline is the median of several passes, each shown, with a word on the noise.
    let runs = single["baseline_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{single}");
    let mut passes: Vec<f64> = runs.iter().map(|r| r.as_f64().unwrap()).collect();
    passes.sort_by(f64::total_cmp);
    assert!(
        (single["baseline"].as_f64().unwrap() - passes[1]).abs() < 0.01,
        "{single}"
    );
    assert!(single["noisy"].is_boolean(), "{single}");
}

#[test]
fn bench_mix_delivers_every_write_to_every_subscriber_at_a_separate_sink() {
    let _heavy = support::HEAVY.blocking_lock();
    let (lines, names) = bench_figures(&[
        "mix",
        "--clients",
        "2",
        "--apps",
        "2",
        "--seconds",
        "1",
        "--rate",
        "20",
        "--steady-seconds",
        "1",
    ]);
    assert_eq!(
        names,
        ["mix.writes", "mix.deliveries", "mix.latency", "mix.memory"]
    );
    let (writes, deliveries, latency, memory) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert!(writes["value"].as_f64().unwrap() > 0.0, "{writes}");
    assert!(writes["baseline"].as_f64().unwrap() > 0.0, "{writes}");
    // The bench fails unless the sink received every write once per app; the
    // figures count them from the writes made (not a rate times a nominal time).
    let written = writes["writes"].as_u64().unwrap();
    assert!(written > 0, "{writes}");
    assert_eq!(
        deliveries["deliveries"].as_u64(),
        Some(2 * written),
        "{writes} {deliveries}"
    );
    assert!(writes["baseline_writes"].as_u64().unwrap() > 0, "{writes}");
    assert!(
        deliveries["records_per_post"].as_f64().unwrap() >= 1.0,
        "{deliveries}"
    );
    assert!(
        latency["deliveries"].as_u64().unwrap() >= 2 * latency["writes"].as_u64().unwrap(),
        "{latency}"
    );
    assert!(latency["p99_ms"].as_f64().unwrap() >= latency["value"].as_f64().unwrap());
    assert!(memory["value"].as_f64().unwrap() > 1.0, "{memory}");
}

#[test]
fn bench_fanout_gives_latency_and_drain_figures_each_with_its_cpu_per_delivery() {
    let _heavy = support::HEAVY.blocking_lock();
    let (lines, names) = bench_figures(&[
        "fanout",
        "--apps",
        "2",
        "--rate",
        "100",
        "--seconds",
        "1",
        "--backlog",
        "300",
    ]);
    assert_eq!(names, ["fanout.latency", "fanout.deliveries"]);
    let (latency, drain) = (&lines[0], &lines[1]);
    // The bench fails unless every app received every event; the figures say how many.
    assert_eq!(latency["events"], 100, "{latency}");
    assert_eq!(latency["deliveries"], 200, "{latency}");
    assert!(latency["p99_ms"].as_f64().unwrap() >= latency["value"].as_f64().unwrap());
    assert!(drain["value"].as_f64().unwrap() > 0.0, "{drain}");
    assert_eq!(
        drain["baseline_runs"].as_array().unwrap().len(),
        3,
        "{drain}"
    );
    for figure in [latency, drain] {
        for process in ["mno", "nats_server"] {
            assert!(
                figure["cpu_us_per_delivery"][process].as_f64().unwrap() > 0.0,
                "{process}: {figure}"
            );
        }
    }
}

#[test]
fn bench_memory_measures_a_child_mno_up_holding_the_records_it_loaded() {
    let _heavy = support::HEAVY.blocking_lock();
    let data = tempfile::tempdir().unwrap();
    let output = mno(data.path())
        .args([
            "bench",
            "memory",
            "--records",
            "3000",
            "--apps",
            "2",
            "--changes",
            "150",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(output.stdout).unwrap().trim()).unwrap();
    assert_eq!(line["scenario"], "memory");
    // The bench itself fails unless the record store counts every record and every app got every change.
    assert_eq!(line["records"], 3000);
    assert_eq!(line["changes_delivered"], 300);
    let (peak, idle) = (
        line["value"].as_f64().unwrap(),
        line["baseline"].as_f64().unwrap(),
    );
    assert!(idle > 1.0 && peak >= idle, "{line}");
}
