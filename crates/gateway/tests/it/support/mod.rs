//! What the tests of the `mno` binary share.

use std::path::Path;
use std::process::{Command, Stdio};

/// `mno` with a clean environment (no `MNO_*` of the caller leaks in), the
/// given data dir and quiet logs.
pub fn mno_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mno"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MNO_") {
            command.env_remove(key);
        }
    }
    command
        .env("MNO_DATA_DIR", data_dir)
        .env("MNO_LOG", "warn")
        // Side by side, tests must not contend for the default metrics port.
        .env("MNO_METRICS_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null());
    command
}

/// Held for its whole run by each test that loads the machine most (the
/// benches, scale-out, the projection crash, the browser): side by side, two
/// of them starve each other past their waits, so each runs beside light
/// tests only. A tokio mutex: a failed test does not poison it for the next.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running `mno up`, stopped (SIGTERM, then reaped) however the test ends.
pub struct Up(pub std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// Wait until the platform at `base` answers `/readyz` with success.
pub async fn wait_ready(base: &str) {
    mno_harness::wait_for("readyz", std::time::Duration::from_secs(60), || async {
        let ok = reqwest::get(format!("{base}/readyz")).await.ok()?;
        ok.status().is_success().then_some(())
    })
    .await;
}
