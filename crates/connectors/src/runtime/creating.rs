//! Creating a Connec! record outside so that a lost answer makes no
//! duplicate. The answer to a create may never arrive although the outside
//! API made the record (a timeout, a reset connection, the process stopped);
//! retried blindly, the create would make it twice. So a create is noted
//! (with a key) before it is sent and forgotten only once Connec! knows the
//! outside id. Found noted at the next attempt, it is a retry: answered
//! before, it is not sent again (only the id is told to Connec!); else it is
//! sent with the same key, for an API that takes an idempotency key, after
//! looking the record up by its marker, for a mapping that sets one (see
//! `Outside::create`). A connector that can do neither is warned about in
//! `recent` (`kind: "retried"`).

use serde_json::Value;

use super::{Failure, Install, Runtime};
use crate::outside::CreateAttempt;

impl Runtime {
    /// Create the Connec! record `global` outside and tell Connec! its outside id.
    pub(super) async fn create_outside(
        &self,
        install: &Install,
        entity: &str,
        global: &str,
        record: &Value,
        version: i64,
    ) -> Result<(), Failure> {
        let (org, app) = (install.org.as_str(), install.app.as_str());
        let pending = self.store.pending_create(org, app, entity, global).await?;
        let retry = pending.is_some();
        let (key, answered) = match pending {
            Some(pending) => (pending.key, pending.answered),
            None => {
                let key = uuid::Uuid::new_v4().to_string();
                self.store
                    .begin_create(org, app, entity, global, &key)
                    .await?;
                (key, None)
            }
        };
        let (id, tag) = match answered {
            Some(done) => done,
            None => {
                if retry && !install.outside.dedupes_creates(entity) {
                    let detail = "created again after an attempt that got no answer: the outside API may have made it then, and hold it twice (the mapping sets neither idempotency_header nor marker_field)";
                    tracing::warn!(org, app, entity, record = global, detail);
                    self.store
                        .log(org, app, entity, "retried", global, detail)
                        .await?;
                }
                let attempt = CreateAttempt {
                    global_id: global,
                    key: &key,
                    retry,
                };
                let made = match install.outside.create(entity, record, &attempt).await {
                    Ok(made) => made,
                    // Refused: no record was made, and a corrected one is a new create.
                    Err(e) if !e.is_transient() => {
                        self.store.end_create(org, app, entity, global).await?;
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                };
                self.store
                    .create_answered(org, app, entity, global, &made.0, &made.1)
                    .await?;
                made
            }
        };
        install.api.map_id(entity, global, &id).await?;
        self.save(install, entity, &id, &tag, version).await?;
        self.store.end_create(org, app, entity, global).await?;
        Ok(())
    }
}
