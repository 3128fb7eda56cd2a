//! An example Books app built only on `mno-sdk`: its customers (Connec!
//! people), invoices and payments live in its own SQLite database under its
//! own ids; customers sync both ways with every other app of the org, its
//! invoices and payments are shared through Connec! (so Impac!'s reports count them), it
//! bills each org monthly through the platform, and its users sign in only
//! through the Hub.
//!
//! - `GET /`: the signed-in user's customers (add, edit, delete), invoices
//!   (issue one, record a payment) and the monthly bill button. The Hub
//!   session is checked on every page.
//! - `POST /catch-up`: reads the org's change feed from the saved cursor (after
//!   a reinstall, or data sharing switched back on).
//! - `GET /login`, `GET /auth/callback`, `GET /logout`: single sign-on.
//! - `POST /mno`: webhooks: customers created or changed by other apps are
//!   stored under a new Books id, which the answer tells the platform.

mod pages;
mod store;
mod sync;

use anyhow::{Context, Result};
use mno_example_web::SignIn;
use mno_sdk::{Config, Mno};

pub use store::Store;

/// What Books needs: the SDK's settings, its public URL, its database and its monthly price.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `MNO_URL`, `MNO_APP_KEY`, ... (see `mno_sdk::Config::from_env`); `MNO_APP_ID` is required.
    pub mno: Config,
    /// Where browsers reach Books (`BOOKS_PUBLIC_URL`), e.g. `http://127.0.0.1:8092`.
    pub public_url: String,
    /// The SQLite file (`BOOKS_DATABASE`), `:memory:` for none.
    pub database: String,
    /// The monthly subscription in cents of the org's currency (`BOOKS_MONTHLY_PRICE_CENTS`, default 2900).
    pub monthly_price_cents: u64,
}

impl Settings {
    /// From `MNO_*` and `BOOKS_*` environment variables.
    pub fn from_env() -> Result<Settings> {
        let mno = Config::from_env()?;
        let monthly_price_cents = match std::env::var("BOOKS_MONTHLY_PRICE_CENTS") {
            Ok(text) => text
                .parse()
                .context("BOOKS_MONTHLY_PRICE_CENTS: a whole number of cents is expected")?,
            Err(_) => 2900,
        };
        Ok(Settings {
            mno,
            public_url: std::env::var("BOOKS_PUBLIC_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8092".into()),
            database: std::env::var("BOOKS_DATABASE").unwrap_or_else(|_| "books.sqlite".into()),
            monthly_price_cents,
        })
    }
}

/// Serves Books on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, settings: Settings) -> Result<()> {
    let app_id = settings
        .mno
        .app_id
        .clone()
        .context("MNO_APP_ID is required: Books names its own ids by it")?;
    let mno = Mno::new(settings.mno.clone())?;
    let store = Store::open(&settings.database).await?;
    let public_url = settings.public_url.trim_end_matches('/');
    let sso = mno.sso(&format!("{public_url}/auth/callback"));
    let state = pages::AppState {
        sign_in: SignIn::new(sso, store.pool(), "books", "Books", public_url).await?,
        receiver: mno.webhook_receiver()?,
        store,
        monthly_price_cents: settings.monthly_price_cents,
        app_id,
        mno,
    };
    axum::serve(listener, pages::router(state)).await?;
    Ok(())
}
