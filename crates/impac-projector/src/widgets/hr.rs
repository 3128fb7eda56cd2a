//! HR widgets: workforce, salaries, payroll, time sheets and leave.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::money::{amount, Converter, MissingRate};
use super::{converted, counts, date, label, text, Params};
use crate::records::Snapshot;

/// Headcount (on staff at `to`), every employee record by status, and hired
/// between `from` and `to`.
pub(super) fn workforce_summary(snapshot: &Snapshot, params: &Params) -> Value {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut hired_in_range = 0;
    let mut headcount = 0;
    for employee in snapshot.of("employees") {
        *by_status
            .entry(text(employee, "status").to_owned())
            .or_default() += 1;
        if params.dated(employee, "hired_date").is_some() {
            hired_in_range += 1;
        }
        if on_staff(employee, params.to) {
            headcount += 1;
        }
    }
    json!({"headcount": headcount, "by_status": by_status, "hired": hired_in_range})
}

/// Hired by `day` (or hired on no recorded date) and not gone by then: a
/// termination date on or before it, or, without one, the status TERMINATED.
fn on_staff(employee: &Value, day: NaiveDate) -> bool {
    let hired = date(employee, "hired_date").is_none_or(|hired| hired <= day);
    let gone = match date(employee, "termination_date") {
        Some(left) => left <= day,
        None => text(employee, "status") == "TERMINATED",
    };
    hired && !gone
}

/// Working hours in a year, to annualise hourly salaries (40 h × 52 weeks).
const HOURS_PER_YEAR: u32 = 2080;

/// Employees not terminated, with their annual salary converted: by job
/// title, by status, and in total.
pub(super) fn salaries_summary(
    snapshot: &Snapshot,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut by_title: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    let mut by_status: BTreeMap<String, (u64, Decimal)> = BTreeMap::new();
    for employee in snapshot.of("employees") {
        if text(employee, "status") == "TERMINATED" {
            continue;
        }
        let mut annual = converted(money, employee, "salary", "salary_currency")?;
        if text(employee, "salary_type") == "HOURLY" {
            annual *= Decimal::from(HOURS_PER_YEAR);
        }
        for (groups, key) in [
            (&mut by_title, label(employee, "job_title")),
            (&mut by_status, label(employee, "status")),
        ] {
            let entry = groups.entry(key).or_default();
            entry.0 += 1;
            entry.1 += annual;
        }
    }
    let rows = |groups: &BTreeMap<String, (u64, Decimal)>, key: &str| -> Vec<Value> {
        groups
            .iter()
            .map(|(name, (count, total))| json!({key: name, "count": count, "annual_salaries": total.to_string()}))
            .collect()
    };
    let count: u64 = by_status.values().map(|(count, _)| count).sum();
    let total: Decimal = by_status.values().map(|(_, total)| total).sum();
    Ok(json!({
        "by_job_title": rows(&by_title, "job_title"),
        "by_status": rows(&by_status, "status"),
        "totals": {"count": count, "annual_salaries": total.to_string()},
    }))
}

/// One period of payroll: pay runs, their amounts, and who was paid.
#[derive(Default)]
struct Payroll {
    pay_runs: u64,
    /// gross, tax, deductions, net
    amounts: [Decimal; 4],
    employees: BTreeSet<String>,
}

impl Payroll {
    fn render(&self) -> serde_json::Map<String, Value> {
        let mut row = serde_json::Map::new();
        row.insert("pay_runs".into(), json!(self.pay_runs));
        for (name, value) in ["gross", "tax", "deductions", "net"]
            .iter()
            .zip(&self.amounts)
        {
            row.insert((*name).to_owned(), json!(value.to_string()));
        }
        row.insert("employees_paid".into(), json!(self.employees.len()));
        row
    }
}

/// Pay runs (not drafts, not voided) per period of pay date: their totals
/// converted, and the employees paid (distinct, from the pay stubs of those runs).
pub(super) fn payroll_summary(
    snapshot: &Snapshot,
    params: &Params,
    money: &Converter,
) -> Result<Value, MissingRate> {
    let mut periods: BTreeMap<NaiveDate, Payroll> = BTreeMap::new();
    let mut run_period: BTreeMap<&str, NaiveDate> = BTreeMap::new();
    for run in snapshot.of("pay_runs") {
        let Some(day) = params.dated(run, "pay_date") else {
            continue;
        };
        if !counts(run) {
            continue;
        }
        let start = params.period.start(day);
        let period = periods.entry(start).or_default();
        period.pay_runs += 1;
        for (sum, field) in period.amounts.iter_mut().zip([
            "total_gross",
            "total_tax",
            "total_deductions",
            "total_net",
        ]) {
            *sum += converted(money, run, field, "currency")?;
        }
        run_period.insert(text(run, "id"), start);
    }
    for stub in snapshot.of("pay_stubs") {
        let (run, employee) = (text(stub, "pay_run_id"), text(stub, "employee_id"));
        if let (Some(start), false) = (run_period.get(run), employee.is_empty()) {
            let period = periods.get_mut(start).expect("a run's period exists");
            period.employees.insert(employee.to_owned());
        }
    }
    let mut totals = Payroll::default();
    let rows: Vec<Value> = periods
        .into_iter()
        .map(|(start, period)| {
            totals.pay_runs += period.pay_runs;
            for (sum, value) in totals.amounts.iter_mut().zip(period.amounts) {
                *sum += value;
            }
            totals.employees.extend(period.employees.iter().cloned());
            let mut row = period.render();
            row.insert("period_start".into(), json!(start.to_string()));
            Value::Object(row)
        })
        .collect();
    Ok(json!({"periods": rows, "totals": totals.render()}))
}

/// Hours of `employee_id` rows, sorted by employee.
fn hours_by_employee(hours: &BTreeMap<String, Decimal>) -> Vec<Value> {
    hours
        .iter()
        .map(|(employee, hours)| json!({"employee_id": employee, "hours": hours.to_string()}))
        .collect()
}

/// Hours of submitted and approved time sheets per period and employee: each
/// line by its date, or a sheet without lines by its start date and total.
pub(super) fn timesheets(snapshot: &Snapshot, params: &Params) -> Value {
    let mut periods: BTreeMap<NaiveDate, BTreeMap<String, Decimal>> = BTreeMap::new();
    let mut employees: BTreeMap<String, Decimal> = BTreeMap::new();
    for sheet in snapshot.of("time_sheets") {
        if !matches!(text(sheet, "status"), "SUBMITTED" | "APPROVED") {
            continue;
        }
        let employee = label(sheet, "employee_id");
        let entries: Vec<(Option<NaiveDate>, Decimal)> =
            match sheet.get("lines").and_then(Value::as_array) {
                Some(lines) if !lines.is_empty() => lines
                    .iter()
                    .map(|line| (date(line, "date"), amount(line, "hours")))
                    .collect(),
                _ => vec![(date(sheet, "start_date"), amount(sheet, "total_hours"))],
            };
        for (day, hours) in entries {
            let Some(day) = day.filter(|day| params.covers(*day)) else {
                continue;
            };
            *periods
                .entry(params.period.start(day))
                .or_default()
                .entry(employee.clone())
                .or_default() += hours;
            *employees.entry(employee.clone()).or_default() += hours;
        }
    }
    let rows: Vec<Value> = periods
        .iter()
        .map(|(start, hours)| {
            json!({"period_start": start.to_string(), "hours": hours.values().sum::<Decimal>().to_string(), "employees": hours_by_employee(hours)})
        })
        .collect();
    json!({
        "periods": rows,
        "employees": hours_by_employee(&employees),
        "total_hours": employees.values().sum::<Decimal>().to_string(),
    })
}

/// Hours and number of leaves.
type Taken = BTreeMap<String, (u64, Decimal)>;

fn taken_rows(taken: &Taken) -> Vec<Value> {
    taken
        .iter()
        .map(|(leave_type, (count, hours))| json!({"leave_type": leave_type, "count": count, "hours": hours.to_string()}))
        .collect()
}

/// Leave taken: approved leave applications starting between `from` and
/// `to`, per employee and leave type, and per type overall.
pub(super) fn leaves_balance(snapshot: &Snapshot, params: &Params) -> Value {
    let mut employees: BTreeMap<String, Taken> = BTreeMap::new();
    let mut by_type: Taken = BTreeMap::new();
    for leave in snapshot.of("leave_applications") {
        if text(leave, "status") != "APPROVED" || params.dated(leave, "start_date").is_none() {
            continue;
        }
        let hours = amount(leave, "hours");
        let leave_type = label(leave, "leave_type");
        for entry in [
            employees
                .entry(label(leave, "employee_id"))
                .or_default()
                .entry(leave_type.clone())
                .or_default(),
            by_type.entry(leave_type).or_default(),
        ] {
            entry.0 += 1;
            entry.1 += hours;
        }
    }
    let rows: Vec<Value> = employees
        .iter()
        .map(|(employee, taken)| {
            let hours: Decimal = taken.values().map(|(_, hours)| hours).sum();
            json!({"employee_id": employee, "hours": hours.to_string(), "types": taken_rows(taken)})
        })
        .collect();
    let total: Decimal = by_type.values().map(|(_, hours)| hours).sum();
    json!({"employees": rows, "by_type": taken_rows(&by_type), "total_hours": total.to_string()})
}

#[cfg(test)]
mod tests {
    use super::super::Period;
    use super::*;

    fn params(period: Period) -> Params {
        Params {
            from: NaiveDate::from_ymd_opt(2026, 1, 1),
            to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            period,
            limit: None,
            offset: 0,
        }
    }

    #[test]
    fn time_sheet_lines_count_on_their_dates_and_sheets_without_lines_on_their_start() {
        let mut snapshot = Snapshot::default();
        snapshot.by_entity.insert(
            "time_sheets".into(),
            vec![
                json!({"employee_id": "e1", "status": "APPROVED", "start_date": "2026-03-30", "total_hours": "99",
                       "lines": [{"date": "2026-03-31", "hours": "8"}, {"date": "2026-04-01", "hours": "7.5"}]}),
                json!({"employee_id": "e2", "status": "SUBMITTED", "start_date": "2026-04-02", "total_hours": "4"}),
                json!({"employee_id": "e2", "status": "DRAFT", "start_date": "2026-04-02", "total_hours": "40"}),
                json!({"employee_id": "e2", "status": "APPROVED", "start_date": "2025-12-31", "total_hours": "40"}),
            ],
        );
        let monthly = timesheets(&snapshot, &params(Period::Monthly));
        assert_eq!(monthly["total_hours"], "19.5");
        assert_eq!(monthly["periods"][0]["period_start"], "2026-03-01");
        assert_eq!(monthly["periods"][0]["hours"], "8");
        assert_eq!(monthly["periods"][1]["hours"], "11.5");
        // One ISO week (Monday 30 March) holds all of it.
        let weekly = timesheets(&snapshot, &params(Period::Weekly));
        assert_eq!(weekly["periods"].as_array().unwrap().len(), 1);
        assert_eq!(weekly["periods"][0]["period_start"], "2026-03-30");
        assert_eq!(
            weekly["employees"][1],
            json!({"employee_id": "e2", "hours": "4"})
        );
    }

    #[test]
    fn payroll_counts_the_employees_of_the_stubs_of_counted_runs() {
        let mut snapshot = Snapshot::default();
        snapshot.by_entity.insert(
            "pay_runs".into(),
            vec![
                json!({"id": "r1", "status": "PAID", "pay_date": "2026-02-27", "total_gross": "100", "total_net": "70", "total_tax": "30"}),
                json!({"id": "r2", "status": "VOIDED", "pay_date": "2026-02-27", "total_gross": "999"}),
            ],
        );
        snapshot.by_entity.insert(
            "pay_stubs".into(),
            vec![
                json!({"pay_run_id": "r1", "employee_id": "e1"}),
                json!({"pay_run_id": "r1", "employee_id": "e1"}),
                json!({"pay_run_id": "r1", "employee_id": "e2"}),
                json!({"pay_run_id": "r2", "employee_id": "e3"}),
            ],
        );
        let money = Converter::new("USD", Default::default());
        let payroll = payroll_summary(&snapshot, &params(Period::Monthly), &money).unwrap();
        assert_eq!(
            payroll["totals"],
            json!({"pay_runs": 1, "gross": "100", "tax": "30", "deductions": "0", "net": "70", "employees_paid": 2})
        );
    }
}
