//! The bus for `mno up` when MNO_NATS_URL is not set: the installed
//! nats-server started as a child with its store under the data dir.
//!
//! A child outlives an `mno up` that was killed (SIGKILL, the OOM killer), and
//! nats-server does not lock its store: a second server on the same store would
//! corrupt it. So the child's pid is kept beside its URL, and the next `mno up`
//! on that data dir stops such a leftover server before it starts its own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::proc_stat;

/// Where operator tools look for the bus when MNO_NATS_URL is unset.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
const DEFAULT_PORT: u16 = 4222;
const DEFAULT_MONITOR_PORT: u16 = 8222;
/// `mno up` writes the URL of its child server here, for `mno streams` and friends.
pub const URL_FILE: &str = "nats.url";
/// The child's process id, while it runs.
pub const PID_FILE: &str = "nats.pid";
/// How long a nats-server gets to flush its store after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// How the child server's file store reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NatsSync {
    /// Every write is synced (fsync) before JetStream acknowledges it, so an
    /// acknowledged write survives an OS crash or power loss on one node.
    Always,
    /// nats-server's default: the store is synced every 2 minutes; a write
    /// acknowledged in the last 2 minutes can be lost to an OS crash or power
    /// loss (not to a crash of nats-server or of `mno` alone).
    Default,
}

/// The config file holding what nats-server takes from a file only (its
/// store's sync policy); the rest is given on its command line.
const CONFIG_FILE: &str = "server.conf";

/// A nats-server started by `mno up`, started again on its port and store
/// whenever it exits until [`ChildNats::stop`]: the platform's clients
/// reconnect to it, and nothing acknowledged is lost (its store is on disk).
pub struct ChildNats {
    pub url: String,
    pub monitor_url: String,
    pub log: PathBuf,
    /// The running server's pid; 0 while it is being started again.
    pid: Arc<AtomicU32>,
    stop: Option<oneshot::Sender<()>>,
    /// Owns the server's process: dropping this value (without a stop) kills it.
    supervisor: Option<JoinHandle<Result<()>>>,
}

/// How to start the server, the first time and after it exited.
struct Launch {
    binary: PathBuf,
    config: PathBuf,
    store: PathBuf,
    port: u16,
    monitor_port: u16,
    log: PathBuf,
    /// Where its pid is recorded, removed once it stopped.
    pid_file: PathBuf,
}

impl Launch {
    fn spawn(&self) -> Result<Child> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(["-a", "127.0.0.1", "-js", "--server_name", "mno-up"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        if let Some(pid) = child.id() {
            std::fs::write(&self.pid_file, pid.to_string())
                .with_context(|| format!("write {}", self.pid_file.display()))?;
        }
        Ok(child)
    }
}

/// A server that ran at least this long before exiting is started again at
/// once; one that exits sooner waits longer each time (up to [`MAX_RESTART_DELAY`]).
const STEADY_RUN: Duration = Duration::from_secs(30);
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(200);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// The nats-server binary: the configured one, else `.tools/nats/bin/nats-server`
/// under the current directory or any parent of it or of the `mno` binary.
pub fn find_binary(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = configured {
        if path.exists() {
            return Ok(path.to_owned());
        }
        bail!(
            "MNO_NATS_SERVER_BIN {} does not exist; run `bash deploy/nats/install.sh` or fix the path",
            path.display()
        );
    }
    let relative = Path::new(".tools/nats/bin/nats-server");
    let mut starts = vec![std::env::current_dir()?];
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        for dir in start.ancestors() {
            let candidate = dir.join(relative);
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "no nats-server found (looked for .tools/nats/bin/nats-server here and above); run `bash deploy/nats/install.sh`, or set MNO_NATS_URL to a running nats-server 2.10+"
    )
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn pick_port(preferred: u16) -> Result<u16> {
    if preferred != 0 && port_is_free(preferred) {
        return Ok(preferred);
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ChildNats {
    /// Start `binary` with JetStream and its store under `data_dir/nats`, and
    /// wait until it answers. With `default_ports` it listens on 4222 (and
    /// monitors on 8222) when those are free, so operator tools find it.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        default_ports: bool,
        sync: NatsSync,
    ) -> Result<ChildNats> {
        let dir = data_dir.join("nats");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("create the nats store dir {}", dir.display()))?;
        let config = dir.join(CONFIG_FILE);
        let sync_interval = match sync {
            NatsSync::Always => "jetstream {\n  sync_interval: always\n}\n",
            NatsSync::Default => "",
        };
        std::fs::write(
            &config,
            format!("# Written by mno at each start (MNO_NATS_SYNC).\n{sync_interval}"),
        )
        .with_context(|| format!("write {}", config.display()))?;
        let (port, monitor_port) = if default_ports {
            (pick_port(DEFAULT_PORT)?, pick_port(DEFAULT_MONITOR_PORT)?)
        } else {
            (pick_port(0)?, pick_port(0)?)
        };
        let launch = Launch {
            binary: binary.to_owned(),
            config,
            store: dir.join("jetstream"),
            port,
            monitor_port,
            log: dir.join("server.log"),
            pid_file: data_dir.join(PID_FILE),
        };
        let mut child = launch.spawn()?;
        let url = format!("nats://127.0.0.1:{port}");
        wait_until_ready(&mut child, &url, &launch.log).await?;
        std::fs::write(data_dir.join(URL_FILE), &url)
            .with_context(|| format!("write {}", data_dir.join(URL_FILE).display()))?;
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
        let (stop, stopped) = oneshot::channel();
        Ok(ChildNats {
            url,
            monitor_url: format!("http://127.0.0.1:{monitor_port}"),
            log: launch.log.clone(),
            pid: pid.clone(),
            stop: Some(stop),
            supervisor: Some(tokio::spawn(supervise(launch, child, pid, stopped))),
        })
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }

    /// Stop gracefully (SIGTERM lets JetStream flush its store), then wait.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.supervisor.take() {
            Some(supervisor) => supervisor.await?,
            None => Ok(()),
        }
    }
}

impl Drop for ChildNats {
    fn drop(&mut self) {
        // Not stopped (a start that failed later on): the child goes with the
        // supervisor's task, as a `kill_on_drop` child goes with its handle.
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
    }
}

async fn wait_until_ready(child: &mut Child, url: &str, log: &Path) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the nats-server child exited ({status}) before answering; see {}: {}",
                log.display(),
                last_line(log)
            );
        }
        if async_nats::connect(url).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the nats-server child did not answer within 20 s; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Keep the server running until told to stop: one that exits (killed, out
/// of memory) is started again on the same port and store. Then stop it.
async fn supervise(
    launch: Launch,
    mut child: Child,
    pid: Arc<AtomicU32>,
    mut stopped: oneshot::Receiver<()>,
) -> Result<()> {
    let mut started_at = tokio::time::Instant::now();
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        tokio::select! {
            status = child.wait() => {
                pid.store(0, Ordering::Relaxed);
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                delay = if started_at.elapsed() >= STEADY_RUN {
                    FIRST_RESTART_DELAY
                } else {
                    (delay * 2).min(MAX_RESTART_DELAY)
                };
                tracing::error!(
                    %status, log = %launch.log.display(), last_line = %last_line(&launch.log),
                    "the nats-server child exited; starting it again on its port and store in {delay:?}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = &mut stopped => return Ok(()),
                }
                match launch.spawn() {
                    Ok(next) => {
                        child = next;
                        started_at = tokio::time::Instant::now();
                        pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                        tracing::warn!(pid = child.id(), "nats-server child started again");
                    }
                    // Tried again after the next delay: wait on a child that has exited.
                    Err(e) => tracing::error!(error = %e, "could not start the nats-server child again"),
                }
            }
            _ = &mut stopped => break,
        }
    }
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => {
            status?;
        }
        Err(_) => {
            tracing::warn!("nats-server did not stop within 15 s of SIGTERM; killing it");
            child.kill().await?;
        }
    }
    let _ = std::fs::remove_file(&launch.pid_file);
    Ok(())
}

/// Stop a nats-server that an earlier `mno up` on `data_dir` started and did
/// not stop (it was killed): it still serves this data dir's store. Returns
/// its pid if there was one. Only a process whose command line names this
/// store is stopped (a pid may have been reused); without `/proc` nothing is.
/// Called under the data dir's lock: no running `mno up` owns that server.
pub async fn stop_leftover(data_dir: &Path) -> Result<Option<u32>> {
    let pid_file = data_dir.join(PID_FILE);
    let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| parse_pid_file(&text))
    else {
        return Ok(None);
    };
    let store = data_dir.join("nats").join("jetstream");
    if !serves_store(pid, &store) {
        let _ = std::fs::remove_file(&pid_file);
        return Ok(None);
    }
    tracing::warn!(
        pid,
        store = %store.display(),
        "a nats-server started by an earlier mno up that did not stop cleanly still serves this data dir; stopping it"
    );
    let target = Pid::from_raw(pid as i32);
    let _ = kill(target, Signal::SIGTERM);
    if !gone_within(pid, &store, STOP_GRACE).await {
        tracing::warn!(
            pid,
            "the leftover nats-server did not stop within 15 s of SIGTERM; killing it"
        );
        let _ = kill(target, Signal::SIGKILL);
        gone_within(pid, &store, Duration::from_secs(5)).await;
    }
    let _ = std::fs::remove_file(&pid_file);
    Ok(Some(pid))
}

/// The child's pid as [`ChildNats::start`] writes it (earlier versions
/// wrote their own pid after it).
fn parse_pid_file(text: &str) -> Option<u32> {
    text.split_whitespace().next()?.parse().ok()
}

async fn gone_within(pid: u32, store: &Path, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while serves_store(pid, store) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Whether process `pid` runs with `store` on its command line; a zombie (it
/// exited, its new parent has yet to reap it) no longer does.
fn serves_store(pid: u32, store: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let store = store.to_string_lossy();
    !is_zombie(pid)
        && cmdline
            .split(|byte| *byte == 0)
            .any(|arg| arg == store.as_bytes())
}

fn is_zombie(pid: u32) -> bool {
    proc_stat::read(&pid.to_string()).is_some_and(|stat| proc_stat::state(&stat) == Some("Z"))
}

fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().last().map(str::to_owned))
        .unwrap_or_default()
}

/// The bus URL for operator tools: MNO_NATS_URL, else the one `mno up` wrote
/// under the data dir, else the default.
pub fn operator_url(explicit: Option<&str>, data_dir: &Path) -> String {
    if let Some(url) = explicit {
        return url.to_owned();
    }
    std::fs::read_to_string(data_dir.join(URL_FILE))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_childs_pid() {
        assert_eq!(parse_pid_file("4242"), Some(4242));
        assert_eq!(
            parse_pid_file("4242 17\n"),
            Some(4242),
            "as an earlier version wrote it"
        );
        assert_eq!(parse_pid_file("x 17"), None);
        assert_eq!(parse_pid_file(""), None);
    }

    #[test]
    fn a_process_that_does_not_name_the_store_is_not_a_leftover() {
        // This test process runs, but its command line names no store.
        assert!(!serves_store(
            std::process::id(),
            Path::new("/no/such/store")
        ));
        assert!(!is_zombie(std::process::id()));
    }

    /// What the running server reports of its store's sync policy.
    async fn syncs_always(child: &ChildNats) -> bool {
        let varz: serde_json::Value = reqwest::get(format!("{}/varz", child.monitor_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        varz["jetstream"]["config"]["sync_always"] == true
    }

    #[tokio::test]
    async fn a_child_that_dies_is_started_again_on_its_port_with_its_store() {
        let binary = find_binary(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let child = ChildNats::start(&binary, dir.path(), false, NatsSync::Default)
            .await
            .unwrap();
        let client = async_nats::connect(&child.url).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "KEPT".into(),
            subjects: vec!["kept".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("kept", "acknowledged".into())
            .await
            .unwrap()
            .await
            .unwrap();

        let first = child.pid().unwrap();
        kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
        // The same client finds the server again on its port, with what it held.
        let mut stream = 'found: {
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(stream) = js.get_stream("KEPT").await {
                    break 'found stream;
                }
            }
            panic!("the server did not come back within 30 s");
        };
        assert_eq!(stream.info().await.unwrap().state.messages, 1);
        let again = child.pid().unwrap();
        assert_ne!(again, first);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap(),
            again.to_string()
        );
        child.stop().await.unwrap();
        assert!(!dir.path().join(PID_FILE).exists());
        assert!(!serves_store(again, &dir.path().join("nats")));
    }

    #[tokio::test]
    async fn the_child_syncs_every_write_unless_told_to_keep_the_servers_default() {
        let binary = find_binary(None).unwrap();
        for (sync, always) in [(NatsSync::Always, true), (NatsSync::Default, false)] {
            let dir = tempfile::tempdir().unwrap();
            let child = ChildNats::start(&binary, dir.path(), false, sync)
                .await
                .unwrap();
            assert_eq!(syncs_always(&child).await, always, "{sync:?}");
            child.stop().await.unwrap();
        }
    }
}
