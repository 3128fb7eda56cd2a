//! Expected HR widgets.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::*;

pub(super) fn salaries(m: &Model) -> Value {
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

pub(super) fn payroll(m: &Model, q: &Query) -> Value {
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

pub(super) fn timesheets(m: &Model, q: &Query) -> Value {
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

pub(super) fn leaves(m: &Model, q: &Query) -> Value {
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

pub(super) fn workforce(m: &Model, q: &Query) -> Value {
    let employees = m.of("employees");
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for e in employees.values() {
        *by_status.entry(s(e, "status").to_owned()).or_default() += 1;
    }
    let hired = employees
        .values()
        .filter(|e| q.day_within(e, "hired_date").is_some())
        .count();
    // On staff at `to`: hired by then, and neither terminated by then nor
    // (without a termination date) marked TERMINATED.
    let headcount = employees
        .values()
        .filter(|e| day(e, "hired_date").is_none_or(|d| d <= q.to))
        .filter(|e| match day(e, "termination_date") {
            Some(d) => d > q.to,
            None => s(e, "status") != "TERMINATED",
        })
        .count();
    json!({"headcount": headcount, "by_status": by_status, "hired": hired})
}
