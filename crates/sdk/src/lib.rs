//! The Rust SDK for cloud apps on Mno.
//!
//! Everything an app needs to share data, sign its users in and bill through
//! the platform, over the platform's public HTTP API only:
//!
//! - [`connec`]: typed records in the app's own ids, lists as streams, a
//!   `$filter` builder, batches, safe retries under an `Idempotency-Key`,
//!   `If-Match` with [`Error::StaleVersion`], and the change feed.
//! - [`webhooks`]: Standard Webhooks verification, de-duplication, typed
//!   record deliveries and account webhooks (an axum extractor with the `axum` feature).
//! - [`sso`]: OpenID Connect sign-in with PKCE, ID-token validation, the
//!   session check and logout.
//! - [`billing`]: bills and recurring bills.
//!
//! ```no_run
//! # async fn f() -> mno_sdk::Result<()> {
//! let mno = mno_sdk::Mno::new(mno_sdk::Config::from_env()?)?;
//! let people = mno.connec().collection::<serde_json::Value>("ORG", "people");
//! let ann = people.create("crm-1", &serde_json::json!({"first_name": "Ann"})).await?;
//! # Ok(()) }
//! ```
//!
//! Every error the platform answers becomes an [`Error::Api`] carrying its
//! status, code, detail and pointer. `docs/sdk.md` is the tutorial.

#![warn(missing_docs)]

pub mod billing;
mod config;
pub mod connec;
mod error;
pub mod sso;
mod transport;
pub mod webhooks;

use std::sync::Arc;

pub use config::Config;
pub use error::{ApiError, ApiErrorEntry, Error, ErrorSource, Result};
pub use transport::IDEMPOTENCY_KEY;

/// An organisation (a customer of the app) as single sign-on and account
/// webhooks describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Org {
    /// The org id (the `{org}` of the Connec! API).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// ISO 4217 currency.
    #[serde(default)]
    pub currency: String,
    /// IANA time zone.
    #[serde(default)]
    pub timezone: String,
    /// ISO country code, or empty.
    #[serde(default)]
    pub country: String,
}

/// The SDK's entry point: one per app, cheap to clone.
#[derive(Debug, Clone)]
pub struct Mno {
    transport: Arc<transport::Transport>,
}

impl Mno {
    /// A client for `config`.
    pub fn new(config: Config) -> Result<Mno> {
        Ok(Mno {
            transport: Arc::new(transport::Transport::new(config)?),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.transport.config
    }

    /// The Connec! record API.
    pub fn connec(&self) -> connec::Connec {
        connec::Connec {
            transport: self.transport.clone(),
        }
    }

    /// Bills and recurring bills.
    pub fn billing(&self) -> billing::Billing {
        billing::Billing {
            transport: self.transport.clone(),
        }
    }

    /// Single sign-on, calling back to `redirect_uri` (one the app registered).
    pub fn sso(&self, redirect_uri: &str) -> sso::Sso {
        sso::Sso::new(self.transport.clone(), redirect_uri)
    }

    /// A webhook receiver for the configured secrets (`MNO_WEBHOOK_SECRETS`).
    pub fn webhook_receiver(&self) -> Result<webhooks::Receiver> {
        webhooks::Receiver::new(&self.transport.config.webhook_secrets)
            .map_err(|e| Error::Config(e.to_string()))
    }
}
