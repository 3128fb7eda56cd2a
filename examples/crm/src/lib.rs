//! An example CRM built only on `mno-sdk`: its people, organizations and
//! opportunities live in its own SQLite database under its own ids and sync
//! both ways with every other app of the org through Connec! (`people`,
//! `organizations`, `opportunities`: an opportunity's amount and sales stage
//! feed Impac!'s sales pipeline); its users sign in only through the Hub.
//!
//! - `GET /`: the people, organizations and opportunities of the signed-in
//!   user's org (edit: a 409 is resolved by re-reading; delete), and a form to
//!   add each (sent to Connec! under the CRM's id). The Hub session is
//!   re-checked when the Hub's `recheck_at` has passed.
//! - `POST /people`, `/organizations`, `/opportunities`: add one;
//!   `POST /{collection}/{id}`: edit it; `POST /{collection}/{id}/delete`: delete it.
//! - `GET /login`, `GET /auth/callback`, `GET /logout`: single sign-on;
//!   `POST /backchannel-logout`: the Hub ends a session at once.
//! - `POST /mno`: webhooks: records created or changed by other apps are
//!   stored under a new CRM id, which the answer tells the platform.

mod pages;
mod records;
mod store;
mod sync;

use anyhow::{Context, Result};
use mno_example_web::SignIn;
use mno_sdk::{Config, Mno};

pub use store::Store;

/// What the CRM needs: the SDK's settings, its public URL and its database.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `MNO_URL`, `MNO_APP_KEY`, ... (see `mno_sdk::Config::from_env`); `MNO_APP_ID` is required.
    pub mno: Config,
    /// Where browsers reach the CRM (`CRM_PUBLIC_URL`), e.g. `http://127.0.0.1:8091`.
    pub public_url: String,
    /// The SQLite file (`CRM_DATABASE`), `:memory:` for none.
    pub database: String,
}

impl Settings {
    /// From `MNO_*` and `CRM_*` environment variables.
    pub fn from_env() -> Result<Settings> {
        let mno = Config::from_env()?;
        Ok(Settings {
            mno,
            public_url: std::env::var("CRM_PUBLIC_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8091".into()),
            database: std::env::var("CRM_DATABASE").unwrap_or_else(|_| "crm.sqlite".into()),
        })
    }
}

/// Serves the CRM on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, settings: Settings) -> Result<()> {
    let app_id = settings
        .mno
        .app_id
        .clone()
        .context("MNO_APP_ID is required: the CRM names its own ids by it")?;
    let mno = Mno::new(settings.mno.clone())?;
    let store = Store::open(&settings.database).await?;
    let public_url = settings.public_url.trim_end_matches('/');
    let sso = mno.sso(&format!("{public_url}/auth/callback"));
    let state = pages::AppState {
        sign_in: SignIn::new(sso, store.pool(), "crm", "CRM", public_url).await?,
        receiver: mno.webhook_receiver()?,
        store,
        app_id,
        mno,
    };
    axum::serve(listener, pages::router(state)).await?;
    Ok(())
}
