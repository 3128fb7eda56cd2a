//! Test harness: real infrastructure for integration tests, never mocks.
//!
//! - [`NatsServer`]: a nats-server on a free port with its own temporary store
//!   dir; it can be stopped, killed with SIGKILL and restarted on the same port
//!   and store, which is how fault tests prove nothing acknowledged is lost.
//! - [`NatsCluster`]: three JetStream nodes clustered on loopback ports.
//! - [`Postgres`]: a throwaway PostgreSQL cluster (initdb + pg_ctl on a free
//!   port, run as the `postgres` user when the tests run as root), or a fresh
//!   database of the test binary's shared cluster ([`Postgres::shared_database`]).
//! - [`NatsAccount`]: a JetStream account of its own on the test binary's
//!   shared nats-server, for tests that connect to the bus themselves (see
//!   there why a whole platform keeps a server of its own).
//! - [`on_both_databases!`]: one test run over SQLite and over PostgreSQL.
//!
//! Everything is cleaned up on drop, shared servers when the binary exits.
//! No test depends on a server started by hand or on a fixed port.

mod databases;
mod nats;
mod postgres;

pub use databases::{DatabaseFixture, TestOutcome};
pub use nats::{nats_server_binary, NatsAccount, NatsCluster, NatsServer};
pub use postgres::Postgres;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// Run a shell `script` once this process has exited, however it exits (a
/// panic, SIGKILL): the shell waits for end of file on its stdin, whose only
/// writer is the returned handle. Keep the handle for as long as the process
/// lives. This is how servers shared by a test binary, held in statics that
/// are never dropped, are stopped.
pub(crate) fn run_after_exit(script: &str) -> ChildStdin {
    // The shell outlives this process by design: nobody is left to wait for it.
    #[allow(clippy::zombie_processes)]
    let mut janitor = Command::new("sh")
        .args(["-c", &format!("read _; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the shell that cleans up after this process");
    janitor.stdin.take().expect("the shell's stdin is piped")
}

/// The root of the workspace (where `.tools/` and `deploy/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the harness lives two levels below the workspace root")
}

/// Poll `check` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
