//! The widgets: reports computed from a [`Snapshot`] of live records, the
//! same code whether the snapshot is the live projection or an as-of replay.
//!
//! This module is the catalogue (names, the collections each reads, dispatch)
//! and the helpers the categories share; each category has its own module.
//! Decimal arithmetic throughout; amounts are converted to the asked currency;
//! every list is sorted so that an answer is a function of the records alone.

mod accounts;
mod hr;
mod invoices;
pub mod money;
mod sales;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::records::Snapshot;
use money::{Converter, MissingRate};

/// Every widget: `category/name` and the collections it reads (the IDM check
/// asks for read on each of them).
pub const CATALOGUE: &[(&str, &[&str])] = &[
    ("accounts/balance", &["accounts"]),
    ("accounts/balance_sheet", &["accounts", "journals"]),
    ("accounts/cash_summary", &["payments"]),
    ("accounts/expenses_revenue", &["invoices"]),
    ("accounts/payable_receivable", &["invoices"]),
    ("accounts/profit_and_loss", &["invoices"]),
    ("invoices/aged_payables_receivables", &["invoices"]),
    ("invoices/list", &["invoices", "organizations", "people"]),
    ("invoices/summary", &["invoices"]),
    ("sales/growth", &["invoices"]),
    ("sales/leads_funnel", &["people"]),
    ("sales/opportunities_funnel", &["opportunities"]),
    ("sales/summary", &["invoices"]),
    (
        "sales/top_customers",
        &["invoices", "organizations", "people"],
    ),
    ("hr/leaves_balance", &["leave_applications"]),
    ("hr/payroll_summary", &["pay_runs", "pay_stubs"]),
    ("hr/salaries_summary", &["employees"]),
    ("hr/timesheets", &["time_sheets"]),
    ("hr/workforce_summary", &["employees"]),
];

/// `category/name` of every widget.
pub const WIDGETS: &[&str] = &{
    let mut names = [""; CATALOGUE.len()];
    let mut i = 0;
    while i < CATALOGUE.len() {
        names[i] = CATALOGUE[i].0;
        i += 1;
    }
    names
};

/// The collections a widget reads (empty for an unknown widget).
pub fn entities_of(widget: &str) -> &'static [&'static str] {
    CATALOGUE
        .iter()
        .find(|(name, _)| *name == widget)
        .map_or(&[], |(_, entities)| entities)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    /// ISO weeks, starting on Monday.
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

impl Period {
    pub const NAMES: &'static str = "DAILY, WEEKLY, MONTHLY, QUARTERLY or YEARLY";

    pub fn parse(text: &str) -> Option<Period> {
        Some(match text {
            "DAILY" => Period::Daily,
            "WEEKLY" => Period::Weekly,
            "MONTHLY" => Period::Monthly,
            "QUARTERLY" => Period::Quarterly,
            "YEARLY" => Period::Yearly,
            _ => return None,
        })
    }

    /// The first day of the period `day` falls in.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        let first_of = |month| NaiveDate::from_ymd_opt(day.year(), month, 1).expect("a real date");
        match self {
            Period::Daily => day,
            Period::Weekly => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Period::Monthly => first_of(day.month()),
            Period::Quarterly => first_of((day.month() - 1) / 3 * 3 + 1),
            Period::Yearly => first_of(1),
        }
    }

    /// The first day of the period after the one starting at `start`.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Period::Daily => start + Days::new(1),
            Period::Weekly => start + Days::new(7),
            Period::Monthly => start + Months::new(1),
            Period::Quarterly => start + Months::new(3),
            Period::Yearly => start + Months::new(12),
        }
    }
}

/// Default number of rows of a top-N widget.
pub const DEFAULT_LIMIT: usize = 10;

/// What a widget is asked for.
pub struct Params {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub period: Period,
    /// Rows asked for (`limit`): of a top-N widget (`sales/top_customers`,
    /// default [`DEFAULT_LIMIT`]), or of one page of `invoices/list` (default: all).
    pub limit: Option<usize>,
    /// Rows of `invoices/list` skipped before its page (`offset`).
    pub offset: usize,
}

impl Params {
    /// Rows of a top-N widget.
    pub fn top_n(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// Whether a dated record falls between `from` and `to` (both included).
    fn covers(&self, day: NaiveDate) -> bool {
        day <= self.to && self.from.is_none_or(|from| day >= from)
    }

    /// The date of `record`'s `field` when it falls between `from` and `to`.
    fn dated(&self, record: &Value, field: &str) -> Option<NaiveDate> {
        date(record, field).filter(|day| self.covers(*day))
    }
}

/// Why a widget has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error(transparent)]
    MissingRate(#[from] MissingRate),
    #[error(
        "a figure of {widget} is beyond what a decimal holds exactly (28 digits, about 7.9e28): \
         the records it sums hold amounts that large; narrow the orgs or dates, or correct those records"
    )]
    OutOfRange { widget: String },
}

/// A widget's content.
pub fn compute(
    name: &str,
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, ComputeError> {
    // The widgets sum with rust_decimal's operators, which panic when a result
    // leaves the decimal range. Only records written to overflow get there
    // (each amount alone is in range): that is the request's error, answered
    // as such rather than by dropping its connection. Any other panic is a bug
    // and goes on.
    let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compute_in_range(name, snapshot, params, money)
    }));
    match computed {
        Ok(answer) => Ok(answer?),
        Err(panic) if is_decimal_overflow(panic.as_ref()) => Err(ComputeError::OutOfRange {
            widget: name.to_owned(),
        }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// rust_decimal's panics on overflow: "Addition overflowed", "Multiplication overflowed", ...
fn is_decimal_overflow(panic: &(dyn std::any::Any + Send)) -> bool {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    text.is_some_and(|t| t.ends_with(" overflowed"))
}

fn compute_in_range(
    name: &str,
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    match name {
        "accounts/balance" => accounts::balance(snapshot, money),
        "accounts/balance_sheet" => accounts::balance_sheet(snapshot, params, money),
        "accounts/cash_summary" => accounts::cash_summary(snapshot, params, money),
        "accounts/expenses_revenue" => accounts::expenses_revenue(snapshot, params, money),
        "accounts/payable_receivable" => accounts::payable_receivable(snapshot, params, money),
        "accounts/profit_and_loss" => accounts::profit_and_loss(snapshot, params, money),
        "invoices/aged_payables_receivables" => invoices::aged(snapshot, params, money),
        "invoices/list" => invoices::list(snapshot, params, money),
        "invoices/summary" => invoices::summary(snapshot, money),
        "sales/growth" => sales::growth(snapshot, params, money),
        "sales/leads_funnel" => Ok(sales::leads_funnel(snapshot)),
        "sales/opportunities_funnel" => sales::opportunities_funnel(snapshot, money),
        "sales/summary" => sales::summary(snapshot, params, money),
        "sales/top_customers" => sales::top_customers(snapshot, params, money),
        "hr/leaves_balance" => Ok(hr::leaves_balance(snapshot, params)),
        "hr/payroll_summary" => hr::payroll_summary(snapshot, params, money),
        "hr/salaries_summary" => hr::salaries_summary(snapshot, money),
        "hr/timesheets" => Ok(hr::timesheets(snapshot, params)),
        "hr/workforce_summary" => Ok(hr::workforce_summary(snapshot, params)),
        _ => Ok(Value::Null),
    }
}

fn date(record: &Value, field: &str) -> Option<NaiveDate> {
    let text = record.get(field)?.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A grouping key: the field's text, or `UNSPECIFIED` when it is absent or empty.
fn label(record: &Value, field: &str) -> String {
    match text(record, field) {
        "" => "UNSPECIFIED".to_owned(),
        s => s.to_owned(),
    }
}

/// Documents that count: not drafts, not voided.
fn counts(document: &Value) -> bool {
    !matches!(text(document, "status"), "DRAFT" | "VOIDED")
}

fn is_supplier(document: &Value) -> bool {
    text(document, "type") == "SUPPLIER"
}

/// `field` of `record` converted from the record's `currency_field`.
fn converted(
    money: &Converter,
    record: &Value,
    field: &str,
    currency_field: &str,
) -> Result<Decimal, MissingRate> {
    money.convert(money::amount(record, field), text(record, currency_field))
}

/// Several named decimals kept together (one row of a report).
#[derive(Debug, Clone)]
struct Sums<const N: usize>([Decimal; N]);

impl<const N: usize> Default for Sums<N> {
    fn default() -> Self {
        Self([Decimal::ZERO; N])
    }
}

impl<const N: usize> Sums<N> {
    fn add(&mut self, values: [Decimal; N]) {
        for (sum, value) in self.0.iter_mut().zip(values) {
            *sum += value;
        }
    }

    fn render(&self, names: [&str; N]) -> serde_json::Map<String, Value> {
        names
            .iter()
            .zip(&self.0)
            .map(|(name, value)| ((*name).to_owned(), json!(value.to_string())))
            .collect()
    }
}

/// Rows per period (`period_start` plus the named sums) and their totals:
/// `{"periods": [...], "totals": {...}}`. `extra` adds derived fields to each
/// row and to the totals (such as `net`).
fn periods_report<const N: usize>(
    periods: BTreeMap<NaiveDate, Sums<N>>,
    names: [&str; N],
    extra: impl Fn(&Sums<N>, &mut serde_json::Map<String, Value>),
) -> Value {
    let mut totals = Sums::<N>::default();
    let rows: Vec<Value> = periods
        .into_iter()
        .map(|(start, sums)| {
            totals.add(sums.0);
            let mut row = serde_json::Map::new();
            row.insert("period_start".into(), json!(start.to_string()));
            row.extend(sums.render(names));
            extra(&sums, &mut row);
            Value::Object(row)
        })
        .collect();
    let mut total = totals.render(names);
    extra(&totals, &mut total);
    json!({"periods": rows, "totals": total})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_start_on_their_first_day() {
        let thursday = day("2026-11-26");
        assert_eq!(Period::Daily.start(thursday), thursday);
        assert_eq!(Period::Weekly.start(thursday), day("2026-11-23"));
        assert_eq!(Period::Weekly.start(day("2026-11-23")), day("2026-11-23"));
        assert_eq!(Period::Monthly.start(thursday), day("2026-11-01"));
        assert_eq!(Period::Quarterly.start(thursday), day("2026-10-01"));
        assert_eq!(Period::Yearly.start(thursday), day("2026-01-01"));
        assert_eq!(Period::Quarterly.next(day("2026-10-01")), day("2027-01-01"));
        assert_eq!(Period::Weekly.next(day("2026-12-28")), day("2027-01-04"));
    }

    #[test]
    fn every_widget_names_what_it_reads_and_computes() {
        let params = Params {
            from: None,
            to: day("2026-12-31"),
            period: Period::Monthly,
            limit: None,
            offset: 0,
        };
        let money = Converter::new("USD", Default::default());
        for widget in WIDGETS {
            assert!(!entities_of(widget).is_empty(), "{widget}");
            let content = compute(widget, &Snapshot::default(), &params, &money).unwrap();
            assert!(content.is_object(), "{widget}: {content}");
        }
        assert!(entities_of("accounts/horoscope").is_empty());
    }
}
