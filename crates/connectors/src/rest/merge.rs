//! Updates that keep what the mapping does not know. An outside record holds
//! fields the mapping never names (notes, tags, a currency beside an amount);
//! an update must not drop them:
//! - `PUT` replaces the whole record, so the runtime reads it, merges the
//!   mapped fields into it, and sends it back whole (read-merge-write);
//! - `PATCH` sends the mapped fields only, but an API that merges a PATCH
//!   shallowly (json-server, many others) would replace a nested object whole:
//!   a mapped path into one (`totals.amount`) is sent with that object's other
//!   keys as they were read.

use serde_json::Value;

/// `mapped` laid over `current`: objects are merged key by key, anything
/// else in `mapped` (null included: a cleared field) replaces what was there.
pub fn deep(current: &Value, mapped: &Value) -> Value {
    match (current, mapped) {
        (Value::Object(base), Value::Object(over)) => {
            let mut out = base.clone();
            for (key, value) in over {
                let merged = match base.get(key) {
                    Some(old) => deep(old, value),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (_, over) => over.clone(),
    }
}

/// The body of a `PATCH`: the mapped fields, each nested object completed
/// with the keys `current` (the record as read) has beside the mapped ones.
pub fn patch_body(current: Option<&Value>, mapped: &Value) -> Value {
    let (Some(current), Value::Object(over)) = (current, mapped) else {
        return mapped.clone();
    };
    let mut out = over.clone();
    for (key, value) in out.iter_mut() {
        if let (Some(old @ Value::Object(_)), Value::Object(_)) = (current.get(key), &*value) {
            *value = deep(old, value);
        }
    }
    Value::Object(out)
}

/// Whether a mapped body reaches into a nested object (then a `PATCH` needs
/// the record as it is, to keep that object's other keys).
pub fn has_nested(mapped: &Value) -> bool {
    mapped
        .as_object()
        .is_some_and(|m| m.values().any(Value::is_object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unmapped_fields_survive_put_and_patch() {
        let current = json!({"id": 3, "number": "A", "notes": "keep", "totals": {"amount": 1, "currency": "EUR"}});
        let mapped = json!({"number": null, "totals": {"amount": 2}});
        assert_eq!(
            deep(&current, &mapped),
            json!({"id": 3, "number": null, "notes": "keep", "totals": {"amount": 2, "currency": "EUR"}})
        );
        assert_eq!(
            patch_body(Some(&current), &mapped),
            json!({"number": null, "totals": {"amount": 2, "currency": "EUR"}})
        );
        assert_eq!(patch_body(None, &mapped), mapped);
        assert!(has_nested(&mapped) && !has_nested(&json!({"number": 1})));
    }
}
