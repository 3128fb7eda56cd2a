//! The query parameters of Impac!'s routes, parsed and checked: each bad one
//! is refused with a 422 (or a 404 for an org that cannot be one) naming it.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use mno_events::ApiError;

use crate::replay::AsOf;
use crate::widgets::{Params, Period};

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

pub fn one<'a>(query: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
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

pub fn as_of_param(query: &HashMap<String, Vec<String>>) -> Result<Option<AsOf>, ApiError> {
    one(query, "as_of")
        .map(|text| {
            AsOf::parse(text).map_err(|why| {
                ApiError::unprocessable("invalid_parameter", why).at_parameter("as_of")
            })
        })
        .transpose()
}

/// `min_seq`, when given: a stream sequence (a write's consistency token).
pub fn min_seq_param(query: &HashMap<String, Vec<String>>) -> Result<Option<u64>, ApiError> {
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
