//! Smart merge: a create whose `matching_fields` equal those of one live
//! record of the collection goes into that record instead.

use std::collections::HashMap;

use mno_events::ApiError;
use serde_json::Value;

use super::access::Access;
use super::ApiState;

/// `matching_fields` from the query (`?matching_fields=code,name`) or the body (`"matching_fields": ["code"]`).
pub fn matching_fields(
    params: &HashMap<String, String>,
    body: &Value,
) -> Result<Option<Vec<String>>, ApiError> {
    let names: Vec<String> = if let Some(list) = params.get("matching_fields") {
        list.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else if let Some(list) = body.get("matching_fields") {
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_field",
                    "matching_fields must be an array of field names",
                )
                .at_pointer("/matching_fields")
            })?
    } else {
        return Ok(None);
    };
    if names.is_empty() || names.iter().any(|n| !crate::query::parse::is_identifier(n)) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "matching_fields must name top-level fields, e.g. code",
        )
        .at_parameter("matching_fields"));
    }
    Ok(Some(names))
}

/// The one live record of this org's collection whose `names` equal the new record's.
pub async fn find_match(
    state: &ApiState,
    request: &Access,
    fields: &Value,
    names: &[String],
    root: &str,
) -> Result<Option<String>, ApiError> {
    let mut clauses = Vec::new();
    for name in names {
        let clause = match fields.get(name) {
            Some(Value::String(text)) => format!("{name} eq '{}'", text.replace('\'', "''")),
            Some(Value::Number(n)) => format!("{name} eq {n}"),
            Some(Value::Bool(b)) => format!("{name} eq {b}"),
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    format!(
                    "matching field {name} must be present with a text, number or boolean value"
                ),
                )
                .at_pointer(format!("{root}/{name}")))
            }
        };
        clauses.push(clause);
    }
    // Match against everything written so far.
    let last = state
        .writer
        .publisher()
        .context()
        .get_stream(mno_events::streams::RECORDS)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .get_info()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .state
        .last_sequence;
    if !state
        .store
        .wait_for(last, std::time::Duration::from_secs(5))
        .await
    {
        return Err(ApiError::unavailable(
            "the record store is catching up; retry the merge shortly",
        ));
    }
    let list = crate::query::ListRequest {
        filter: Some(clauses.join(" and ")),
        order_by: None,
        top: 2,
        skip: 0,
        include_deleted: false,
    };
    let page = crate::query::list(&state.store, request.org.as_str(), request.def, &list)
        .await
        .map_err(|e| {
            ApiError::unprocessable("invalid_field", e.to_string()).at_parameter("matching_fields")
        })?;
    match page.rows.as_slice() {
        [] => Ok(None),
        [one] => Ok(one
            .state
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)),
        _ => Err(ApiError::conflict(
            "ambiguous_match",
            format!(
                "{} records match on {}; make matching_fields more specific",
                page.total,
                names.join(", ")
            ),
        )),
    }
}
