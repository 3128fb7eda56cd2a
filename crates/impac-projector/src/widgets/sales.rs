//! Sales widgets: sales per period and their growth, top customers, and the
//! opportunity and lead funnels. Sales are counted customer invoices (not
//! drafts, not voided) by transaction date.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

use super::money::{Converter, MissingRate};
use super::{converted, counts, is_supplier, label, text, Params};
use crate::records::Snapshot;

/// Each counted customer invoice between `from` and `to`: its date and converted total.
fn sales<'a>(
    snapshot: &'a Snapshot,
    params: &'a Params,
    money: &'a Converter,
) -> impl Iterator<Item = Result<(NaiveDate, &'a Value, Decimal), MissingRate>> + 'a {
    snapshot.of("invoices").iter().filter_map(move |invoice| {
        let day = params.dated(invoice, "transaction_date")?;
        if !counts(invoice) || is_supplier(invoice) {
            return None;
        }
        Some(
            converted(money, invoice, "total_amount", "currency")
                .map(|total| (day, invoice, total)),
        )
    })
}

/// Number and amount of sales per period, and totals.
pub(super) fn summary(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut periods: BTreeMap<NaiveDate, (u64, Decimal)> = BTreeMap::new();
    for sale in sales(snapshot, params, money) {
        let (day, _, total) = sale?;
        let entry = periods.entry(params.period.start(day)).or_default();
        entry.0 += 1;
        entry.1 += total;
    }
    let (count, amount) = (
        periods.values().map(|(count, _)| count).sum::<u64>(),
        periods.values().map(|(_, amount)| amount).sum::<Decimal>(),
    );
    let rows: Vec<Value> = periods
        .into_iter()
        .map(|(start, (count, amount))| json!({"period_start": start.to_string(), "count": count, "amount": amount.to_string()}))
        .collect();
    Ok(json!({"periods": rows, "totals": {"count": count, "amount": amount.to_string()}}))
}

/// Sales amount of every period from the first with sales (not before
/// `from`) to `to`, with the change from the previous period as a ratio
/// (4 decimals; `null` when the previous period had no sales or there is none).
pub(super) fn growth(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut amounts: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
    for sale in sales(snapshot, params, money) {
        let (day, _, total) = sale?;
        *amounts.entry(params.period.start(day)).or_default() += total;
    }
    let mut rows = Vec::new();
    // From the period of the first sale (sales are never dated before `from`),
    // but never more than MAX_GROWTH_PERIODS rows: a far `to` or a sale dated
    // centuries ago would otherwise make millions of empty daily rows.
    let Some(first) = amounts.keys().next().copied() else {
        return Ok(json!({"periods": rows}));
    };
    let last = params.period.start(params.to);
    let mut earliest_shown = last;
    for _ in 1..MAX_GROWTH_PERIODS {
        if earliest_shown <= first {
            break;
        }
        earliest_shown = params
            .period
            .start(earliest_shown.pred_opt().unwrap_or(earliest_shown));
    }
    let left_out = earliest_shown > first;
    let start_at = first.max(earliest_shown);
    let mut previous: Option<Decimal> = left_out.then(|| {
        let before = params.period.start(start_at.pred_opt().unwrap_or(start_at));
        amounts.get(&before).copied().unwrap_or_default()
    });
    let mut next = Some(start_at);
    while let Some(start) = next.filter(|start| *start <= params.to) {
        let amount = amounts.get(&start).copied().unwrap_or_default();
        let change = match previous {
            Some(before) if !before.is_zero() => {
                let mut ratio = ((amount - before) / before)
                    .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                // Always four decimals (`0.5000`, `39.0000`): one shape for every row.
                ratio.rescale(4);
                json!(ratio.to_string())
            }
            _ => Value::Null,
        };
        rows.push(json!({"period_start": start.to_string(), "amount": amount.to_string(), "change": change}));
        previous = Some(amount);
        next = Some(params.period.next(start));
    }
    let mut content = json!({"periods": rows});
    if left_out {
        content["earlier_periods_left_out"] = json!(true);
    }
    Ok(content)
}

/// The most rows `sales/growth` answers: ten years of days.
pub const MAX_GROWTH_PERIODS: usize = 3660;

/// The `limit` customers (organisation, else person) with the highest
/// invoiced amount between `from` and `to`; ties by id.
pub(super) fn top_customers(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let contacts = super::invoices::Contacts::of(snapshot);
    let mut customers: BTreeMap<String, (Value, u64, Decimal)> = BTreeMap::new();
    for sale in sales(snapshot, params, money) {
        let (_, invoice, total) = sale?;
        let Some((id, name)) = contacts.contact(invoice) else {
            continue; // A sale to nobody in particular is nobody's top.
        };
        let entry = customers.entry(id).or_insert((name, 0, Decimal::ZERO));
        entry.1 += 1;
        entry.2 += total;
    }
    let mut ranked: Vec<_> = customers.into_iter().collect();
    ranked.sort_by(|(a_id, a), (b_id, b)| b.2.cmp(&a.2).then_with(|| a_id.cmp(b_id)));
    let rows: Vec<Value> = ranked
        .into_iter()
        .take(params.top_n())
        .map(|(id, (name, count, amount))| json!({"id": id, "name": name, "invoices": count, "amount": amount.to_string()}))
        .collect();
    Ok(json!({"customers": rows}))
}

/// Count and amount of opportunities per sales stage.
pub(super) fn opportunities_funnel(
    snapshot: &Snapshot,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut stages: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    for opportunity in snapshot.of("opportunities") {
        let value = converted(money, opportunity, "amount", "currency")?;
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

/// People who are leads (`is_lead`), counted per lead status.
pub(super) fn leads_funnel(snapshot: &Snapshot) -> Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for person in snapshot.of("people") {
        if person.get("is_lead").and_then(Value::as_bool) == Some(true) {
            *statuses.entry(label(person, "lead_status")).or_default() += 1;
        }
    }
    let total: u64 = statuses.values().sum();
    let rows: Vec<Value> = statuses
        .into_iter()
        .map(|(status, count)| json!({"lead_status": status, "count": count}))
        .collect();
    json!({"statuses": rows, "total": total})
}

#[cfg(test)]
mod tests {
    use super::super::Period;
    use super::*;

    /// A far `to` (or a sale dated long ago) answers the latest
    /// MAX_GROWTH_PERIODS periods and says earlier ones were left out, instead
    /// of millions of empty daily rows.
    #[test]
    fn growth_answers_at_most_its_cap_of_periods_the_latest_ones() {
        let mut snapshot = Snapshot::default();
        snapshot.by_entity.insert(
            "invoices".into(),
            [("2026-01-10", "100"), ("9999-12-30", "50"), ("9999-12-31", "75")]
                .iter()
                .map(|(day, total)| json!({"type": "CUSTOMER", "status": "AUTHORISED", "transaction_date": day, "total_amount": total}))
                .collect(),
        );
        let params = Params {
            from: None,
            to: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            period: Period::Daily,
            limit: None,
            offset: 0,
        };
        let money = Converter::new("USD", Default::default());
        let content = growth(&snapshot, &params, &money).unwrap();
        let rows = content["periods"].as_array().unwrap();
        assert_eq!(rows.len(), MAX_GROWTH_PERIODS);
        assert_eq!(content["earlier_periods_left_out"], true);
        assert_eq!(rows.last().unwrap()["period_start"], "9999-12-31");
        assert_eq!(rows.last().unwrap()["change"], "0.5000");
        // The first row shown still compares with the period before it (empty: null).
        assert_eq!(rows[0]["change"], Value::Null);
        assert_eq!(rows[0]["amount"], "0");
    }

    #[test]
    fn growth_is_the_change_from_the_previous_period_and_null_after_nothing() {
        let mut snapshot = Snapshot::default();
        snapshot.by_entity.insert(
            "invoices".into(),
            [("2026-01-10", "100"), ("2026-03-05", "50"), ("2026-04-30", "80"), ("2026-04-01", "0.005")]
                .iter()
                .map(|(day, total)| json!({"type": "CUSTOMER", "status": "AUTHORISED", "transaction_date": day, "total_amount": total}))
                .collect(),
        );
        let params = Params {
            from: None,
            to: NaiveDate::from_ymd_opt(2026, 5, 15).unwrap(),
            period: Period::Monthly,
            limit: None,
            offset: 0,
        };
        let money = Converter::new("USD", Default::default());
        let content = growth(&snapshot, &params, &money).unwrap();
        assert_eq!(content.get("earlier_periods_left_out"), None);
        let changes: Vec<&Value> = content["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| &row["change"])
            .collect();
        // January has no previous period, March follows an empty February,
        // April: (80.005 - 50) / 50 = 0.6001, May: -100%.
        assert_eq!(
            changes,
            [
                &Value::Null,
                &json!("-1.0000"),
                &Value::Null,
                &json!("0.6001"),
                &json!("-1.0000")
            ]
        );
        assert_eq!(content["periods"][3]["amount"], "80.005");
    }
}
