//! One platform per data dir.
//!
//! Two platforms on one data dir would share its SQLite file (both would run
//! the projections and the Hub's outbox relay over the same tables) and, when
//! each starts its own nats-server, its store. The platform therefore holds an
//! advisory lock (`flock`) on `<data dir>/mno.lock` while it runs, and a second
//! one is refused, whichever bus it uses. The kernel drops the lock when its
//! holder exits, however it exits: a killed `mno up` never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

const LOCK_FILE: &str = "mno.lock";

/// Held for as long as the platform runs; dropping it releases the data dir.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Take the data dir, or say which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder_pid(&mut file)
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                bail!(
                    "another mno up{holder} runs on the data dir {}; stop it first, or give this one its own MNO_DATA_DIR",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                bail!("cannot lock {} ({e}); the data dir must be on a local file system that supports locks", path.display())
            }
        }
        // The pid is only for the message a second platform prints.
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file })
    }
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_dir_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        let refused = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            refused.contains("another mno up")
                && refused.contains(&format!("pid {}", std::process::id()))
                && refused.contains("MNO_DATA_DIR"),
            "{refused}"
        );
        drop(held);
        DataDirLock::acquire(dir.path()).expect("free again once the holder lets go");
    }

    #[test]
    fn other_data_dirs_are_not_affected() {
        let one = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let _held = DataDirLock::acquire(one.path()).unwrap();
        DataDirLock::acquire(other.path()).expect("a different data dir is free");
    }
}
