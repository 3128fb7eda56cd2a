//! Expected sales widgets.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::*;

/// Counted customer invoices dated within the query.
pub(super) fn sales(m: &Model, q: &Query) -> Vec<(NaiveDate, Value)> {
    m.of("invoices")
        .into_values()
        .filter(|i| counted(i) && !supplier(i))
        .filter_map(|i| Some((q.day_within(&i, "transaction_date")?, i)))
        .collect()
}

pub(super) fn sales_summary(m: &Model, q: &Query) -> Value {
    let mut periods: BTreeMap<NaiveDate, (u64, Decimal)> = BTreeMap::new();
    let (mut count, mut amount) = (0u64, Decimal::ZERO);
    for (d, inv) in sales(m, q) {
        let e = periods.entry(q.bucket(d)).or_default();
        let value = usd(&inv, "total_amount", "currency");
        e.0 += 1;
        e.1 += value;
        count += 1;
        amount += value;
    }
    let rows: Vec<Value> = periods
        .iter()
        .map(|(p, (c, a))| json!({"period_start": p.to_string(), "count": c, "amount": text(*a)}))
        .collect();
    json!({"periods": rows, "totals": {"count": count, "amount": text(amount)}})
}

pub(super) fn growth(m: &Model, q: &Query) -> Value {
    let mut amounts: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
    for (d, inv) in sales(m, q) {
        *amounts.entry(q.bucket(d)).or_default() += usd(&inv, "total_amount", "currency");
    }
    let Some(first) = amounts.keys().next().copied() else {
        return json!({"periods": []});
    };
    // Every period from the first with sales to the one `to` is in, by walking the days.
    let periods: BTreeSet<NaiveDate> = first
        .iter_days()
        .take_while(|d| *d <= q.to)
        .map(|d| q.bucket(d))
        .collect();
    let mut previous: Option<Decimal> = None;
    let rows: Vec<Value> = periods
        .into_iter()
        .map(|p| {
            let amount = amounts.get(&p).copied().unwrap_or(Decimal::ZERO);
            let change = match previous {
                Some(before) if before != Decimal::ZERO => {
                    let mut ratio = ((amount - before) / before)
                        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                    ratio.rescale(4);
                    text(ratio)
                }
                _ => Value::Null,
            };
            previous = Some(amount);
            json!({"period_start": p.to_string(), "amount": text(amount), "change": change})
        })
        .collect();
    json!({ "periods": rows })
}

pub(super) fn top_customers(m: &Model, q: &Query) -> Value {
    let mut customers: BTreeMap<String, (Value, u64, Decimal)> = BTreeMap::new();
    for (_, inv) in sales(m, q) {
        if let Some((id, name)) = contact(m, &inv) {
            let e = customers.entry(id).or_insert((name, 0, Decimal::ZERO));
            e.1 += 1;
            e.2 += usd(&inv, "total_amount", "currency");
        }
    }
    let mut ranked: Vec<(String, (Value, u64, Decimal))> = customers.into_iter().collect();
    ranked.sort_by(|a, b| (b.1 .2, &a.0).cmp(&(a.1 .2, &b.0)));
    let rows: Vec<Value> = ranked
        .into_iter()
        .take(q.limit.unwrap_or(10))
        .map(|(id, (name, n, amount))| json!({"id": id, "name": name, "invoices": n, "amount": text(amount)}))
        .collect();
    json!({ "customers": rows })
}

pub(super) fn leads_funnel(m: &Model) -> Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for p in m.of("people").values() {
        if p["is_lead"] == json!(true) {
            *statuses
                .entry(or_unspecified(s(p, "lead_status")))
                .or_default() += 1;
        }
    }
    let total: u64 = statuses.values().sum();
    let rows: Vec<Value> = statuses
        .into_iter()
        .map(|(st, c)| json!({"lead_status": st, "count": c}))
        .collect();
    json!({"statuses": rows, "total": total})
}

pub(super) fn opportunities_funnel(m: &Model) -> Value {
    let mut stages: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    for o in m.of("opportunities").values() {
        let e = stages.entry(s(o, "sales_stage").to_owned()).or_default();
        e.0 += 1;
        e.1 += usd(o, "amount", "currency");
    }
    let rows: Vec<Value> = stages
        .into_iter()
        .map(|(st, (c, a))| json!({"sales_stage": st, "count": c, "amount": text(a)}))
        .collect();
    json!({ "stages": rows })
}
