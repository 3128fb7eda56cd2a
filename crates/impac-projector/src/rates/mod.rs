//! Exchange rates the operator loads, which widgets convert amounts with.
//!
//! Rates are platform reference data (one table, `impac_rates`, for every
//! org), so loading them is the operator's business:
//! - `mno impac rates load <csv>` writes straight into the database `mno up`
//!   uses (whoever runs it already holds the platform's database);
//! - `POST /impac/api/v2/rates` is for the admins (role admin or super_admin,
//!   as the Hub's IDM check answers) of the organisations the operator named
//!   rate loaders with `mno impac rates allow-org <org>` (table
//!   `impac_rate_loaders`). No other credential may change what every
//!   tenant's reports convert with.
//!
//! A load is all or nothing: every row is checked first, then all are stored
//! in one transaction (the same pair and date again replaces the rate). The
//! routes are in [`routes`].

pub mod routes;

use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use mno_events::ApiError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyPool, Row};

use crate::widgets::money::Rate;

/// One rate: 1 `base` = `rate` `quote`, as published by `source` on `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateRow {
    pub base: String,
    pub quote: String,
    /// The decimal as given (normalised: no exponent), > 0.
    pub rate: String,
    /// `YYYY-MM-DD`.
    pub as_of: String,
    pub source: String,
}

/// What is wrong with one field of one rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

fn currency(field: &'static str, value: &str) -> Result<String, FieldProblem> {
    if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(value.to_owned())
    } else {
        Err(problem(
            field,
            format!("must be an ISO 4217 code of three capital letters such as USD, not {value:?}"),
        ))
    }
}

/// Check one rate's fields (text as given); the first problem of each field, in field order.
pub fn validate(
    base: &str,
    quote: &str,
    rate: &str,
    as_of: &str,
    source: &str,
) -> Result<RateRow, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let base = currency("base", base).map_err(|p| problems.push(p)).ok();
    let quote = currency("quote", quote).map_err(|p| problems.push(p)).ok();
    if let (Some(b), Some(q)) = (&base, &quote) {
        if b == q {
            problems.push(problem(
                "quote",
                format!("must differ from base ({b}): a currency converts to itself at 1"),
            ));
        }
    }
    let rate = match Decimal::from_str(rate.trim()) {
        Ok(r) if r > Decimal::ZERO => Some(r.normalize().to_string()),
        Ok(_) => {
            problems.push(problem(
                "rate",
                format!("must be greater than 0, not {rate:?}"),
            ));
            None
        }
        Err(_) => {
            problems.push(problem(
                "rate",
                format!("must be a decimal string such as \"1.0850\", not {rate:?}"),
            ));
            None
        }
    };
    let as_of = match NaiveDate::parse_from_str(as_of, "%Y-%m-%d") {
        Ok(day) => Some(day.to_string()),
        Err(_) => {
            problems.push(problem(
                "as_of",
                format!("must be a date YYYY-MM-DD, not {as_of:?}"),
            ));
            None
        }
    };
    let source = source.trim();
    if source.is_empty() || source.len() > 200 {
        problems.push(problem(
            "source",
            "must name where the rate comes from (1 to 200 characters), e.g. \"ECB\"",
        ));
    }
    match (base, quote, rate, as_of) {
        (Some(base), Some(quote), Some(rate), Some(as_of)) if problems.is_empty() => Ok(RateRow {
            base,
            quote,
            rate,
            as_of,
            source: source.to_owned(),
        }),
        _ => Err(problems),
    }
}

/// Store every rate in one transaction; the same pair and date replaces the earlier rate.
pub async fn store(db: &AnyPool, rows: &[RateRow]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for row in rows {
        sqlx::query(
            "INSERT INTO impac_rates (base, quote, rate, as_of, source) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (base, quote, as_of) DO UPDATE SET rate = excluded.rate, source = excluded.source",
        )
        .bind(&row.base)
        .bind(&row.quote)
        .bind(&row.rate)
        .bind(&row.as_of)
        .bind(&row.source)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Every loaded rate, by pair then date.
pub async fn list(db: &AnyPool) -> Result<Vec<RateRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT base, quote, rate, as_of, source FROM impac_rates ORDER BY base, quote, as_of",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| RateRow {
            base: row.get(0),
            quote: row.get(1),
            rate: row.get(2),
            as_of: row.get(3),
            source: row.get(4),
        })
        .collect())
}

/// The latest loaded rate of every pair, as the widgets' converter takes them.
pub async fn latest(db: &AnyPool) -> Result<HashMap<(String, String), Rate>, sqlx::Error> {
    let mut latest = HashMap::new();
    // Ordered by date, so a later rate of a pair replaces an earlier one.
    let mut rows = list(db).await?;
    rows.sort_by(|a, b| a.as_of.cmp(&b.as_of));
    for row in rows {
        let Ok(rate) = row.rate.parse::<Decimal>() else {
            continue;
        };
        latest.insert(
            (row.base, row.quote),
            Rate {
                rate,
                as_of: row.as_of,
                source: row.source,
            },
        );
    }
    Ok(latest)
}

// ---------------------------------------------------------------------------
// CSV: `base,quote,rate,as_of,source`
// ---------------------------------------------------------------------------

/// A CSV line that cannot be loaded (1-based line number, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvProblem {
    pub line: usize,
    pub message: String,
}

pub const CSV_HEADER: &str = "base,quote,rate,as_of,source";

/// Parse a whole CSV file; the first bad line stops it (nothing is stored).
pub fn parse_csv(text: &str) -> Result<Vec<RateRow>, CsvProblem> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or_default();
    let columns: Vec<String> = split_csv_line(header)
        .map_err(|message| CsvProblem { line: 1, message })?
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if columns != ["base", "quote", "rate", "as_of", "source"] {
        return Err(CsvProblem {
            line: 1,
            message: format!("the header must be {CSV_HEADER}, not {header:?}"),
        });
    }
    let mut rows = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line).map_err(|message| CsvProblem {
            line: number,
            message,
        })?;
        let [base, quote, rate, as_of, source] = fields.as_slice() else {
            return Err(CsvProblem {
                line: number,
                message: format!(
                    "has {} fields; each line needs 5 ({CSV_HEADER})",
                    fields.len()
                ),
            });
        };
        let row = validate(base.trim(), quote.trim(), rate, as_of.trim(), source).map_err(
            |problems| CsvProblem {
                line: number,
                message: problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        )?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(CsvProblem {
            line: 2,
            message: "there are no rates after the header".into(),
        });
    }
    Ok(rows)
}

/// Fields of one line; a field may be double-quoted (`""` inside is a quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

// ---------------------------------------------------------------------------
// Who may load rates through the API
// ---------------------------------------------------------------------------

/// Let the admins of `org` load rates through the API.
pub async fn allow_org(db: &AnyPool, org: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO impac_rate_loaders (org) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(org)
        .execute(db)
        .await
        .map(|_| ())
}

/// Withdraw that; answers whether it was allowed.
pub async fn disallow_org(db: &AnyPool, org: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM impac_rate_loaders WHERE org = $1")
        .bind(org)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn loader_orgs(db: &AnyPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT org FROM impac_rate_loaders ORDER BY org")
        .fetch_all(db)
        .await
}

#[derive(Debug, Deserialize)]
pub struct RatesIn {
    pub rates: Vec<Value>,
}

fn field_text(rate: &Value, field: &str) -> Result<String, String> {
    match rate.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err("is required".into()),
        Some(other) => Err(format!(
            "must be a string (rates are decimal strings), not {other}"
        )),
    }
}

/// Check a whole request body; every problem of every rate, each pointing at its field.
pub fn validate_body(body: &RatesIn) -> Result<Vec<RateRow>, ApiError> {
    let mut rows = Vec::new();
    let mut error: Option<ApiError> = None;
    let mut fail = |pointer: String, detail: String| {
        let one = ApiError::unprocessable("invalid_field", detail).at_pointer(pointer);
        error = Some(match error.take() {
            Some(e) => e.and(one),
            None => one,
        });
    };
    if body.rates.is_empty() {
        fail(
            "/rates".into(),
            "rates is empty; send at least one {\"base\",\"quote\",\"rate\",\"as_of\",\"source\"}"
                .into(),
        );
    }
    for (i, rate) in body.rates.iter().enumerate() {
        let mut texts = Vec::new();
        for field in ["base", "quote", "rate", "as_of", "source"] {
            match field_text(rate, field) {
                Ok(text) => texts.push(text),
                Err(why) => {
                    fail(
                        format!("/rates/{i}/{field}"),
                        format!("rates[{i}].{field} {why}"),
                    );
                    texts.push(String::new());
                }
            }
        }
        if texts.iter().any(String::is_empty) {
            continue;
        }
        match validate(&texts[0], &texts[1], &texts[2], &texts[3], &texts[4]) {
            Ok(row) => rows.push(row),
            Err(problems) => {
                for p in problems {
                    fail(
                        format!("/rates/{i}/{}", p.field),
                        format!("rates[{i}].{} {}", p.field, p.message),
                    );
                }
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_csv_parses_and_quoted_sources_keep_their_commas() {
        let rows = parse_csv(
            "base,quote,rate,as_of,source\nEUR,USD,1.0850,2026-11-01,ECB\n\nGBP,USD,1.27,2026-11-01,\"Bank, of England\"\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].rate, "1.085");
        assert_eq!(rows[1].source, "Bank, of England");
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_field() {
        let err = parse_csv("base,quote,rate,as_of,source\nEUR,USD,1.08,2026-11-01,ECB\nEUR,USD,-2,2026-11-02,ECB\n")
            .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("rate"), "{err}");
        let err = parse_csv("base,quote,rate\nEUR,USD,1").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse_csv("base,quote,rate,as_of,source\neur,USD,1,2026-13-01,ECB").unwrap_err();
        assert!(
            err.message.contains("base") && err.message.contains("as_of"),
            "{err}"
        );
        let err = parse_csv("base,quote,rate,as_of,source\nEUR,USD,1,2026-01-01").unwrap_err();
        assert!(err.message.contains("4 fields"), "{err}");
    }

    #[test]
    fn rates_must_be_positive_decimals_between_two_currencies() {
        assert!(validate("EUR", "USD", "0", "2026-01-01", "x").is_err());
        assert!(validate("EUR", "USD", "abc", "2026-01-01", "x").is_err());
        assert!(validate("EUR", "EUR", "1", "2026-01-01", "x").is_err());
        assert!(validate("EUR", "USD", "1.5", "2026-01-01", " ").is_err());
        assert_eq!(
            validate("EUR", "USD", "1.50", "2026-01-01", "ECB")
                .unwrap()
                .rate,
            "1.5"
        );
    }
}
