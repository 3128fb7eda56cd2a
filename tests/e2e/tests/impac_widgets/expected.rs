//! What each widget should answer, computed by the test from the records it
//! wrote, on its own (no code of the projector is used): the documented
//! meaning of each widget written out again.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

pub const WIDGETS: &[&str] = &[
    "accounts/balance",
    "accounts/balance_sheet",
    "accounts/cash_summary",
    "accounts/expenses_revenue",
    "accounts/payable_receivable",
    "accounts/profit_and_loss",
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
    pub limit: usize,
}

impl Query {
    pub fn url(&self) -> String {
        let from = self.from.map_or(String::new(), |f| format!("&from={f}"));
        format!(
            "currency=USD&to={}&period={}&limit={}{from}",
            self.to, self.period, self.limit
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

fn active_accounts(m: &Model) -> Vec<Value> {
    m.of("accounts")
        .into_values()
        .filter(|a| s(a, "status") != "INACTIVE")
        .collect()
}

fn grouped_balances(accounts: &[&Value]) -> Vec<Value> {
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

fn balance(m: &Model) -> Value {
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

fn balance_sheet(m: &Model, q: &Query) -> Value {
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
fn two_sided(
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

fn payable_receivable(m: &Model, q: &Query) -> Value {
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
fn contact(m: &Model, doc: &Value) -> Option<(String, Value)> {
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

fn invoice_list(m: &Model, q: &Query) -> Value {
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
    json!({"count": rows.len(), "invoices": rows.into_iter().map(|r| r.3).collect::<Vec<_>>()})
}

fn invoice_summary(m: &Model) -> Value {
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

/// Counted customer invoices dated within the query.
fn sales(m: &Model, q: &Query) -> Vec<(NaiveDate, Value)> {
    m.of("invoices")
        .into_values()
        .filter(|i| counted(i) && !supplier(i))
        .filter_map(|i| Some((q.day_within(&i, "transaction_date")?, i)))
        .collect()
}

fn sales_summary(m: &Model, q: &Query) -> Value {
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

fn growth(m: &Model, q: &Query) -> Value {
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
                Some(before) if before != Decimal::ZERO => text(
                    ((amount - before) / before)
                        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero),
                ),
                _ => Value::Null,
            };
            previous = Some(amount);
            json!({"period_start": p.to_string(), "amount": text(amount), "change": change})
        })
        .collect();
    json!({ "periods": rows })
}

fn top_customers(m: &Model, q: &Query) -> Value {
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
        .take(q.limit)
        .map(|(id, (name, n, amount))| json!({"id": id, "name": name, "invoices": n, "amount": text(amount)}))
        .collect();
    json!({ "customers": rows })
}

fn leads_funnel(m: &Model) -> Value {
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

fn opportunities_funnel(m: &Model) -> Value {
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

fn salaries(m: &Model) -> Value {
    let employees: Vec<Value> = m
        .of("employees")
        .into_values()
        .filter(|e| s(e, "status") != "TERMINATED")
        .collect();
    let annual = |e: &Value| {
        let salary = usd(e, "salary", "salary_currency");
        if s(e, "salary_type") == "HOURLY" {
            salary * Decimal::from(40 * 52)
        } else {
            salary
        }
    };
    let group = |field: &str| -> Vec<Value> {
        let keys: BTreeSet<String> = employees
            .iter()
            .map(|e| or_unspecified(s(e, field)))
            .collect();
        keys.into_iter()
            .map(|k| {
                let mine: Vec<&Value> = employees
                    .iter()
                    .filter(|e| or_unspecified(s(e, field)) == k)
                    .collect();
                let total: Decimal = mine.iter().map(|e| annual(e)).sum();
                json!({field: k, "count": mine.len(), "annual_salaries": text(total)})
            })
            .collect()
    };
    let total: Decimal = employees.iter().map(annual).sum();
    json!({
        "by_job_title": group("job_title"),
        "by_status": group("status"),
        "totals": {"count": employees.len(), "annual_salaries": text(total)},
    })
}

fn payroll(m: &Model, q: &Query) -> Value {
    let runs: BTreeMap<String, (NaiveDate, Value)> = m
        .of("pay_runs")
        .into_iter()
        .filter(|(_, r)| counted(r))
        .filter_map(|(id, r)| Some((id, (q.bucket(q.day_within(&r, "pay_date")?), r))))
        .collect();
    let stubs = m.of("pay_stubs");
    let row = |mine: Vec<&Value>, ids: BTreeSet<&str>| {
        let sum = |field: &str| text(mine.iter().map(|r| usd(r, field, "currency")).sum());
        let paid: BTreeSet<&str> = stubs
            .values()
            .filter(|st| ids.contains(s(st, "pay_run_id")))
            .map(|st| s(st, "employee_id"))
            .collect();
        json!({
            "pay_runs": mine.len(),
            "gross": sum("total_gross"),
            "tax": sum("total_tax"),
            "deductions": sum("total_deductions"),
            "net": sum("total_net"),
            "employees_paid": paid.len(),
        })
    };
    let starts: BTreeSet<NaiveDate> = runs.values().map(|(p, _)| *p).collect();
    let rows: Vec<Value> = starts
        .into_iter()
        .map(|p| {
            let in_period: Vec<(&String, &Value)> = runs
                .iter()
                .filter(|(_, (start, _))| *start == p)
                .map(|(id, (_, r))| (id, r))
                .collect();
            let mut r = row(
                in_period.iter().map(|(_, r)| *r).collect(),
                in_period.iter().map(|(id, _)| id.as_str()).collect(),
            );
            r["period_start"] = json!(p.to_string());
            r
        })
        .collect();
    let totals = row(
        runs.values().map(|(_, r)| r).collect(),
        runs.keys().map(String::as_str).collect(),
    );
    json!({"periods": rows, "totals": totals})
}

fn timesheets(m: &Model, q: &Query) -> Value {
    let mut entries: Vec<(NaiveDate, String, Decimal)> = Vec::new();
    for sheet in m.of("time_sheets").values() {
        if s(sheet, "status") != "SUBMITTED" && s(sheet, "status") != "APPROVED" {
            continue;
        }
        let employee = s(sheet, "employee_id").to_owned();
        match sheet["lines"].as_array() {
            Some(lines) if !lines.is_empty() => {
                for line in lines {
                    entries.push((
                        day(line, "date").unwrap(),
                        employee.clone(),
                        dec(line, "hours"),
                    ));
                }
            }
            _ => entries.push((
                day(sheet, "start_date").unwrap(),
                employee,
                dec(sheet, "total_hours"),
            )),
        }
    }
    entries.retain(|(d, _, _)| q.within(*d));
    let per_employee = |rows: &[&(NaiveDate, String, Decimal)]| -> Vec<Value> {
        let mut hours: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (_, e, h) in rows {
            *hours.entry(e).or_default() += *h;
        }
        hours
            .into_iter()
            .map(|(e, h)| json!({"employee_id": e, "hours": text(h)}))
            .collect()
    };
    let starts: BTreeSet<NaiveDate> = entries.iter().map(|(d, _, _)| q.bucket(*d)).collect();
    let periods: Vec<Value> = starts
        .into_iter()
        .map(|p| {
            let mine: Vec<&(NaiveDate, String, Decimal)> =
                entries.iter().filter(|(d, _, _)| q.bucket(*d) == p).collect();
            let hours: Decimal = mine.iter().map(|(_, _, h)| *h).sum();
            json!({"period_start": p.to_string(), "hours": text(hours), "employees": per_employee(&mine)})
        })
        .collect();
    let all: Vec<&(NaiveDate, String, Decimal)> = entries.iter().collect();
    let total: Decimal = entries.iter().map(|(_, _, h)| *h).sum();
    json!({"periods": periods, "employees": per_employee(&all), "total_hours": text(total)})
}

fn leaves(m: &Model, q: &Query) -> Value {
    let taken: Vec<Value> = m
        .of("leave_applications")
        .into_values()
        .filter(|l| s(l, "status") == "APPROVED" && q.day_within(l, "start_date").is_some())
        .collect();
    let by_type = |mine: &[&Value]| -> Vec<Value> {
        let types: BTreeSet<String> = mine
            .iter()
            .map(|l| or_unspecified(s(l, "leave_type")))
            .collect();
        types
            .into_iter()
            .map(|t| {
                let of_type: Vec<&&Value> = mine
                    .iter()
                    .filter(|l| or_unspecified(s(l, "leave_type")) == t)
                    .collect();
                let hours: Decimal = of_type.iter().map(|l| dec(l, "hours")).sum();
                json!({"leave_type": t, "count": of_type.len(), "hours": text(hours)})
            })
            .collect()
    };
    let employees: BTreeSet<&str> = taken.iter().map(|l| s(l, "employee_id")).collect();
    let rows: Vec<Value> = employees
        .into_iter()
        .map(|e| {
            let mine: Vec<&Value> = taken.iter().filter(|l| s(l, "employee_id") == e).collect();
            let hours: Decimal = mine.iter().map(|l| dec(l, "hours")).sum();
            json!({"employee_id": e, "hours": text(hours), "types": by_type(&mine)})
        })
        .collect();
    let all: Vec<&Value> = taken.iter().collect();
    let total: Decimal = taken.iter().map(|l| dec(l, "hours")).sum();
    json!({"employees": rows, "by_type": by_type(&all), "total_hours": text(total)})
}

fn workforce(m: &Model, q: &Query) -> Value {
    let employees = m.of("employees");
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for e in employees.values() {
        *by_status.entry(s(e, "status").to_owned()).or_default() += 1;
    }
    let hired = employees
        .values()
        .filter(|e| q.day_within(e, "hired_date").is_some())
        .count();
    json!({"headcount": employees.len(), "by_status": by_status, "hired": hired})
}
