//! The widgets: reports computed from a [`Snapshot`] of live records, the
//! same code whether the snapshot is the live projection or an as-of replay.
//!
//! Decimal arithmetic throughout; amounts are converted to the asked currency.

pub mod money;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::records::Snapshot;
use money::{amount, Converter, MissingRate};

/// `category/name` of every widget.
pub const WIDGETS: &[&str] = &[
    "invoices/summary",
    "invoices/aged_payables_receivables",
    "accounts/profit_and_loss",
    "sales/opportunities_funnel",
    "hr/workforce_summary",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Monthly,
    Quarterly,
    Yearly,
}

/// What a widget is asked for.
pub struct Params {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub period: Period,
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

/// Documents that count: not drafts, not voided.
fn counts(invoice: &Value) -> bool {
    !matches!(text(invoice, "status"), "DRAFT" | "VOIDED")
}

pub fn compute(
    name: &str,
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    match name {
        "invoices/summary" => invoices_summary(snapshot, money),
        "invoices/aged_payables_receivables" => aged(snapshot, params, money),
        "accounts/profit_and_loss" => profit_and_loss(snapshot, params, money),
        "sales/opportunities_funnel" => funnel(snapshot, money),
        "hr/workforce_summary" => Ok(workforce(snapshot, params)),
        _ => Ok(Value::Null),
    }
}

fn invoices_summary(snapshot: &Snapshot, money: &Converter) -> Result<Value, MissingRate> {
    let mut by_status: BTreeMap<String, (u64, Decimal, Decimal)> = BTreeMap::new();
    for invoice in snapshot.of("invoices") {
        let currency = text(invoice, "currency");
        let total = money.convert(amount(invoice, "total_amount"), currency)?;
        let balance = money.convert(amount(invoice, "balance"), currency)?;
        let status = match text(invoice, "status") {
            "" => "UNSPECIFIED",
            s => s,
        };
        let entry = by_status.entry(status.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += total;
        entry.2 += balance;
    }
    let statuses: Vec<Value> = by_status
        .into_iter()
        .map(|(status, (count, total, balance))| json!({"status": status, "count": count, "total": total.to_string(), "balance": balance.to_string()}))
        .collect();
    Ok(json!({"statuses": statuses}))
}

/// Open balances by days past due as of `to`: current, 1-30, 31-60, 61-90, 90+.
fn aged(snapshot: &Snapshot, params: &Params, money: &Converter) -> Result<Value, MissingRate> {
    const BUCKETS: [&str; 5] = ["current", "1-30", "31-60", "61-90", "90+"];
    let mut sides: BTreeMap<&str, [Decimal; 5]> = BTreeMap::from([
        ("receivables", [Decimal::ZERO; 5]),
        ("payables", [Decimal::ZERO; 5]),
    ]);
    for invoice in snapshot.of("invoices") {
        if !counts(invoice) || text(invoice, "status") == "PAID" {
            continue;
        }
        if date(invoice, "transaction_date").is_some_and(|d| d > params.to) {
            continue; // Not yet issued as of the report date.
        }
        let open = money.convert(amount(invoice, "balance"), text(invoice, "currency"))?;
        if open.is_zero() {
            continue;
        }
        let overdue = date(invoice, "due_date").map_or(0, |due| (params.to - due).num_days());
        let bucket = match overdue {
            i64::MIN..=0 => 0,
            1..=30 => 1,
            31..=60 => 2,
            61..=90 => 3,
            _ => 4,
        };
        let side = if text(invoice, "type") == "SUPPLIER" {
            "payables"
        } else {
            "receivables"
        };
        sides.get_mut(side).expect("both sides exist")[bucket] += open;
    }
    let render = |values: &[Decimal; 5]| {
        let mut object = serde_json::Map::new();
        for (name, value) in BUCKETS.iter().zip(values) {
            object.insert((*name).to_owned(), json!(value.to_string()));
        }
        object.insert(
            "total".into(),
            json!(values.iter().copied().sum::<Decimal>().to_string()),
        );
        Value::Object(object)
    };
    Ok(
        json!({"as_of": params.to.to_string(), "receivables": render(&sides["receivables"]), "payables": render(&sides["payables"])}),
    )
}

fn period_start(day: NaiveDate, period: Period) -> NaiveDate {
    let month = match period {
        Period::Monthly => day.month(),
        Period::Quarterly => (day.month() - 1) / 3 * 3 + 1,
        Period::Yearly => 1,
    };
    NaiveDate::from_ymd_opt(day.year(), month, 1).expect("the first of a month exists")
}

/// Revenue (customer invoices) and expenses (supplier invoices) by period of transaction date.
fn profit_and_loss(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut periods: BTreeMap<NaiveDate, (Decimal, Decimal)> = BTreeMap::new();
    for invoice in snapshot.of("invoices") {
        let Some(day) = date(invoice, "transaction_date") else {
            continue;
        };
        if !counts(invoice) || day > params.to || params.from.is_some_and(|from| day < from) {
            continue;
        }
        let value = money.convert(amount(invoice, "total_amount"), text(invoice, "currency"))?;
        let entry = periods.entry(period_start(day, params.period)).or_default();
        if text(invoice, "type") == "SUPPLIER" {
            entry.1 += value;
        } else {
            entry.0 += value;
        }
    }
    let (mut revenue, mut expenses) = (Decimal::ZERO, Decimal::ZERO);
    let rows: Vec<Value> = periods
        .into_iter()
        .map(|(start, (r, e))| {
            revenue += r;
            expenses += e;
            json!({"period_start": start.to_string(), "revenue": r.to_string(), "expenses": e.to_string(), "net": (r - e).to_string()})
        })
        .collect();
    Ok(
        json!({"periods": rows, "totals": {"revenue": revenue.to_string(), "expenses": expenses.to_string(), "net": (revenue - expenses).to_string()}}),
    )
}

fn funnel(snapshot: &Snapshot, money: &Converter) -> Result<Value, MissingRate> {
    let mut stages: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    for opportunity in snapshot.of("opportunities") {
        let value = money.convert(amount(opportunity, "amount"), text(opportunity, "currency"))?;
        let entry = stages
            .entry(text(opportunity, "sales_stage").to_owned())
            .or_default();
        entry.0 += 1;
        entry.1 += value;
    }
    let rows: Vec<Value> = stages
        .into_iter()
        .map(|(stage, (count, total))| json!({"sales_stage": stage, "count": count, "amount": total.to_string()}))
        .collect();
    Ok(json!({"stages": rows}))
}

fn workforce(snapshot: &Snapshot, params: &Params) -> Value {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut hired_in_range = 0;
    for employee in snapshot.of("employees") {
        *by_status
            .entry(text(employee, "status").to_owned())
            .or_default() += 1;
        if let Some(hired) = date(employee, "hired_date") {
            if hired <= params.to && params.from.is_none_or(|from| hired >= from) {
                hired_in_range += 1;
            }
        }
    }
    json!({"headcount": snapshot.of("employees").len(), "by_status": by_status, "hired": hired_in_range})
}
