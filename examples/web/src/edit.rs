//! Editing a record: its row with the forms, and saving an edit so that a
//! change another app made meanwhile is kept (a 409 resolved by re-reading
//! and applying the user's own changes to the latest version).

use std::collections::HashMap;

use axum::response::Redirect;
use mno_sdk::connec::{Collection, Record, WriteOptions};
use mno_sdk::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::html::escape;

/// A record's row: `label` under `id`, an edit form posting to `action`
/// (carrying the version and, per field, the value shown beside the input)
/// and a delete button posting to `{action}/delete`.
pub fn record_row(
    action: &str,
    id: &str,
    version: i64,
    label: &str,
    fields: &[(&str, &str)],
) -> String {
    let (action, id, label) = (escape(action), escape(id), escape(label));
    let mut inputs = String::new();
    for (name, value) in fields {
        let (name, value) = (escape(name), escape(value));
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"seen_{name}\" value=\"{value}\"><input name=\"{name}\" value=\"{value}\">"
        ));
    }
    format!(
        "<li><span id=\"{id}\">{label}</span>\
         <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"version\" value=\"{version}\">\
         {inputs}<button>Save</button></form>\
         <form method=\"post\" action=\"{action}/delete\"><button>Delete</button></form></li>"
    )
}

/// A person's row: their name, its two fields editable (see [`record_row`]).
pub fn name_row(action: &str, id: &str, version: i64, first_name: &str, last_name: &str) -> String {
    record_row(
        action,
        id,
        version,
        &format!("{first_name} {last_name}"),
        &[("first_name", first_name), ("last_name", last_name)],
    )
}

/// The notice of an edit made over a change of another app.
pub fn resolved_notice(id: &str) -> String {
    format!(
        "<p class=\"notice\">{} was changed meanwhile; your edit was applied to its latest version.</p>",
        escape(id)
    )
}

/// An edit as [`record_row`]'s form sends it: the version the user saw and
/// the fields whose value differs from the one shown (`seen_<field>`).
#[derive(Debug, Deserialize)]
#[serde(try_from = "HashMap<String, String>")]
pub struct RecordEdit {
    /// The version the user saw.
    pub version: u64,
    /// The fields the user changed, with their new values.
    pub changed: Map<String, Value>,
}

impl TryFrom<HashMap<String, String>> for RecordEdit {
    type Error = String;

    fn try_from(mut form: HashMap<String, String>) -> Result<RecordEdit, String> {
        let version = form
            .remove("version")
            .and_then(|v| v.parse().ok())
            .ok_or("version: the record's version as shown (a whole number) is expected")?;
        let mut changed = Map::new();
        for (name, value) in &form {
            if let Some(seen) = form.get(&format!("seen_{name}")) {
                if seen != value {
                    changed.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        Ok(RecordEdit { version, changed })
    }
}

impl RecordEdit {
    /// Sends the changed fields of record `id`, if it is still at the version
    /// the user saw; if it changed meanwhile (409), re-reads it and applies
    /// the same changes to its latest version. Answers the record and
    /// whether it had changed, or `None` when the user changed nothing.
    pub async fn save<T: Serialize + DeserializeOwned>(
        self,
        records: &Collection<T>,
        id: &str,
    ) -> mno_sdk::Result<Option<(Record<T>, bool)>> {
        let (seen, patch) = (self.version, self.changed);
        if patch.is_empty() {
            return Ok(None);
        }
        match records
            .update(id, &patch, &WriteOptions::if_match(seen))
            .await
        {
            Ok(record) => Ok(Some((record, false))),
            Err(Error::StaleVersion { .. }) => {
                let latest = records.get(id).await?;
                let record = records
                    .update(id, &patch, &WriteOptions::if_match(latest.version))
                    .await?;
                Ok(Some((record, true)))
            }
            Err(e) => Err(e),
        }
    }
}

/// Where the browser goes after an edit: home, with the notice when it was resolved.
pub fn after_edit(id: &str, resolved: bool) -> Redirect {
    if resolved {
        Redirect::to(&format!("/?resolved={id}"))
    } else {
        Redirect::to("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(first: &str, last: &str) -> Result<RecordEdit, String> {
        let form = [
            ("version", "3"),
            ("seen_first_name", "Ann"),
            ("seen_last_name", "Lee"),
            ("first_name", first),
            ("last_name", last),
        ];
        RecordEdit::try_from(
            form.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn only_the_changed_fields_are_sent() -> Result<(), String> {
        let changed = edit("Ann", "Lee-Jones")?;
        assert_eq!(changed.version, 3);
        assert_eq!(changed.changed.len(), 1);
        assert_eq!(changed.changed["last_name"], "Lee-Jones");
        assert!(edit("Ann", "Lee")?.changed.is_empty());
        Ok(())
    }

    #[test]
    fn an_edit_without_its_version_is_refused_by_name() {
        let form = HashMap::from([("first_name".to_owned(), "Ann".to_owned())]);
        let refused = RecordEdit::try_from(form).map(|e| e.version);
        assert!(refused.is_err_and(|e| e.starts_with("version:")));
    }

    #[test]
    fn a_row_shows_each_field_beside_its_seen_value() {
        let row = record_row("/deals/d1", "d1", 2, "Big <deal>", &[("amount", "10.50")]);
        assert!(
            row.contains("<span id=\"d1\">Big &lt;deal&gt;</span>"),
            "{row}"
        );
        assert!(
            row.contains("name=\"seen_amount\" value=\"10.50\""),
            "{row}"
        );
        assert!(
            row.contains("<input name=\"amount\" value=\"10.50\">"),
            "{row}"
        );
        assert!(row.contains("action=\"/deals/d1/delete\""), "{row}");
    }
}
