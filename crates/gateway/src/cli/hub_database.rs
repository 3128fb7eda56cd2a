//! The Hub's database as the operator commands that work beside a running
//! platform (`mno sso`, `mno users`) find it: the same `MNO_DATA_DIR` /
//! `MNO_DATABASE_URL` as `mno up`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use mno_hub::store::Store;

#[derive(Debug, clap::Args)]
pub struct HubDatabase {
    /// Where `mno up` keeps its state (SQLite lives here unless MNO_DATABASE_URL is set).
    #[arg(long, env = "MNO_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// SQL database; SQLite under the data dir when unset, or a postgres:// URL.
    #[arg(long, env = "MNO_DATABASE_URL", global = true)]
    database_url: Option<String>,
}

impl HubDatabase {
    /// The Hub's tables, migrated as `mno up` would, and the database's name
    /// for messages (without a password).
    pub async fn open(&self) -> Result<(Store, String)> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| mno_events::db::sqlite_url(&self.data_dir));
        let name = mno_events::db::redact(&url);
        let db = mno_events::db::open(&url).await.with_context(|| {
            format!("open the platform's database {name} (set MNO_DATA_DIR or MNO_DATABASE_URL to the ones `mno up` uses)")
        })?;
        Ok((Store::open(db).await?, name))
    }
}
