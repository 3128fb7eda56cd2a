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
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

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

/// A nats-server started by `mno up`.
pub struct ChildNats {
    child: Child,
    pub url: String,
    pub monitor_url: String,
    pub log: PathBuf,
    /// Where its pid is recorded, removed once it stopped.
    pid_file: Option<PathBuf>,
}

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
        let log = dir.join("server.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-js", "--server_name", "mno-up"])
            .args(["-p", &port.to_string(), "-m", &monitor_port.to_string()])
            .arg("-sd")
            .arg(dir.join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut started = ChildNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor_url: format!("http://127.0.0.1:{monitor_port}"),
            log,
            pid_file: None,
        };
        if let Some(pid) = started.child.id() {
            started.pid_file = Some(data_dir.join(PID_FILE));
            std::fs::write(data_dir.join(PID_FILE), pid.to_string())
                .with_context(|| format!("write {}", data_dir.join(PID_FILE).display()))?;
        }
        started.wait_until_ready().await?;
        std::fs::write(data_dir.join(URL_FILE), &started.url)
            .with_context(|| format!("write {}", data_dir.join(URL_FILE).display()))?;
        Ok(started)
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the nats-server child exited ({status}) before answering; see {}: {}",
                    self.log.display(),
                    last_line(&self.log)
                );
            }
            if async_nats::connect(&self.url).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the nats-server child did not answer within 20 s; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stop gracefully (SIGTERM lets JetStream flush its store), then wait.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                tracing::warn!("nats-server did not stop within 15 s of SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        if let Some(pid_file) = &self.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        Ok(())
    }
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
