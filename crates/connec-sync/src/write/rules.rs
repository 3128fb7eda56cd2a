//! The decisions of a write, apart from the bus so that they can be tested
//! alone: which version a write applies to, when it is stale, when it is
//! the same request seen again, and what it changes.

use serde_json::{Map, Value};

use super::{Stored, WriteContext, WriteError, Written};

/// The version a write applies to, as read from the record's subject.
#[derive(Debug)]
pub struct Base {
    /// The live record, if there is one.
    pub current: Option<Stored>,
    pub version: u64,
    /// The subject's last sequence: the write's expected sequence.
    pub seq: u64,
    pub state: Map<String, Value>,
}

/// What an update applies to: the live record; for a singular collection
/// (`company`) also nothing yet or a tombstone (its first PUT creates it,
/// continuing the subject's versions). `None`: there is nothing to update.
pub fn update_base(stored: Option<Stored>, singular: bool) -> Option<Base> {
    match stored {
        Some(live) if !live.is_deleted() => Some(Base {
            version: live.event.version,
            seq: live.seq,
            state: live.state().as_object().cloned().unwrap_or_default(),
            current: Some(live),
        }),
        tombstone if singular => Some(Base {
            version: tombstone.as_ref().map_or(0, |t| t.event.version),
            seq: tombstone.as_ref().map_or(0, |t| t.seq),
            state: Map::new(),
            current: None,
        }),
        _ => None,
    }
}

/// 409 when the caller's `If-Match` is not the record's version.
pub fn check_version(
    ctx: &WriteContext,
    id: &str,
    if_match: Option<u64>,
    version: u64,
) -> Result<(), WriteError> {
    match if_match {
        Some(expected) if expected != version => Err(WriteError::Stale {
            entity: ctx.entity.name.to_owned(),
            id: id.to_owned(),
            expected,
            current: version,
        }),
        _ => Ok(()),
    }
}

/// Whether `stored` is this very request, applied before (an idempotent retry).
pub fn applied_before(ctx: &WriteContext, stored: &Stored) -> bool {
    ctx.event_id.as_deref() == Some(stored.event.event_id.as_str())
}

/// A create that finds its record already there: the same request retried
/// (same event id: answer as the first time), or a second create (409).
pub fn already_created(
    ctx: &WriteContext,
    existing: Stored,
    global: String,
) -> Result<Written, WriteError> {
    if applied_before(ctx, &existing) {
        return Ok(Written {
            record: existing,
            created: true,
        });
    }
    Err(WriteError::AlreadyExists {
        entity: ctx.entity.name.to_owned(),
        id: global,
    })
}

/// Put the patch's fields into `state`; the names of those that changed value.
pub fn apply_patch(state: &mut Map<String, Value>, patch: &Map<String, Value>) -> Vec<String> {
    let mut changed = Vec::new();
    for (key, value) in patch {
        if state.get(key) != Some(value) {
            changed.push(key.clone());
            state.insert(key.clone(), value.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use mno_events::idm::{Principal, PrincipalKind};
    use mno_events::proto::{Op, RecordEvent};
    use mno_events::subject::Token;
    use serde_json::json;

    use super::*;
    use crate::entities;

    fn ctx(event_id: Option<&str>) -> WriteContext {
        WriteContext {
            org: Token::parse("org", "org-1").unwrap(),
            entity: entities::lookup("invoices").unwrap(),
            principal: Principal {
                kind: PrincipalKind::App,
                id: "crm".into(),
                name: "CRM".into(),
                role: None,
            },
            correlation_id: String::new(),
            event_id: event_id.map(str::to_owned),
            stage: None,
        }
    }

    fn stored(op: Op, version: u64, seq: u64, event_id: &str, state: Value) -> Stored {
        Stored {
            event: RecordEvent {
                event_id: event_id.into(),
                op: op as i32,
                version,
                state: serde_json::to_vec(&state).unwrap(),
                ..Default::default()
            },
            seq,
        }
    }

    #[test]
    fn an_update_applies_to_the_live_record() {
        let live = stored(Op::Updated, 3, 40, "e3", json!({"title": "a"}));
        let base = update_base(Some(live), false).unwrap();
        assert_eq!((base.version, base.seq), (3, 40));
        assert_eq!(base.state["title"], "a");
        assert!(base.current.is_some());
    }

    #[test]
    fn a_deleted_or_missing_record_cannot_be_updated() {
        let tombstone = stored(Op::Deleted, 4, 41, "e4", json!({"title": "a"}));
        assert!(update_base(Some(tombstone), false).is_none());
        assert!(update_base(None, false).is_none());
    }

    #[test]
    fn the_singular_record_is_created_by_its_first_write_even_over_a_tombstone() {
        let fresh = update_base(None, true).unwrap();
        assert_eq!(
            (fresh.version, fresh.seq, fresh.current.is_none()),
            (0, 0, true)
        );
        let tombstone = stored(Op::Deleted, 4, 41, "e4", json!({"name": "old"}));
        let over = update_base(Some(tombstone), true).unwrap();
        // The versions and the subject's sequence go on; the old state does not.
        assert_eq!((over.version, over.seq), (4, 41));
        assert!(over.state.is_empty() && over.current.is_none());
    }

    #[test]
    fn an_if_match_of_another_version_is_stale() {
        let c = ctx(None);
        assert!(check_version(&c, "r1", None, 5).is_ok());
        assert!(check_version(&c, "r1", Some(5), 5).is_ok());
        match check_version(&c, "r1", Some(4), 5) {
            Err(WriteError::Stale {
                expected, current, ..
            }) => assert_eq!((expected, current), (4, 5)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_retried_create_answers_as_the_first_and_a_second_create_conflicts() {
        let existing = || stored(Op::Created, 1, 7, "ev-1", json!({}));
        let same = already_created(&ctx(Some("ev-1")), existing(), "r1".into()).unwrap();
        assert!(same.created);
        assert_eq!(same.record.seq, 7);
        for other in [ctx(Some("ev-2")), ctx(None)] {
            assert!(matches!(
                already_created(&other, existing(), "r1".into()),
                Err(WriteError::AlreadyExists { ref id, .. }) if id == "r1"
            ));
        }
    }

    #[test]
    fn only_the_same_event_id_is_the_same_request() {
        let record = stored(Op::Updated, 2, 9, "ev-9", json!({}));
        assert!(applied_before(&ctx(Some("ev-9")), &record));
        assert!(!applied_before(&ctx(Some("ev-8")), &record));
        assert!(!applied_before(&ctx(None), &record));
    }

    #[test]
    fn a_patch_changes_only_the_values_that_differ() {
        let mut state = json!({"title": "a", "amount": 1})
            .as_object()
            .cloned()
            .unwrap();
        let patch = json!({"title": "a", "amount": 2, "code": "x"})
            .as_object()
            .cloned()
            .unwrap();
        let mut changed = apply_patch(&mut state, &patch);
        changed.sort();
        assert_eq!(changed, ["amount", "code"]);
        assert_eq!(
            Value::Object(state),
            json!({"title": "a", "amount": 2, "code": "x"})
        );
        let mut same = patch.clone();
        assert!(apply_patch(&mut same, &patch).is_empty());
    }
}
