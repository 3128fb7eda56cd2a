//! References between records, as the connector app sees them (an
//! external-ids array per reference): whether the outside API can name the
//! referenced record yet. A pushed record whose reference the outside API
//! cannot name is held rather than sent without it; a pulled record that
//! lacks such a reference outside does not clear it in Connec!.

use serde_json::Value;

/// Whether a reference value (an external-ids array) has no id of `app`.
fn unnamed_for(value: &Value, app: &str) -> bool {
    match value {
        Value::Array(ids) => !ids.is_empty() && !ids.iter().any(|e| e["provider"] == app),
        _ => false,
    }
}

/// The references among `fields` (the connector's reference fields of
/// `entity`) that `record` sets but the connector app has no id for, with the
/// entity each references.
pub fn unnamed(
    entity: &str,
    fields: &[String],
    record: &Value,
    app: &str,
) -> Vec<(String, String)> {
    let targets = mno_events::entities::references(entity);
    fields
        .iter()
        .filter(|f| unnamed_for(&record[f.as_str()], app))
        .map(|f| {
            let target = targets
                .iter()
                .find(|r| r.path == *f)
                .map(|r| r.entity.to_owned())
                .unwrap_or_default();
            (f.clone(), target)
        })
        .collect()
}

/// Drop from `update` (an outside record's fields, cleared ones `null`) each
/// reference the outside record lacks while Connec!'s `current` names a record
/// the outside API has no id for: it was never sent out, so its absence
/// outside is no removal.
pub fn keep_unsent(update: &mut Value, fields: &[String], current: &Value, app: &str) {
    let Value::Object(map) = update else {
        return;
    };
    for field in fields {
        if map.get(field).is_some_and(Value::is_null) && unnamed_for(&current[field.as_str()], app)
        {
            map.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reference_without_the_apps_id_is_unnamed() {
        let fields = vec!["person_id".to_owned()];
        let only_global = json!({"person_id": [{"provider": "connec", "id": "g1"}]});
        assert_eq!(
            unnamed("invoices", &fields, &only_global, "app1"),
            vec![("person_id".to_owned(), "people".to_owned())]
        );
        let named = json!({"person_id": [{"provider": "connec", "id": "g1"}, {"provider": "app1", "id": "7"}]});
        assert!(unnamed("invoices", &fields, &named, "app1").is_empty());
        assert!(unnamed("invoices", &fields, &json!({"person_id": null}), "app1").is_empty());

        let mut update = json!({"transaction_number": "A", "person_id": null});
        keep_unsent(&mut update, &fields, &only_global, "app1");
        assert_eq!(update, json!({"transaction_number": "A"}));
        let mut update = json!({"person_id": null});
        keep_unsent(&mut update, &fields, &named, "app1");
        assert_eq!(
            update,
            json!({"person_id": null}),
            "a reference removed outside is cleared"
        );
    }
}
