//! A throwaway PostgreSQL cluster for tests about PostgreSQL.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the
//! cluster is created and started as the `postgres` user (runuser). Trust
//! authentication on 127.0.0.1 only; the data dir is a temp dir.
//!
//! A cluster costs an initdb (a second or more); a database in a running
//! cluster costs a `createdb`. So a test that does not stop or kill PostgreSQL
//! takes a fresh database of its binary's shared cluster
//! ([`Postgres::shared_database`]), started on first use.

use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use nix::unistd::{Uid, User};
use tempfile::TempDir;

use crate::{free_port, run_after_exit};

pub struct Postgres {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
}

/// The cluster the tests of this binary share, and what stops it.
struct Shared {
    postgres: Postgres,
    /// Held open for as long as this process lives: see [`run_after_exit`].
    _janitor: ChildStdin,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static SHARED_DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Postgres {
    /// The URL of a new, empty database in this test binary's shared cluster,
    /// started on the first call. Blocking (it runs `createdb`).
    pub fn shared_database() -> String {
        let shared = SHARED.get_or_init(|| {
            let postgres = Postgres::start();
            let janitor = postgres.stop_after_exit();
            Shared {
                postgres,
                _janitor: janitor,
            }
        });
        let n = SHARED_DATABASES.fetch_add(1, Ordering::Relaxed);
        shared.postgres.new_database(&format!("test_{n}"))
    }

    /// Stop this cluster and remove its files once this process has exited.
    fn stop_after_exit(&self) -> ChildStdin {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        run_after_exit(&format!(
            "{stop} -D '{}' -m immediate stop; rm -rf '{}'",
            self.data_dir(),
            self.dir.path().display()
        ))
    }

    /// Start a fresh cluster and create database `mno`; panics with how to fix it if it cannot.
    pub fn start() -> Postgres {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e:#}"))
    }

    pub fn try_start() -> Result<Postgres> {
        let bin = pg_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("mno-pg-").tempdir()?;
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres")?
                .context("no `postgres` user; install PostgreSQL (apt-get install postgresql)")?;
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))?;
            Some("postgres".to_owned())
        } else {
            None
        };
        let mut pg = Postgres {
            port: free_port(),
            dir,
            bin,
            run_as,
        };
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        // The free port may be taken by another test between picking and
        // binding it: pick another one and start again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match pg.start_server(&data) {
                Ok(()) => break,
                Err(e) if attempts < 5 && format!("{e:#}").contains("Address already in use") => {
                    pg.port = free_port();
                }
                Err(e) => return Err(e),
            }
        }
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "mno",
            ],
        )?;
        Ok(pg)
    }

    /// `pg_ctl start` on this cluster's port; the server's log is in the error.
    fn start_server(&self, data: &str) -> Result<()> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = format!("{}/pg.log", self.dir.path().display());
        let _ = std::fs::remove_file(&log);
        self.run(
            "pg_ctl",
            &["-D", data, "-o", &opts, "-l", &log, "-w", "start"],
        )
        .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/mno", self.port)
    }

    /// A URL of a new, empty database in this cluster (for test isolation).
    pub fn new_database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        )
        .expect("createdb");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn data_dir(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", program.display()))?;
        if !output.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

/// Where initdb and pg_ctl are: `$MNO_PG_BIN`, else Debian's newest /usr/lib/postgresql/<v>/bin.
fn pg_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("MNO_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql; install PostgreSQL (apt-get install postgresql) or set MNO_PG_BIN")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin; install PostgreSQL or set MNO_PG_BIN")
}
