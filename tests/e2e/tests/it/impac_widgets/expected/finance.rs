//! Expected accounting and invoice widgets.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::*;

pub(super) fn active_accounts(m: &Model) -> Vec<Value> {
    m.of("accounts")
        .into_values()
        .filter(|a| s(a, "status") != "INACTIVE")
        .collect()
}

pub(super) fn grouped_balances(accounts: &[&Value]) -> Vec<Value> {
    let mut types: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    for a in accounts {
        let e = types.entry(or_unspecified(s(a, "type"))).or_default();
        e.0 += 1;
        e.1 += usd(a, "current_balance", "currency");
    }
    types
        .into_iter()
        .map(|(t, (c, b))| json!({"type": t, "count": c, "balance": text(b)}))
        .collect()
}

pub(super) fn balance(m: &Model) -> Value {
    let accounts = active_accounts(m);
    let classes: BTreeSet<String> = accounts
        .iter()
        .map(|a| or_unspecified(s(a, "class")))
        .collect();
    let rows: Vec<Value> = classes
        .into_iter()
        .map(|class| {
            let mine: Vec<&Value> = accounts
                .iter()
                .filter(|a| or_unspecified(s(a, "class")) == class)
                .collect();
            let total: Decimal = mine
                .iter()
                .map(|a| usd(a, "current_balance", "currency"))
                .sum();
            json!({"class": class, "count": mine.len(), "balance": text(total), "types": grouped_balances(&mine)})
        })
        .collect();
    json!({ "classes": rows })
}

pub(super) fn balance_sheet(m: &Model, q: &Query) -> Value {
    // Each account as it stood at `to`: posted journals dated later are taken back.
    let mut accounts = active_accounts(m);
    for journal in m.of("journals").values() {
        if s(journal, "status") != "POSTED" || day(journal, "transaction_date").unwrap() <= q.to {
            continue;
        }
        for line in journal["lines"].as_array().unwrap() {
            let Some(account) = accounts
                .iter_mut()
                .find(|a| s(a, "id") == s(line, "account_id"))
            else {
                continue;
            };
            let debit_normal = s(account, "class") == "ASSET";
            let (debit, credit) = (
                dec(line, "debit") * rate(s(journal, "currency")),
                dec(line, "credit") * rate(s(journal, "currency")),
            );
            let restated = usd(account, "current_balance", "currency")
                + if debit_normal {
                    credit - debit
                } else {
                    debit - credit
                };
            // Kept in USD from now on.
            account["current_balance"] = json!(restated.to_string());
            account["currency"] = json!("USD");
        }
    }
    let section = |class: &str| {
        let mine: Vec<&Value> = accounts.iter().filter(|a| s(a, "class") == class).collect();
        let total: Decimal = mine
            .iter()
            .map(|a| usd(a, "current_balance", "currency"))
            .sum();
        (
            total,
            json!({"total": text(total), "types": grouped_balances(&mine)}),
        )
    };
    let (assets, assets_json) = section("ASSET");
    let (liabilities, liabilities_json) = section("LIABILITY");
    let (_, equity_json) = section("EQUITY");
    json!({
        "assets": assets_json,
        "liabilities": liabilities_json,
        "equity": equity_json,
        "net_assets": text(assets - liabilities),
        "date": q.to.to_string(),
    })
}

/// Per period of transaction date: customers' side and suppliers' side of
/// counted documents, with `net` when asked, and totals.
pub(super) fn two_sided(
    m: &Model,
    q: &Query,
    entity: &str,
    names: [&str; 2],
    with_net: bool,
    value: impl Fn(&Value) -> Decimal,
) -> Value {
    let mut periods: BTreeMap<NaiveDate, [Decimal; 2]> = BTreeMap::new();
    for doc in m.of(entity).values() {
        let Some(d) = q.day_within(doc, "transaction_date") else {
            continue;
        };
        if !counted(doc) {
            continue;
        }
        periods.entry(q.bucket(d)).or_default()[usize::from(supplier(doc))] += value(doc);
    }
    let render = |sums: [Decimal; 2]| {
        let mut row = json!({names[0]: text(sums[0]), names[1]: text(sums[1])});
        if with_net {
            row["net"] = text(sums[0] - sums[1]);
        }
        row
    };
    let totals = periods
        .values()
        .fold([Decimal::ZERO; 2], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
    let rows: Vec<Value> = periods
        .iter()
        .map(|(start, sums)| {
            let mut row = render(*sums);
            row["period_start"] = json!(start.to_string());
            row
        })
        .collect();
    json!({"periods": rows, "totals": render(totals)})
}

pub(super) fn payable_receivable(m: &Model, q: &Query) -> Value {
    let mut periods: BTreeMap<NaiveDate, [Decimal; 2]> = BTreeMap::new();
    let mut totals = [Decimal::ZERO; 2];
    for inv in m.of("invoices").values() {
        let issued = day(inv, "transaction_date").unwrap();
        if !counted(inv) || s(inv, "status") == "PAID" || issued > q.to {
            continue;
        }
        let open = usd(inv, "balance", "currency");
        let side = usize::from(supplier(inv));
        totals[side] += open;
        if q.within(issued) {
            periods.entry(q.bucket(issued)).or_default()[side] += open;
        }
    }
    let rows: Vec<Value> = periods
        .iter()
        .map(|(start, p)| json!({"period_start": start.to_string(), "receivable": text(p[0]), "payable": text(p[1])}))
        .collect();
    json!({"periods": rows, "totals": {"receivable": text(totals[0]), "payable": text(totals[1])}})
}

/// The contact of a document and its current name (null once deleted).
pub(super) fn contact(m: &Model, doc: &Value) -> Option<(String, Value)> {
    if !s(doc, "organization_id").is_empty() {
        let id = s(doc, "organization_id");
        let name = m
            .of("organizations")
            .get(id)
            .map_or(Value::Null, |o| json!(s(o, "name")));
        return Some((id.to_owned(), name));
    }
    if !s(doc, "person_id").is_empty() {
        let id = s(doc, "person_id");
        let name = m.of("people").get(id).map_or(Value::Null, |p| {
            json!(format!("{} {}", s(p, "first_name"), s(p, "last_name"))
                .trim()
                .to_owned())
        });
        return Some((id.to_owned(), name));
    }
    None
}

pub(super) fn invoice_list(m: &Model, q: &Query) -> Value {
    let mut rows: Vec<(NaiveDate, String, String, Value)> = Vec::new();
    for (id, inv) in m.of("invoices") {
        let Some(d) = q.day_within(&inv, "transaction_date") else {
            continue;
        };
        let contact =
            contact(m, &inv).map_or(Value::Null, |(id, name)| json!({"id": id, "name": name}));
        let row = json!({
            "id": id,
            "number": s(&inv, "transaction_number"),
            "type": or_unspecified(s(&inv, "type")),
            "status": or_unspecified(s(&inv, "status")),
            "contact": contact,
            "transaction_date": d.to_string(),
            "due_date": s(&inv, "due_date"),
            "currency": s(&inv, "currency"),
            "total": text(usd(&inv, "total_amount", "currency")),
            "balance": text(usd(&inv, "balance", "currency")),
        });
        rows.push((d, s(&inv, "transaction_number").to_owned(), id, row));
    }
    rows.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    let page: Vec<Value> = rows
        .iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(usize::MAX))
        .map(|r| r.3.clone())
        .collect();
    json!({"count": rows.len(), "offset": q.offset, "invoices": page})
}

pub(super) fn invoice_summary(m: &Model) -> Value {
    let mut statuses: BTreeMap<String, (u64, Decimal, Decimal)> = BTreeMap::new();
    for inv in m.of("invoices").values() {
        let e = statuses
            .entry(or_unspecified(s(inv, "status")))
            .or_default();
        e.0 += 1;
        e.1 += usd(inv, "total_amount", "currency");
        e.2 += usd(inv, "balance", "currency");
    }
    let rows: Vec<Value> = statuses
        .into_iter()
        .map(|(st, (c, t, b))| json!({"status": st, "count": c, "total": text(t), "balance": text(b)}))
        .collect();
    json!({ "statuses": rows })
}

/// Open balances of unpaid invoices issued by `to`, by days past due then.
pub(super) fn aged(m: &Model, q: &Query) -> Value {
    let names = ["current", "1-30", "31-60", "61-90", "90+"];
    let mut sides = [[Decimal::ZERO; 5]; 2];
    for inv in m.of("invoices").values() {
        let open = usd(inv, "balance", "currency");
        if !counted(inv)
            || s(inv, "status") == "PAID"
            || day(inv, "transaction_date").unwrap() > q.to
            || open == Decimal::ZERO
        {
            continue;
        }
        let late = (q.to - day(inv, "due_date").unwrap()).num_days();
        let bucket = [0, 30, 60, 90]
            .iter()
            .filter(|limit| late > **limit)
            .count();
        sides[usize::from(supplier(inv))][bucket] += open;
    }
    let render = |values: [Decimal; 5]| {
        let mut side = json!({"total": text(values.iter().sum())});
        for (name, value) in names.iter().zip(values) {
            side[*name] = text(value);
        }
        side
    };
    json!({"as_of": q.to.to_string(), "receivables": render(sides[0]), "payables": render(sides[1])})
}
