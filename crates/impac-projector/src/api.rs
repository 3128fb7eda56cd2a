//! `GET /impac/api/v2/widgets/{category}/{name}[.csv]`: a widget over one or
//! several orgs, in one currency, live or as of a past time or sequence.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use mno_events::idm::Action;
use mno_events::ApiError;
use serde_json::{json, Value};

use crate::records;
use crate::replay::{self, AsOf};
use crate::widgets::money::Converter;
use crate::widgets::{self, Params, Period, WIDGETS};
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

/// Query parameters; `org_ids[]` may repeat.
pub fn parse_query(raw: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        out.entry(key.trim_end_matches("[]").to_owned())
            .or_default()
            .push(value.into_owned());
    }
    out
}

fn one<'a>(query: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    query.get(name).and_then(|v| v.first()).map(String::as_str)
}

fn date_param(
    query: &HashMap<String, Vec<String>>,
    name: &'static str,
) -> Result<Option<NaiveDate>, ApiError> {
    one(query, name)
        .map(|text| {
            // Four-digit years only: chrono alone reads "26-11-29" as the year 26.
            let bytes = text.as_bytes();
            let shaped = bytes.len() >= 10
                && bytes[..10].iter().enumerate().all(|(i, b)| match i {
                    4 | 7 => *b == b'-',
                    _ => b.is_ascii_digit(),
                })
                && matches!(bytes.get(10), None | Some(b'T' | b't' | b' '));
            shaped
                .then(|| NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").ok())
                .flatten()
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_parameter",
                        format!("{name} must be a date YYYY-MM-DD, not {text:?}"),
                    )
                    .at_parameter(name)
                })
        })
        .transpose()
}

/// `from`, `to` (default today), `period` (default MONTHLY), `limit` and
/// `offset` of a widget request.
pub fn widget_params(query: &HashMap<String, Vec<String>>) -> Result<Params, ApiError> {
    let period = match one(query, "period") {
        None => Period::Monthly,
        Some(text) => Period::parse(text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_parameter",
                format!("period must be {}, not {text:?}", Period::NAMES),
            )
            .at_parameter("period")
        })?,
    };
    let limit = count_param(query, "limit", 1, 1000)?;
    let offset = count_param(query, "offset", 0, usize::MAX)?.unwrap_or(0);
    let from = date_param(query, "from")?;
    let to = date_param(query, "to")?.unwrap_or_else(|| Utc::now().date_naive());
    if let Some(from) = from.filter(|from| *from > to) {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            format!("from {from} is after to {to}; swap them, or leave to out for today"),
        )
        .at_parameter("from"));
    }
    Ok(Params {
        from,
        to,
        period,
        limit,
        offset,
    })
}

/// A whole-number parameter between `min` and `max`, when given.
fn count_param(
    query: &HashMap<String, Vec<String>>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<usize>, ApiError> {
    let Some(text) = one(query, name) else {
        return Ok(None);
    };
    let range = match max {
        usize::MAX => format!("from {min}"),
        _ => format!("from {min} to {max}"),
    };
    text.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_parameter",
                format!("{name} must be a whole number {range}, not {text:?}"),
            )
            .at_parameter(name)
        })
}

/// `currency`, when given: an ISO 4217 code.
pub fn currency_param(query: &HashMap<String, Vec<String>>) -> Result<Option<String>, ApiError> {
    match one(query, "currency") {
        Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => {
            Ok(Some(c.to_owned()))
        }
        Some(c) => Err(ApiError::unprocessable(
            "invalid_parameter",
            format!("currency must be an ISO 4217 code such as USD, not {c:?}"),
        )
        .at_parameter("currency")),
        None => Ok(None),
    }
}

fn as_of_param(query: &HashMap<String, Vec<String>>) -> Result<Option<AsOf>, ApiError> {
    one(query, "as_of")
        .map(|text| {
            AsOf::parse(text).map_err(|why| {
                ApiError::unprocessable("invalid_parameter", why).at_parameter("as_of")
            })
        })
        .transpose()
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
    Path((category, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (name, csv) = match name.strip_suffix(".csv") {
        Some(base) => (base.to_owned(), true),
        None => (name, false),
    };
    let widget = format!("{category}/{name}");
    if !WIDGETS.contains(&widget.as_str()) {
        return Err(ApiError::not_found(format!(
            "no widget {widget}; the widgets are: {}",
            WIDGETS.join(", ")
        )));
    }
    let query = parse_query(raw.as_deref());
    let orgs = orgs_param(&query)?;
    authorize_widget(&state, &headers, &widget, &orgs).await?;
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

/// `min_seq`, when given: a stream sequence (a write's consistency token).
fn min_seq_param(query: &HashMap<String, Vec<String>>) -> Result<Option<u64>, ApiError> {
    one(query, "min_seq")
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::unprocessable(
                    "invalid_parameter",
                    format!("min_seq must be a stream sequence (a write's mno-consistency-token), not {text:?}"),
                )
                .at_parameter("min_seq")
            })
        })
        .transpose()
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

/// `org_ids[]` (repeated or comma-separated): at least one. An org named
/// twice counts once (its figures would otherwise be added twice).
pub fn orgs_param(query: &HashMap<String, Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut orgs: Vec<String> = Vec::new();
    for org in query
        .get("org_ids")
        .into_iter()
        .flatten()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !orgs.iter().any(|o| o == org) {
            orgs.push(org.to_owned());
        }
    }
    if orgs.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            "name the organisations: org_ids[]=<org id>",
        )
        .at_parameter("org_ids"));
    }
    for org in &orgs {
        mno_events::subject::Token::parse("org", org)
            .map_err(|e| ApiError::not_found(e.to_string()).at_parameter("org_ids"))?;
    }
    Ok(orgs)
}

/// The caller may read every collection the widget is made from, in every org.
pub async fn authorize_widget(
    state: &ImpacState,
    headers: &HeaderMap,
    widget: &str,
    orgs: &[String],
) -> Result<mno_events::idm::Principal, ApiError> {
    let mut principal = None;
    for org in orgs {
        for entity in widgets::entities_of(widget) {
            principal = Some(
                mno_events::http_auth::authorize(
                    state.idm.as_ref(),
                    headers,
                    org,
                    Some(entity),
                    Action::Read,
                )
                .await?,
            );
        }
    }
    principal.ok_or_else(|| ApiError::unauthorized("no organisation named"))
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
    let content = widgets::compute(widget, snapshot, params, &converter).map_err(|e| {
        ApiError::unprocessable("missing_rate", e.to_string()).at_parameter("currency")
    })?;
    let rates = converter.used.borrow().clone();
    Ok((content, rates))
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
        Value::String(s) => rows.push(format!("{prefix},\"{}\"", s.replace('"', "\"\""))),
        other => rows.push(format!("{prefix},{other}")),
    }
}
