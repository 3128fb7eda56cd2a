//! nats-server processes for tests.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::{free_port, run_after_exit, workspace_root};

/// The nats-server to run: `$MNO_NATS_SERVER_BIN`, else the one
/// `deploy/nats/install.sh` put in `.tools/nats/bin`.
pub fn nats_server_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("MNO_NATS_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let installed = workspace_root().join(".tools/nats/bin/nats-server");
    if installed.exists() {
        return Ok(installed);
    }
    bail!(
        "no nats-server at {}; run `bash deploy/nats/install.sh` first (or set MNO_NATS_SERVER_BIN)",
        installed.display()
    )
}

/// A single JetStream node on free ports with its own store dir.
pub struct NatsServer {
    pub port: u16,
    pub monitor_port: u16,
    store: TempDir,
    child: Option<Child>,
    log: PathBuf,
    /// A configuration file (the shared server's accounts), if any.
    config: Option<PathBuf>,
}

impl NatsServer {
    /// Start a server and wait until JetStream answers.
    pub async fn start() -> NatsServer {
        Self::start_configured(None).await
    }

    /// As [`NatsServer::start`], with this configuration file's text.
    async fn start_configured(config: Option<String>) -> NatsServer {
        let store = tempfile::Builder::new()
            .prefix("mno-nats-")
            .tempdir()
            .expect("create a temp store dir");
        let log = store.path().join("server.log");
        let config = config.map(|text| {
            let path = store.path().join("server.conf");
            std::fs::write(&path, text).expect("write the server's configuration");
            path
        });
        let mut server = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            store,
            child: None,
            log,
            config,
        };
        // Ports picked free can be taken by another test before the server
        // binds them: then it exits, and it starts again on other ports.
        for _ in 0..5 {
            match server.spawn().await {
                Ok(()) => return server,
                Err(log) if log.contains("address already in use") => {
                    server.port = free_port();
                    server.monitor_port = free_port();
                }
                Err(log) => panic!("nats-server exited at start; its log:\n{log}"),
            }
        }
        panic!("nats-server found no free port in 5 tries")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// A plain client; reconnects on its own after a restart.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.url())
            .await
            .expect("connect to the test nats-server")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Graceful stop (SIGTERM): the server flushes and exits.
    pub fn stop(&mut self) {
        self.signal_and_wait(Signal::SIGTERM);
    }

    /// Crash it: SIGKILL, no flush, no goodbye.
    pub fn kill9(&mut self) {
        self.signal_and_wait(Signal::SIGKILL);
    }

    /// Start it again on the same port and the same store.
    pub async fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        if let Err(log) = self.spawn().await {
            panic!(
                "nats-server did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
    }

    fn signal_and_wait(&mut self, signal: Signal) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
            let _ = child.wait();
        }
    }

    /// Start the server on this value's ports and wait for JetStream; `Err`
    /// holds the server's log when it exited instead.
    async fn spawn(&mut self) -> Result<(), String> {
        let binary = nats_server_binary().unwrap_or_else(|e| panic!("{e:#}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let mut command = Command::new(&binary);
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-js"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .arg("-sd")
            .arg(self.store.path().join("jetstream"))
            .args(["--server_name", &format!("test-{}", self.port)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        self.child = Some(child);
        let url = self.url();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Our own server must be the one answering, not another on a port we lost.
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .to_lowercase());
            }
            if jetstream_answers(&url).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("nats-server at {url} did not get JetStream ready in 20 s; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.signal_and_wait(Signal::SIGKILL);
    }
}

/// How many accounts the shared server holds: more than the tests of any one
/// binary take.
const SHARED_ACCOUNTS: usize = 200;

/// The nats-server the tests of this binary share, and what stops it.
struct SharedServer {
    server: NatsServer,
    /// Held open for as long as this process lives: see [`run_after_exit`].
    _janitor: ChildStdin,
}

static SHARED_SERVER: OnceLock<SharedServer> = OnceLock::new();
static SHARED_ACCOUNTS_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A JetStream account of its own on this test binary's shared nats-server:
/// its streams, consumers and KV buckets are seen by no other account, so a
/// test may count a stream's messages or list its consumers as on a server of
/// its own. The server starts on first use and is stopped when the binary exits.
///
/// A test that stops, kills or restarts the server, or reads its monitoring
/// port (which spans all accounts), needs a [`NatsServer`] of its own. So does
/// a whole platform (or an `mno` process): the product connects with a URL and
/// no credentials, which lands in no account of a test's own, and one bus
/// serves one platform by design (the second one is refused).
pub struct NatsAccount {
    url: String,
    user: String,
}

impl NatsAccount {
    /// The next unused account, starting the shared server on the first call.
    /// Blocking the caller's thread while the server starts.
    pub fn take() -> NatsAccount {
        let shared = SHARED_SERVER.get_or_init(start_shared_server);
        // Account 0 is the one connections without credentials land in (the harness's readiness check).
        let n = SHARED_ACCOUNTS_TAKEN.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(
            n < SHARED_ACCOUNTS,
            "the shared nats-server has {SHARED_ACCOUNTS} accounts, all taken: raise SHARED_ACCOUNTS"
        );
        NatsAccount {
            url: shared.server.url(),
            user: format!("a{n}"),
        }
    }

    /// The account another process was handed (its URL and user), as in a
    /// test's child process.
    pub fn new(url: String, user: String) -> NatsAccount {
        NatsAccount { url, user }
    }

    /// The server's URL; connecting to this account takes [`NatsAccount::connect_options`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account's user name, which is also its password.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Options that connect as this account's user.
    pub fn connect_options(&self) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::with_user_and_password(self.user.clone(), self.user.clone())
    }

    /// A plain client of this account.
    pub async fn client(&self) -> async_nats::Client {
        self.connect_options()
            .connect(&self.url)
            .await
            .expect("connect to the shared nats-server")
    }
}

/// Start the shared server on a thread of its own (the caller may be inside a
/// test's runtime, which cannot block on another one).
fn start_shared_server() -> SharedServer {
    let accounts: String = (0..SHARED_ACCOUNTS)
        .map(|n| {
            format!("  a{n}: {{ jetstream: enabled, users: [{{user: a{n}, password: a{n}}}] }}\n")
        })
        .collect();
    let config = format!("accounts {{\n{accounts}}}\nno_auth_user: a0\n");
    let server = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime to start the shared nats-server")
            .block_on(NatsServer::start_configured(Some(config)))
    })
    .join()
    .expect("start the shared nats-server");
    let pid = server
        .child
        .as_ref()
        .expect("the shared nats-server runs")
        .id();
    let janitor = run_after_exit(&format!(
        "kill -9 {pid}; rm -rf '{}'",
        server.store_dir().display()
    ));
    SharedServer {
        server,
        _janitor: janitor,
    }
}

/// Whether a server at `url` answers JetStream's account query.
async fn jetstream_answers(url: &str) -> bool {
    match async_nats::connect(url).await {
        Ok(client) => async_nats::jetstream::new(client)
            .query_account()
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// Three JetStream nodes clustered over loopback.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    dir: TempDir,
}

pub struct NatsNode {
    pub name: String,
    pub port: u16,
    pub cluster_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    fn spawn(&mut self, log_dir: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("{}.log", self.name)))?;
        let child = Command::new(nats_server_binary()?)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn a cluster node")?;
        self.child = Some(child);
        Ok(())
    }
}

impl NatsCluster {
    /// Start three nodes and wait until the cluster has a JetStream meta leader.
    pub async fn start() -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("mno-nats-cluster-")
            .tempdir()
            .expect("create a temp dir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cp)| format!("\"nats-route://127.0.0.1:{cp}\""))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let config = dir.path().join(format!("{name}.conf"));
            let store = dir.path().join(&name);
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\ncluster {{\n  name: mno-test\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{}]\n}}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .expect("write node config");
            let mut node = NatsNode {
                name,
                port: *port,
                cluster_port: *cluster_port,
                config,
                child: None,
            };
            node.spawn(dir.path()).expect("start a cluster node");
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes, dir };
        cluster.wait_ready().await;
        cluster
    }

    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Restart a killed node with its store.
    pub async fn restart(&mut self, index: usize) {
        self.nodes[index].kill9();
        self.nodes[index]
            .spawn(self.dir.path())
            .expect("restart a cluster node");
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let url = self.nodes[0].url();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(client) = async_nats::connect(&url).await {
                let js = async_nats::jetstream::new(client);
                // In clustered mode the account info answers only once a meta leader exists.
                if js.query_account().await.is_ok() {
                    return;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| {
                        std::fs::read_to_string(self.dir.path().join(format!("{}.log", n.name)))
                            .unwrap_or_default()
                    })
                    .collect();
                panic!(
                    "the nats cluster did not become ready in 30 s:\n{}",
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
    }
}
