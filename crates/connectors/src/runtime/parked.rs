//! The runtime's side of [`crate::parking`]: noting a record parked, and
//! trying the parked records again at each sync, read anew from the outside
//! API (their entity's cursor has moved past them).

use std::collections::HashSet;

use super::{cutoff, Failure, Install, Runtime};
use crate::parking::{self, Verdict};
use crate::store::{Counts, EntityRow};

impl Runtime {
    /// A record was parked: log it with its reason.
    pub(super) async fn park_noted(
        &self,
        install: &Install,
        entity: &str,
        id: &str,
        reason: &str,
    ) -> Result<(), Failure> {
        let detail = format!(
            "{reason}; refused by {} syncs: parked, so the cursor of {entity} moves on; each sync tries it again",
            parking::PARK_AFTER_PASSES
        );
        tracing::info!(org = %install.org, app = %install.app, entity, record = id, %detail, "record parked");
        self.store
            .log(&install.org, &install.app, entity, "parked", id, &detail)
            .await?;
        Ok(())
    }

    /// Try again each parked record of a pulled entity that this sync's
    /// listing did not bring (`seen`): written now, it is unparked; gone
    /// outside, forgotten; still refused for its reference, it stays parked.
    pub(super) async fn retry_parked(
        &self,
        install: &Install,
        entities: &[EntityRow],
        seen: &HashSet<(String, String)>,
    ) -> Result<(), Failure> {
        let (org, app) = (install.org.as_str(), install.app.as_str());
        for parked in self.store.parked(org, app).await? {
            if parked.parked_at.is_none()
                || seen.contains(&(parked.entity.clone(), parked.record.clone()))
            {
                continue;
            }
            let Some(entity) = entities
                .iter()
                .find(|e| e.entity == parked.entity && e.direction.pulls())
            else {
                continue;
            };
            let (name, id) = (entity.entity.as_str(), parked.record.as_str());
            let outcome = match install.outside.fetch(name, id).await {
                Err(e) if e.is_transient() => return Err(Failure::Outside(e)),
                Err(e) => Err(Failure::Record(e.to_string())),
                Ok(None) => {
                    self.store.unpark(org, app, name, id).await?;
                    continue;
                }
                Ok(Some(record)) => {
                    self.apply_outside(install, entity.direction, &record, name, cutoff(entity))
                        .await
                }
            };
            let outcome = match outcome {
                Err(Failure::MissingReference(detail)) => {
                    let verdict =
                        parking::refused(&self.store, org, app, name, id, &detail).await?;
                    debug_assert_eq!(verdict, Verdict::StillParked);
                    continue;
                }
                Ok(counts) => {
                    self.store.unpark(org, app, name, id).await?;
                    Ok(counts)
                }
                other => other,
            };
            let mut counts = Counts::default();
            self.tally(install, name, id, outcome, &mut counts).await?;
            self.store.add_counts(org, app, name, counts).await?;
        }
        Ok(())
    }
}
