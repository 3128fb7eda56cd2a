//! `mno users`: operate users' accounts.
//!
//! - `reset-password <email>`: a one-time link `<public url>/reset/<token>`,
//!   valid for an hour, for a user who forgot their password (the platform
//!   sends no mail: the operator hands the link over). Works on the database
//!   of a running platform (the same `MNO_DATABASE_URL` / `MNO_DATA_DIR`);
//!   only the token's hash is stored, so the link is shown this once.

use anyhow::{bail, Result};
use mno_hub::store::password_resets::{self, RESET_TTL};
use mno_hub::store::rfc3339;

use super::hub_database::HubDatabase;

use crate::config::DEFAULT_HTTP_ADDR;
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
    /// Print a one-time link (valid 1 hour) at which the user sets a new password.
    ResetPassword {
        /// The user's email address.
        email: String,
        /// The platform's public URL, the start of the link; default: http:// and MNO_HTTP_ADDR.
        #[arg(long, env = "MNO_PUBLIC_URL")]
        public_url: Option<String>,
        /// The edge's address, for the link when there is no public URL.
        #[arg(long, env = "MNO_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
        http_addr: String,
    },
}

pub async fn run(args: Args) -> Result<()> {
    match &args.command {
        Command::ResetPassword {
            email,
            public_url,
            http_addr,
        } => {
            let email = mno_hub::validate::email(Some(email)).map_err(anyhow::Error::msg)?;
            let base = match public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => format!("http://{http_addr}"),
            };
            let (store, database) = args.database.open().await?;
            let Some(issued) = password_resets::issue(&store, &email, RESET_TTL).await? else {
                bail!("there is no user with email {email} in {database}; check the address (the one they sign in with), and that MNO_DATA_DIR or MNO_DATABASE_URL are those of the platform");
            };
            reportln!("{base}/reset/{}", issued.token);
            reportln!(
                "Give this link to {} ({}) only: it sets a new password for their account once, until {}, and signs them out everywhere.",
                issued.user.name,
                issued.user.email,
                rfc3339(issued.expires_at)
            );
            Ok(())
        }
    }
}
