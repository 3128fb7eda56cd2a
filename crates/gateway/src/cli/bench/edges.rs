//! Edge processes for the benches: `mno serve --role edge` children of this
//! process on the bench's bus and database, so that the cost of running the
//! platform as several processes is measured (`mno bench ingest --edges N`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use super::report::BenchBus;
use crate::platform::RunningPlatform;

/// Running edge processes, stopped (SIGTERM) when dropped.
pub struct Edges {
    children: Vec<Child>,
    /// Each edge's base URL.
    pub bases: Vec<String>,
}

/// Start `n` edges beside `platform` (which runs the other roles), their CPU counted by `bench`.
pub fn start(n: usize, bench: &BenchBus, platform: &RunningPlatform, dir: &Path) -> Result<Edges> {
    let binary = std::env::current_exe().context("find the mno binary to start edges with")?;
    let mut edges = Edges {
        children: Vec::new(),
        bases: Vec::new(),
    };
    for i in 0..n {
        let data = dir.join(format!("edge-{i}"));
        std::fs::create_dir_all(&data)?;
        let mut command = Command::new(&binary);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MNO_")) {
            command.env_remove(key);
        }
        let mut child = command
            .args(["serve", "--role", "edge"])
            .env("MNO_NATS_URL", &bench.url)
            .env("MNO_DATABASE_URL", platform.config.database_url())
            .env("MNO_DATA_DIR", &data)
            .env("MNO_INSTANCE", format!("bench-edge-{i}"))
            .env("MNO_HTTP_ADDR", "127.0.0.1:0")
            .env("MNO_METRICS_ADDR", "127.0.0.1:0")
            .env("MNO_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("start an edge process")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .context("read the edge's first line")?;
        let Some(base) = line.split_whitespace().find(|w| w.starts_with("http://")) else {
            let _ = child.kill();
            bail!("edge {i} did not start: {line:?}");
        };
        edges.bases.push(base.to_owned());
        bench.measure_also(child.id());
        edges.children.push(child);
    }
    Ok(edges)
}

impl Drop for Edges {
    fn drop(&mut self) {
        for child in &mut self.children {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}
