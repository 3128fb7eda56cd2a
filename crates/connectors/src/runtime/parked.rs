//! The runtime's side of [`crate::parking`]: the records Connec! refused
//! for a missing reference tried again once every entity was pulled (held
//! for their entity's cursor, or parked), and the parked records tried again
//! at each sync, read anew from the outside API (their entity's cursor has
//! moved past them).

use std::collections::HashSet;

use super::{cutoff, Failure, Install, Runtime};
use crate::outside::OutsideRecord;
use crate::parking::{self, Verdict};
use crate::store::{Counts, EntityRow};

impl Runtime {
    /// Try again, once every entity was pulled, the records refused for a
    /// reference to no record. Answers the entities whose cursor must stay
    /// before a record still waiting; records refused too often are parked
    /// (said in `problems`).
    pub(super) async fn pull_waiting<'a>(
        &self,
        install: &Install,
        waiting: &[(&'a EntityRow, OutsideRecord)],
        at: &mut Option<String>,
        problems: &mut Vec<String>,
    ) -> Result<HashSet<&'a str>, Failure> {
        let (org, app) = (install.org.as_str(), install.app.as_str());
        let mut still_waiting: HashSet<&str> = HashSet::new();
        let mut newly_parked: Vec<&str> = Vec::new();
        for (entity, record) in waiting {
            let name = entity.entity.as_str();
            *at = Some(name.to_owned());
            let outcome = match self
                .apply_outside(install, entity.direction, record, name, cutoff(entity))
                .await
            {
                Err(Failure::MissingReference(detail)) => {
                    match parking::refused(&self.store, org, app, name, &record.id, &detail).await?
                    {
                        Verdict::Wait(passes) => {
                            still_waiting.insert(name);
                            Err(Failure::Record(format!(
                                "{detail}; tried again after every entity was pulled, and at each sync until it names a record \
                                 (refused by {passes} of the {} syncs before it is parked)",
                                parking::PARK_AFTER_PASSES
                            )))
                        }
                        Verdict::Parked => {
                            self.park_noted(install, name, &record.id, &detail).await?;
                            newly_parked.push(name);
                            continue;
                        }
                        Verdict::StillParked => continue,
                    }
                }
                Ok(counts) => {
                    self.store.unpark(org, app, name, &record.id).await?;
                    Ok(counts)
                }
                other => other,
            };
            let mut counts = Counts::default();
            self.tally(install, name, &record.id, outcome, &mut counts)
                .await?;
            self.store.add_counts(org, app, name, counts).await?;
        }
        if !newly_parked.is_empty() {
            newly_parked.sort_unstable();
            newly_parked.dedup();
            problems.push(format!(
                "{}: records refused for a reference that names no record were parked after {} syncs (see parked in the status); the cursor moves on, and each sync tries them again",
                newly_parked.join(", "),
                parking::PARK_AFTER_PASSES
            ));
        }
        Ok(still_waiting)
    }

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
