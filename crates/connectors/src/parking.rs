//! Outside records Connec! refuses because a reference names no record of
//! the organisation (an invoice for a customer the outside API never lists).
//! Such a record holds its entity's cursor, so that each sync tries it again
//! once the referenced record may have come; but a reference that never comes
//! would hold the cursor, and every later change of the entity, forever. So
//! the syncs that refused it are counted, and after [`PARK_AFTER_PASSES`] it
//! is **parked**: named in the status with the reason, no longer holding the
//! cursor, and tried again (read anew from the outside API) at each sync.

use crate::store::Store;

/// Syncs that refuse a record for a missing reference before it is parked.
pub const PARK_AFTER_PASSES: i64 = 3;

/// What a refusal for a missing reference does with its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refused by this many syncs so far: it holds its entity's cursor.
    Wait(i64),
    /// Refused once too often: parked now, the cursor moves on.
    Parked,
    /// Parked before: still waiting for its reference.
    StillParked,
}

/// Count one more sync that refused `id` of `entity` for `reason`.
pub async fn refused(
    store: &Store,
    org: &str,
    app: &str,
    entity: &str,
    id: &str,
    reason: &str,
) -> Result<Verdict, sqlx::Error> {
    let (passes, parked) = store.count_pass(org, app, entity, id, reason).await?;
    Ok(if parked {
        Verdict::StillParked
    } else if passes >= PARK_AFTER_PASSES {
        store.park(org, app, entity, id).await?;
        Verdict::Parked
    } else {
        Verdict::Wait(passes)
    })
}
