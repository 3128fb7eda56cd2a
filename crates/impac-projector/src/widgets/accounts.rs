//! Accounting widgets: account balances, the balance sheet, cash, revenue
//! and expenses, payables and receivables.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::money::{amount, Converter, MissingRate};
use super::{converted, counts, is_supplier, label, periods_report, text, Params, Sums};
use crate::records::Snapshot;

/// Accounts in use (inactive accounts are left out of balances).
fn active_accounts(snapshot: &Snapshot) -> impl Iterator<Item = &Value> {
    snapshot
        .of("accounts")
        .iter()
        .filter(|account| text(account, "status") != "INACTIVE")
}

/// Count and balance of accounts per key.
type Tally = BTreeMap<String, (u64, Decimal)>;

fn tally_rows(tally: Tally, key: &str) -> Vec<Value> {
    tally
        .into_iter()
        .map(|(name, (count, balance))| json!({key: name, "count": count, "balance": balance.to_string()}))
        .collect()
}

/// Current balances of active accounts by class, and by type within a class.
pub(super) fn balance(snapshot: &Snapshot, money: &Converter) -> Result<Value, MissingRate> {
    let mut classes: BTreeMap<String, Tally> = BTreeMap::new();
    for account in active_accounts(snapshot) {
        let value = converted(money, account, "current_balance", "currency")?;
        let entry = classes
            .entry(label(account, "class"))
            .or_default()
            .entry(label(account, "type"))
            .or_default();
        entry.0 += 1;
        entry.1 += value;
    }
    let rows: Vec<Value> = classes
        .into_iter()
        .map(|(class, types)| {
            let count: u64 = types.values().map(|(count, _)| count).sum();
            let balance: Decimal = types.values().map(|(_, balance)| balance).sum();
            json!({"class": class, "count": count, "balance": balance.to_string(), "types": tally_rows(types, "type")})
        })
        .collect();
    Ok(json!({"classes": rows}))
}

/// Per account, debits less credits of posted journal lines dated after
/// `to`, converted: what moved an account's balance since `to`.
fn journal_movements_after<'a>(
    snapshot: &'a Snapshot,
    to: chrono::NaiveDate,
    money: &Converter,
) -> Result<BTreeMap<&'a str, Decimal>, MissingRate> {
    let mut movements: BTreeMap<&str, Decimal> = BTreeMap::new();
    for journal in snapshot.of("journals") {
        if text(journal, "status") != "POSTED"
            || super::date(journal, "transaction_date").is_none_or(|day| day <= to)
        {
            continue;
        }
        let lines = journal.get("lines").and_then(Value::as_array);
        for line in lines.into_iter().flatten() {
            let debit = amount(line, "debit") - amount(line, "credit");
            *movements.entry(text(line, "account_id")).or_default() +=
                money.convert(debit, text(journal, "currency"))?;
        }
    }
    Ok(movements)
}

/// Assets, liabilities and equity as of `to`: the balances of active accounts
/// of those classes, less what posted journals dated after `to` moved them
/// (assets grow by debits, liabilities and equity by credits).
pub(super) fn balance_sheet(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    const SECTIONS: [(&str, &str); 3] = [
        ("ASSET", "assets"),
        ("LIABILITY", "liabilities"),
        ("EQUITY", "equity"),
    ];
    let movements = journal_movements_after(snapshot, params.to, money)?;
    let mut sections: BTreeMap<&str, Tally> = BTreeMap::new();
    for account in active_accounts(snapshot) {
        let Some((class, section)) = SECTIONS
            .iter()
            .find(|(class, _)| *class == text(account, "class"))
        else {
            continue;
        };
        let since = movements
            .get(text(account, "id"))
            .copied()
            .unwrap_or_default();
        let current = converted(money, account, "current_balance", "currency")?;
        let value = if *class == "ASSET" {
            current - since
        } else {
            current + since
        };
        let entry = sections
            .entry(section)
            .or_default()
            .entry(label(account, "type"))
            .or_default();
        entry.0 += 1;
        entry.1 += value;
    }
    let mut content = serde_json::Map::new();
    let mut totals = BTreeMap::new();
    for (_, section) in SECTIONS {
        let types = sections.remove(section).unwrap_or_default();
        let total: Decimal = types.values().map(|(_, balance)| balance).sum();
        totals.insert(section, total);
        content.insert(
            section.to_owned(),
            json!({"total": total.to_string(), "types": tally_rows(types, "type")}),
        );
    }
    content.insert(
        "net_assets".into(),
        json!((totals["assets"] - totals["liabilities"]).to_string()),
    );
    content.insert("date".into(), json!(params.to.to_string()));
    Ok(Value::Object(content))
}

/// Money received (customer payments) and paid (supplier payments) per period
/// of payment date; drafts and voided payments do not count.
pub(super) fn cash_summary(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let periods = by_side(snapshot.of("payments"), params, |payment| {
        converted(money, payment, "amount", "currency")
    })?;
    Ok(periods_report(periods, ["cash_in", "cash_out"], net))
}

/// Adds `net`: the customers' side less the suppliers'.
fn net(sums: &Sums<2>, row: &mut serde_json::Map<String, Value>) {
    row.insert("net".into(), json!((sums.0[0] - sums.0[1]).to_string()));
}

/// `value` on the customers' side (first) or the suppliers' (second).
fn by_party(document: &Value, value: Decimal) -> [Decimal; 2] {
    if is_supplier(document) {
        [Decimal::ZERO, value]
    } else {
        [value, Decimal::ZERO]
    }
}

/// Per period of transaction date, the sums of `value` over counted
/// documents of customers (first) and of suppliers (second).
fn by_side(
    documents: &[Value],
    params: &Params,
    value: impl Fn(&Value) -> Result<Decimal, MissingRate>,
) -> Result<BTreeMap<chrono::NaiveDate, Sums<2>>, MissingRate> {
    let mut periods: BTreeMap<_, Sums<2>> = BTreeMap::new();
    for document in documents {
        let Some(day) = params.dated(document, "transaction_date") else {
            continue;
        };
        if !counts(document) {
            continue;
        }
        let sides = by_party(document, value(document)?);
        periods
            .entry(params.period.start(day))
            .or_default()
            .add(sides);
    }
    Ok(periods)
}

/// Revenue (customer invoices) and expenses (supplier invoices), totals with
/// tax, and net per period of transaction date.
pub(super) fn profit_and_loss(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let periods = by_side(snapshot.of("invoices"), params, |invoice| {
        converted(money, invoice, "total_amount", "currency")
    })?;
    Ok(periods_report(periods, ["revenue", "expenses"], net))
}

/// Revenue and expenses net of tax (`total_amount - tax_amount`) per period.
pub(super) fn expenses_revenue(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let periods = by_side(snapshot.of("invoices"), params, |invoice| {
        Ok(converted(money, invoice, "total_amount", "currency")?
            - converted(money, invoice, "tax_amount", "currency")?)
    })?;
    Ok(periods_report(periods, ["revenue", "expenses"], |_, _| {}))
}

/// Open balances of unpaid invoices: per period of transaction date between
/// `from` and `to`, and in total as of `to` (every invoice issued by then).
pub(super) fn payable_receivable(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut periods: BTreeMap<_, Sums<2>> = BTreeMap::new();
    let mut totals = Sums::<2>::default();
    for invoice in snapshot.of("invoices") {
        if !counts(invoice) || text(invoice, "status") == "PAID" {
            continue;
        }
        let issued = super::date(invoice, "transaction_date");
        if issued.is_some_and(|day| day > params.to) {
            continue; // Not yet issued as of `to`.
        }
        let sides = by_party(invoice, converted(money, invoice, "balance", "currency")?);
        totals.add(sides);
        if let Some(day) = issued.filter(|day| params.covers(*day)) {
            periods
                .entry(params.period.start(day))
                .or_default()
                .add(sides);
        }
    }
    let names = ["receivable", "payable"];
    let mut report = periods_report(periods, names, |_, _| {});
    report["totals"] = Value::Object(totals.render(names));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::Period;
    use super::*;

    #[test]
    fn the_balance_sheet_takes_back_journals_posted_after_its_date() {
        let mut snapshot = Snapshot::default();
        snapshot.by_entity.insert(
            "accounts".into(),
            vec![
                json!({"id": "bank", "class": "ASSET", "type": "BANK", "current_balance": "1000"}),
                json!({"id": "loan", "class": "LIABILITY", "type": "LOAN", "current_balance": "500"}),
                json!({"id": "old", "class": "ASSET", "status": "INACTIVE", "current_balance": "7"}),
            ],
        );
        let journal = |day: &str, status: &str| {
            json!({"transaction_date": day, "status": status, "lines": [
                {"account_id": "bank", "debit": "200"},
                {"account_id": "loan", "credit": "200"},
            ]})
        };
        snapshot.by_entity.insert(
            "journals".into(),
            vec![
                journal("2026-07-01", "POSTED"),
                journal("2026-07-02", "DRAFT"),
                journal("2026-05-01", "POSTED"),
            ],
        );
        let params = Params {
            from: None,
            to: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            period: Period::Monthly,
            limit: None,
            offset: 0,
        };
        let money = Converter::new("USD", Default::default());
        let sheet = balance_sheet(&snapshot, &params, &money).unwrap();
        assert_eq!(sheet["assets"]["total"], "800");
        assert_eq!(sheet["liabilities"]["total"], "300");
        assert_eq!(sheet["equity"]["total"], "0");
        assert_eq!(sheet["net_assets"], "500");
    }
}
