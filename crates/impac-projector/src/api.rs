//! `GET /impac/api/v2/widgets/{category}/{name}[.csv]`: a widget over one or
//! several orgs, in one currency, live or as of a past time or sequence.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mno_events::ApiError;
use serde_json::{json, Value};

use crate::access::WidgetReader;
use crate::query::{as_of_param, currency_param, min_seq_param, parse_query, widget_params};
use crate::records;
use crate::replay::{self, AsOf};
use crate::widgets::money::Converter;
use crate::widgets::{self, Params, WIDGETS};
use crate::{rates, ImpacState};
use mno_events::openapi::{
    BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable,
};

/// The widgets, and the collections each reads (what a caller needs read on).
#[utoipa::path(
    get,
    path = "/impac/api/v2/widgets",
    tag = "impac",
    responses((status = 200, description = "The widgets and the collections each reads", body = crate::openapi::WidgetList))
)]
pub async fn list_widgets() -> Json<Value> {
    let reads: serde_json::Map<String, Value> = widgets::CATALOGUE
        .iter()
        .map(|(name, entities)| ((*name).to_owned(), json!(entities)))
        .collect();
    Json(json!({"widgets": WIDGETS, "reads": reads}))
}

#[utoipa::path(
    get,
    path = "/impac/api/v2/widgets/{category}/{name}",
    tag = "impac",
    params(crate::openapi::WidgetPath, crate::openapi::WidgetQuery),
    responses((status = 200, description = "The widget (CSV when the name ends in .csv)", content((crate::openapi::WidgetAnswer = "application/json"), (String = "text/csv"))), BadRequest, Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable),
    security(("user" = []), ("app" = []))
)]
pub async fn widget(
    State(state): State<ImpacState>,
    WidgetReader { widget, csv, orgs }: WidgetReader,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(raw.as_deref());
    let params = widget_params(&query)?;
    let currency = currency_for(&state, &query, &orgs).await?;
    let as_of = as_of_param(&query)?;
    let snapshot = match &as_of {
        Some(point) => replay::snapshot_as_of(&state.js, &orgs, *point)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?,
        None => {
            if let Some(min_seq) = min_seq_param(&query)? {
                // Not folded yet: it must at least be a sequence the stream has
                // (else waiting could never end), which only the bus can say.
                if !state.runner_applied_at_least(min_seq, Duration::ZERO).await {
                    within_the_stream(&state, min_seq).await?;
                }
                if !state
                    .runner_applied_at_least(min_seq, Duration::from_secs(5))
                    .await
                {
                    return Err(ApiError::unavailable(format!(
                        "reports have not yet folded sequence {min_seq}; retry shortly"
                    )));
                }
            }
            live_snapshot(&state, &orgs).await?
        }
    };
    let (content, rates) = compute(&state, &widget, &snapshot, &params, &currency).await?;
    if csv {
        let mut rows = vec!["path,value".to_owned()];
        flatten("", &content, &mut rows);
        return Ok(([(header::CONTENT_TYPE, "text/csv")], rows.join("\n") + "\n").into_response());
    }
    Ok(Json(json!({
        "widget": widget,
        "org_ids": orgs,
        "currency": currency,
        "as_of": as_of.map_or(Value::Null, AsOf::to_json),
        "rates": rates,
        "content": content,
    }))
    .into_response())
}

/// A `min_seq` past the stream's end names no write: refused at once.
async fn within_the_stream(state: &ImpacState, min_seq: u64) -> Result<(), ApiError> {
    let last = mno_events::streams::last_sequence(&state.js, mno_events::streams::RECORDS).await?;
    if min_seq > last {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            format!("min_seq {min_seq} is past the end of the stream (its last sequence is {last}); send the sequence a write answered with"),
        )
        .at_parameter("min_seq"));
    }
    Ok(())
}

/// The asked currency, else the first org's, else USD.
pub async fn currency_for(
    state: &ImpacState,
    query: &HashMap<String, Vec<String>>,
    orgs: &[String],
) -> Result<String, ApiError> {
    Ok(match currency_param(query)? {
        Some(c) => c,
        None => match state.directory.org(&orgs[0]).await {
            Ok(Some(org)) if !org.currency.is_empty() => org.currency,
            _ => "USD".to_owned(),
        },
    })
}

/// The live records of `orgs` in the version readers use.
pub async fn live_snapshot(
    state: &ImpacState,
    orgs: &[String],
) -> Result<records::Snapshot, ApiError> {
    let version = state.active_version().await.map_err(ApiError::internal)?;
    records::load(&state.db, version, orgs)
        .await
        .map_err(ApiError::internal)
}

/// A widget's content from a snapshot, in `currency`, and the rates it used.
pub async fn compute(
    state: &ImpacState,
    widget: &str,
    snapshot: &records::Snapshot,
    params: &Params,
    currency: &str,
) -> Result<(Value, Vec<Value>), ApiError> {
    let converter = Converter::new(
        currency,
        rates::latest(&state.db).await.map_err(ApiError::internal)?,
    );
    let content =
        widgets::compute(widget, snapshot, params, &converter).map_err(compute_refusal)?;
    let rates = converter.used.borrow().clone();
    Ok((content, rates))
}

/// A widget with no answer, as the API says it.
pub fn compute_refusal(error: widgets::ComputeError) -> ApiError {
    match error {
        widgets::ComputeError::MissingRate(e) => {
            ApiError::unprocessable("missing_rate", e.to_string()).at_parameter("currency")
        }
        e @ widgets::ComputeError::OutOfRange { .. } => {
            ApiError::unprocessable("amount_out_of_range", e.to_string())
        }
    }
}

/// A widget's content as CSV rows `path,value` (the `.csv` export).
pub fn flatten(prefix: &str, value: &Value, rows: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                flatten(
                    &if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    },
                    inner,
                    rows,
                );
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), inner, rows);
            }
        }
        Value::String(s) => rows.push(format!("{},{}", csv_path(prefix), csv_text(s))),
        other => rows.push(format!("{},{other}", csv_path(prefix))),
    }
}

/// A text cell, quoted. Text a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return, as a record's name may)
/// gets a leading `'`, so it shows as typed; a number such as `-12.50` stays
/// as it is.
fn csv_text(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r'])
        && text.parse::<rust_decimal::Decimal>().is_err();
    let text = if formula {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A path cell: as it is unless a key in it needs quoting or neutralising.
fn csv_path(path: &str) -> String {
    let plain =
        !path.contains([',', '"', '\n', '\r']) && !path.starts_with(['=', '+', '-', '@', '\t']);
    if plain {
        path.to_owned()
    } else {
        csv_text(path)
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        let mut rows = Vec::new();
        let content = json!({"top": [{"name": "=HYPERLINK(\"http://evil.example\",\"Click\")", "total": "-12.50"}],
                             "count": 3, "note": "@SUM(A1)", "plain": "Acme, Ltd"});
        flatten("", &content, &mut rows);
        assert!(rows.contains(&"count,3".to_owned()), "{rows:?}");
        assert!(
            rows.contains(
                &"top[0].name,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"Click\"\")\""
                    .to_owned()
            ),
            "{rows:?}"
        );
        assert!(
            rows.contains(&"top[0].total,\"-12.50\"".to_owned()),
            "{rows:?}"
        );
        assert!(rows.contains(&"note,\"'@SUM(A1)\"".to_owned()), "{rows:?}");
        assert!(rows.contains(&"plain,\"Acme, Ltd\"".to_owned()), "{rows:?}");
    }

    #[test]
    fn a_key_that_needs_it_is_quoted_too() {
        let mut rows = Vec::new();
        flatten("", &json!({"a,b": 1, "=x": 2}), &mut rows);
        assert!(rows.contains(&"\"a,b\",1".to_owned()), "{rows:?}");
        assert!(rows.contains(&"\"'=x\",2".to_owned()), "{rows:?}");
    }
}
