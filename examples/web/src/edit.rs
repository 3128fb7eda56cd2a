//! Editing a person's names: the row with its forms, and saving an edit so
//! that a change another app made meanwhile is kept (a 409 resolved by
//! re-reading and applying the user's own changes to the latest version).

use axum::response::Redirect;
use mno_sdk::connec::{Collection, Record, WriteOptions};
use mno_sdk::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::html::escape;

/// A person's row: their name under `id`, an edit form posting to `action`
/// (carrying the version and the values shown) and a delete button
/// posting to `{action}/delete`.
pub fn name_row(action: &str, id: &str, version: i64, first_name: &str, last_name: &str) -> String {
    let (action, id) = (escape(action), escape(id));
    let (first, last) = (escape(first_name), escape(last_name));
    format!(
        "<li><span id=\"{id}\">{first} {last}</span>\
         <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"version\" value=\"{version}\">\
         <input type=\"hidden\" name=\"seen_first_name\" value=\"{first}\"><input type=\"hidden\" name=\"seen_last_name\" value=\"{last}\">\
         <input name=\"first_name\" value=\"{first}\"><input name=\"last_name\" value=\"{last}\"><button>Save</button></form>\
         <form method=\"post\" action=\"{action}/delete\"><button>Delete</button></form></li>"
    )
}

/// The notice of an edit made over a change of another app.
pub fn resolved_notice(id: &str) -> String {
    format!(
        "<p class=\"notice\">{} was changed meanwhile; your edit was applied to its latest version.</p>",
        escape(id)
    )
}

/// An edit as [`name_row`]'s form sends it.
#[derive(Debug, Deserialize)]
pub struct NameEdit {
    /// The version the user saw.
    pub version: u64,
    pub seen_first_name: String,
    pub seen_last_name: String,
    pub first_name: String,
    pub last_name: String,
}

impl NameEdit {
    /// The fields the user changed.
    fn patch(self) -> Map<String, Value> {
        let mut patch = Map::new();
        if self.first_name != self.seen_first_name {
            patch.insert("first_name".into(), Value::String(self.first_name));
        }
        if self.last_name != self.seen_last_name {
            patch.insert("last_name".into(), Value::String(self.last_name));
        }
        patch
    }

    /// Sends the changed fields of record `id`, if it is still at the version
    /// the user saw; if it changed meanwhile (409), re-reads it and applies
    /// the same changes to its latest version. Answers the record and
    /// whether it had changed, or `None` when the user changed nothing.
    pub async fn save<T: Serialize + DeserializeOwned>(
        self,
        records: &Collection<T>,
        id: &str,
    ) -> mno_sdk::Result<Option<(Record<T>, bool)>> {
        let seen = self.version;
        let patch = self.patch();
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
    use super::NameEdit;

    #[test]
    fn only_the_changed_names_are_sent() {
        let edit = |first: &str, last: &str| NameEdit {
            version: 3,
            seen_first_name: "Ann".into(),
            seen_last_name: "Lee".into(),
            first_name: first.into(),
            last_name: last.into(),
        };
        let patch = edit("Ann", "Lee-Jones").patch();
        assert_eq!(patch.len(), 1);
        assert_eq!(patch["last_name"], "Lee-Jones");
        assert!(edit("Ann", "Lee").patch().is_empty());
    }
}
