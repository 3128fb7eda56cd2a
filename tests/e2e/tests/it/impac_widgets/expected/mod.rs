//! What each widget should answer, computed by the test from the records it
//! wrote, on its own (no code of the projector is used): the documented
//! meaning of each widget written out again.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

mod finance;
mod hr;
mod sales;

use finance::*;
use hr::*;
use sales::*;

pub const WIDGETS: &[&str] = &[
    "accounts/balance",
    "accounts/balance_sheet",
    "accounts/cash_summary",
    "accounts/expenses_revenue",
    "accounts/payable_receivable",
    "accounts/profit_and_loss",
    "invoices/aged_payables_receivables",
    "invoices/list",
    "invoices/summary",
    "sales/growth",
    "sales/leads_funnel",
    "sales/opportunities_funnel",
    "sales/summary",
    "sales/top_customers",
    "hr/leaves_balance",
    "hr/payroll_summary",
    "hr/salaries_summary",
    "hr/timesheets",
    "hr/workforce_summary",
];

/// The live records the test wrote, by collection then id.
#[derive(Default, Clone)]
pub struct Model(BTreeMap<String, BTreeMap<String, Value>>);

impl Model {
    pub fn entity(&mut self, entity: &str) -> &mut BTreeMap<String, Value> {
        self.0.entry(entity.to_owned()).or_default()
    }

    /// The records of both models (ids are unique across orgs).
    pub fn merged(&self, other: &Model) -> Model {
        let mut both = self.clone();
        for (entity, records) in &other.0 {
            both.entity(entity).extend(records.clone());
        }
        both
    }

    pub fn of(&self, entity: &str) -> BTreeMap<String, Value> {
        self.0.get(entity).cloned().unwrap_or_default()
    }
}

pub struct Query {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub period: &'static str,
    /// Sent when set: the rows of a top-N widget (default 10) or of a list page (default all).
    pub limit: Option<usize>,
    /// Sent when not 0: list rows skipped before the page.
    pub offset: usize,
}

impl Query {
    pub fn url(&self) -> String {
        let from = self.from.map_or(String::new(), |f| format!("&from={f}"));
        let limit = self.limit.map_or(String::new(), |l| format!("&limit={l}"));
        let offset = match self.offset {
            0 => String::new(),
            n => format!("&offset={n}"),
        };
        format!(
            "currency=USD&to={}&period={}{from}{limit}{offset}",
            self.to, self.period
        )
    }

    fn within(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| from <= day) && day <= self.to
    }

    fn day_within(&self, record: &Value, field: &str) -> Option<NaiveDate> {
        day(record, field).filter(|d| self.within(*d))
    }

    /// The first day of the period `day` is in, worked out from the calendar.
    fn bucket(&self, day: NaiveDate) -> NaiveDate {
        match self.period {
            "DAILY" => day,
            "WEEKLY" => {
                let week = day.iso_week();
                NaiveDate::from_isoywd_opt(week.year(), week.week(), Weekday::Mon).unwrap()
            }
            "MONTHLY" => day.with_day(1).unwrap(),
            "QUARTERLY" => {
                let month = [1, 1, 1, 4, 4, 4, 7, 7, 7, 10, 10, 10][day.month0() as usize];
                NaiveDate::from_ymd_opt(day.year(), month, 1).unwrap()
            }
            "YEARLY" => NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap(),
            other => unreachable!("{other}"),
        }
    }
}

fn s<'a>(record: &'a Value, field: &str) -> &'a str {
    record[field].as_str().unwrap_or("")
}

fn or_unspecified(text: &str) -> String {
    if text.is_empty() {
        "UNSPECIFIED".into()
    } else {
        text.into()
    }
}

fn dec(record: &Value, field: &str) -> Decimal {
    record[field]
        .as_str()
        .map_or(Decimal::ZERO, |t| Decimal::from_str(t).unwrap())
}

fn day(record: &Value, field: &str) -> Option<NaiveDate> {
    record[field]
        .as_str()
        .map(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap())
}

/// To USD, with the rates the test loaded.
fn rate(currency: &str) -> Decimal {
    match currency {
        "EUR" => Decimal::from_str("1.0850").unwrap(),
        "GBP" => Decimal::from_str("1.2700").unwrap(),
        _ => Decimal::ONE,
    }
}

fn usd(record: &Value, field: &str, currency_field: &str) -> Decimal {
    dec(record, field) * rate(s(record, currency_field))
}

fn text(value: Decimal) -> Value {
    json!(value.to_string())
}

/// Not a draft, not voided.
fn counted(document: &Value) -> bool {
    s(document, "status") != "DRAFT" && s(document, "status") != "VOIDED"
}

fn supplier(document: &Value) -> bool {
    s(document, "type") == "SUPPLIER"
}

pub fn content(widget: &str, m: &Model, q: &Query) -> Value {
    match widget {
        "accounts/balance" => balance(m),
        "accounts/balance_sheet" => balance_sheet(m, q),
        "accounts/cash_summary" => {
            two_sided(m, q, "payments", ["cash_in", "cash_out"], true, |p| {
                usd(p, "amount", "currency")
            })
        }
        "accounts/profit_and_loss" => {
            two_sided(m, q, "invoices", ["revenue", "expenses"], true, |i| {
                usd(i, "total_amount", "currency")
            })
        }
        "accounts/expenses_revenue" => {
            two_sided(m, q, "invoices", ["revenue", "expenses"], false, |i| {
                (dec(i, "total_amount") - dec(i, "tax_amount")) * rate(s(i, "currency"))
            })
        }
        "accounts/payable_receivable" => payable_receivable(m, q),
        "invoices/aged_payables_receivables" => aged(m, q),
        "invoices/list" => invoice_list(m, q),
        "invoices/summary" => invoice_summary(m),
        "sales/summary" => sales_summary(m, q),
        "sales/growth" => growth(m, q),
        "sales/top_customers" => top_customers(m, q),
        "sales/leads_funnel" => leads_funnel(m),
        "sales/opportunities_funnel" => opportunities_funnel(m),
        "hr/salaries_summary" => salaries(m),
        "hr/payroll_summary" => payroll(m, q),
        "hr/timesheets" => timesheets(m, q),
        "hr/leaves_balance" => leaves(m, q),
        "hr/workforce_summary" => workforce(m, q),
        other => unreachable!("{other}"),
    }
}
