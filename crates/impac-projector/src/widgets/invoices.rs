//! Invoice widgets: the summary per status, aged balances, and the list.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::money::{Converter, MissingRate};
use super::{converted, counts, date, is_supplier, label, text, Params};
use crate::records::Snapshot;

/// Count, total and balance per status.
pub(super) fn summary(snapshot: &Snapshot, money: &Converter) -> Result<Value, MissingRate> {
    let mut by_status: BTreeMap<String, (u64, Decimal, Decimal)> = BTreeMap::new();
    for invoice in snapshot.of("invoices") {
        let total = converted(money, invoice, "total_amount", "currency")?;
        let balance = converted(money, invoice, "balance", "currency")?;
        let entry = by_status.entry(label(invoice, "status")).or_default();
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
pub(super) fn aged(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
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
        let open = converted(money, invoice, "balance", "currency")?;
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
        let side = if is_supplier(invoice) {
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

/// The organisations and people of a snapshot by id, to name documents' contacts.
pub(super) struct Contacts<'a> {
    organizations: HashMap<&'a str, &'a Value>,
    people: HashMap<&'a str, &'a Value>,
}

impl<'a> Contacts<'a> {
    pub(super) fn of(snapshot: &'a Snapshot) -> Self {
        let by_id = |entity| {
            snapshot
                .of(entity)
                .iter()
                .map(|record| (text(record, "id"), record))
                .collect()
        };
        Contacts {
            organizations: by_id("organizations"),
            people: by_id("people"),
        }
    }

    /// The contact of a document: its organisation, else its person, with the
    /// name the contact record has now (`null` when it was deleted).
    pub(super) fn contact(&self, document: &Value) -> Option<(String, Value)> {
        let organization = text(document, "organization_id");
        if !organization.is_empty() {
            let name = self
                .organizations
                .get(organization)
                .map_or(Value::Null, |record| json!(text(record, "name")));
            return Some((organization.to_owned(), name));
        }
        let person = text(document, "person_id");
        if !person.is_empty() {
            let name = self.people.get(person).map_or(Value::Null, |record| {
                let full = format!(
                    "{} {}",
                    text(record, "first_name"),
                    text(record, "last_name")
                );
                json!(full.trim())
            });
            return Some((person.to_owned(), name));
        }
        None
    }
}

/// Every invoice (any status) dated between `from` and `to`, by transaction
/// date, then number, then id; amounts converted. `count` is how many there
/// are; `invoices` the page from `offset`, `limit` long (default: the rest).
pub(super) fn list(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let contacts = Contacts::of(snapshot);
    let mut rows = Vec::new();
    for invoice in snapshot.of("invoices") {
        let Some(day) = params.dated(invoice, "transaction_date") else {
            continue;
        };
        let key = (
            day,
            text(invoice, "transaction_number").to_owned(),
            text(invoice, "id").to_owned(),
        );
        let contact = contacts
            .contact(invoice)
            .map_or(Value::Null, |(id, name)| json!({"id": id, "name": name}));
        let row = json!({
            "id": text(invoice, "id"),
            "number": text(invoice, "transaction_number"),
            "type": label(invoice, "type"),
            "status": label(invoice, "status"),
            "contact": contact,
            "transaction_date": day.to_string(),
            "due_date": date(invoice, "due_date").map(|d| d.to_string()),
            "currency": text(invoice, "currency"),
            "total": converted(money, invoice, "total_amount", "currency")?.to_string(),
            "balance": converted(money, invoice, "balance", "currency")?.to_string(),
        });
        rows.push((key, row));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let count = rows.len();
    let invoices: Vec<Value> = rows
        .into_iter()
        .skip(params.offset)
        .take(params.limit.unwrap_or(usize::MAX))
        .map(|(_, row)| row)
        .collect();
    Ok(json!({"count": count, "offset": params.offset, "invoices": invoices}))
}
