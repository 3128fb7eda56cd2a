//! `mno sso`: operate single sign-on.
//!
//! - `rotate-keys`: a new ID token signing key; the old one stays published in
//!   the JWKS until the tokens it signed have expired. Works on the database of
//!   a running platform (the same `MNO_DATABASE_URL` / `MNO_DATA_DIR`): the
//!   platform signs with the new key from its next token.
//! - `keys`: the signing keys and until when each is published.

use anyhow::Result;
use mno_hub::sso::keys;
use mno_hub::store::rfc3339;

use super::hub_database::HubDatabase;

use crate::reportln;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    database: HubDatabase,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Sign ID tokens with a new key; the old one stays published until its tokens expire.
    RotateKeys {
        /// How long the old key stays published: the ID token lifetime (1 hour).
        #[arg(long, default_value_t = 3600)]
        publish_old_secs: u64,
    },
    /// List the signing keys.
    Keys,
}

pub async fn run(args: Args) -> Result<()> {
    let (store, _) = args.database.open().await?;
    let pool = &store.pool;
    match args.command {
        Command::RotateKeys { publish_old_secs } => {
            let kid = keys::rotate(pool, publish_old_secs as i64 * 1000).await?;
            reportln!("new signing key {kid}");
        }
        Command::Keys => {}
    }
    for (kid, created, retired, until) in keys::list(pool).await? {
        let state = match (retired, until) {
            (None, _) => "signing".to_owned(),
            (Some(_), Some(until)) if until > mno_hub::store::now_ms() => {
                format!("published until {}", rfc3339(until))
            }
            _ => "expired".to_owned(),
        };
        reportln!("{kid}  created {}  {state}", rfc3339(created));
    }
    Ok(())
}
