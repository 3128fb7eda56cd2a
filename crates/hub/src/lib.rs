//! The Hub: who is who.
//!
//! Users and sessions, organisations (the tenants) and their members, the app
//! catalogue, installs, API credentials, the IDM check every other part asks,
//! and the outbox that turns every state change into a Hub event on the bus.
//!
//! Module plan (one concern each):
//! - `api/`: axum handlers under `/hub/v1` and `/idm/v1`.
//! - `store/`: SQL (sqlx, SQLite or PostgreSQL) and migrations.
//! - `auth`: password hashing (argon2id), session tokens, API credentials.
//! - `idm`: the IDM decision, in process and on NATS request-reply.
//! - `outbox`: the relay that publishes outbox rows to stream HUB.
//! - `directory`: the [`mno_events::directory::Directory`] view for delivery and reports.

use std::sync::Arc;

use mno_events::bus::Bus;
use mno_events::directory::Directory;
use mno_events::idm::Idm;

/// Settings of the Hub, from flags and `MNO_*` variables (see the gateway).
#[derive(Debug, Clone, Default)]
pub struct HubConfig {}

/// What the Hub needs from the process that runs it.
pub struct HubDeps {
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub config: HubConfig,
}

/// A running Hub.
pub struct Hub {
    idm: Arc<dyn Idm>,
    directory: Arc<dyn Directory>,
}

impl Hub {
    pub async fn start(deps: HubDeps) -> anyhow::Result<Hub> {
        let _ = deps;
        let placeholder = Arc::new(placeholder::Placeholder);
        Ok(Hub {
            idm: placeholder.clone(),
            directory: placeholder,
        })
    }

    /// Routes under `/hub/v1` and `/idm/v1`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }

    pub fn idm(&self) -> Arc<dyn Idm> {
        self.idm.clone()
    }

    pub fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }

    /// Stop background tasks (outbox relay, NATS responders), finishing work in hand.
    pub async fn shutdown(self) {}
}

// Scaffolding until the Hub issue lands: denies everything, knows no one.
mod placeholder {
    use async_trait::async_trait;
    use mno_events::directory::*;
    use mno_events::idm::*;

    pub struct Placeholder;

    #[async_trait]
    impl Idm for Placeholder {
        async fn check(&self, _: &IdmRequest) -> Result<IdmDecision, IdmError> {
            Ok(IdmDecision {
                allow: false,
                principal: None,
                reason: "no identities yet".into(),
            })
        }
    }

    #[async_trait]
    impl Directory for Placeholder {
        async fn apps(&self) -> Result<Vec<AppProfile>, DirectoryError> {
            Ok(vec![])
        }
        async fn app(&self, _: &str) -> Result<Option<AppProfile>, DirectoryError> {
            Ok(None)
        }
        async fn installs_of_app(&self, _: &str) -> Result<Vec<InstallInfo>, DirectoryError> {
            Ok(vec![])
        }
        async fn org(&self, _: &str) -> Result<Option<OrgProfile>, DirectoryError> {
            Ok(None)
        }
        async fn disable_webhook(&self, _: &str, _: &str) -> Result<(), DirectoryError> {
            Ok(())
        }
    }
}
