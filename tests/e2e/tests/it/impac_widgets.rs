//! The whole Impac! widget catalogue end to end: a generator writes random
//! accounts, payments, invoices, contacts, opportunities and HR records
//! (creates, updates, deletes, three currencies, documents dated out of
//! order and outside the asked range) through the Connec! write API; the test
//! computes every widget on its own from what it wrote and compares exactly,
//! live and replayed as of a captured sequence.

mod expected;

use std::str::FromStr;

use chrono::NaiveDate;
use mno_e2e::impac_client::{money, ImpacWorld, Lcg};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use expected::{Model, Query};

const ENTITIES: &[&str] = &[
    "accounts",
    "journals",
    "payments",
    "invoices",
    "organizations",
    "people",
    "opportunities",
    "employees",
    "pay_runs",
    "pay_stubs",
    "time_sheets",
    "leave_applications",
];

/// Every decimal string in its normal form (scale is not part of a value).
fn normalize(value: &Value) -> Value {
    match value {
        Value::String(s) => match Decimal::from_str(s) {
            Ok(d) => Value::String(d.normalize().to_string()),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// A day from 2025-12-01 to 2027-01-10 (so some fall outside 2026, the range asked).
fn some_day(rng: &mut Lcg) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 1).unwrap() + chrono::Duration::days(rng.below(406) as i64)
}

fn currency(rng: &mut Lcg) -> &'static str {
    rng.pick(&["USD", "USD", "EUR", "GBP"])
}

fn live_id(rng: &mut Lcg, model: &Model, entity: &str) -> Option<String> {
    let ids: Vec<String> = model.of(entity).into_keys().collect();
    (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize].clone())
}

/// A new record of `entity`, or `None` when what it must refer to does not exist yet.
fn new_record(rng: &mut Lcg, model: &Model, entity: &str, n: u64) -> Option<Value> {
    let amount = |rng: &mut Lcg| money(100 + rng.below(500_000));
    let day = |rng: &mut Lcg| some_day(rng).to_string();
    let mut record = match entity {
        "accounts" => json!({
            "name": format!("Account {n}"),
            "code": format!("A{n}"),
            "class": rng.pick(&["ASSET", "LIABILITY", "EQUITY", "REVENUE", "EXPENSE"]),
            "type": rng.pick(&["BANK", "CURRENT", "FIXED", "SALES", "OVERHEADS"]),
            "status": rng.pick(&["ACTIVE", "ACTIVE", "INACTIVE"]),
            "current_balance": format!("{}{}", if rng.below(5) == 0 { "-" } else { "" }, amount(rng)),
        }),
        "payments" => json!({
            "type": rng.pick(&["CUSTOMER", "SUPPLIER"]),
            "status": rng.pick(&["DRAFT", "AUTHORISED", "AUTHORISED", "VOIDED"]),
            "transaction_date": day(rng),
            "currency": currency(rng),
            "amount": amount(rng),
        }),
        "invoices" => {
            let total = 100 + rng.below(500_000);
            let issued = some_day(rng);
            let mut invoice = json!({
                "type": if rng.below(3) == 0 { "SUPPLIER" } else { "CUSTOMER" },
                "status": rng.pick(&["DRAFT", "AUTHORISED", "AUTHORISED", "SUBMITTED", "PAID", "VOIDED"]),
                "transaction_date": issued.to_string(),
                "due_date": (issued + chrono::Duration::days(rng.below(60) as i64)).to_string(),
                "currency": currency(rng),
                "total_amount": money(total),
                "tax_amount": money(rng.below(total / 5)),
                "balance": money(total - rng.below(total)),
            });
            if rng.below(5) != 0 {
                invoice["transaction_number"] = json!(format!("INV-{}", rng.below(400)));
            }
            match rng.below(10) {
                0..=4 => {
                    if let Some(org) = live_id(rng, model, "organizations") {
                        invoice["organization_id"] = json!(org);
                    }
                }
                5..=7 => {
                    if let Some(person) = live_id(rng, model, "people") {
                        invoice["person_id"] = json!(person);
                    }
                }
                _ => {}
            }
            invoice
        }
        "journals" => {
            let cents = 100 + rng.below(300_000);
            json!({
                "transaction_date": day(rng),
                "currency": currency(rng),
                "status": rng.pick(&["DRAFT", "POSTED", "POSTED", "VOIDED"]),
                "lines": [
                    {"account_id": live_id(rng, model, "accounts")?, "debit": money(cents)},
                    {"account_id": live_id(rng, model, "accounts")?, "credit": money(cents)},
                ],
            })
        }
        "organizations" => json!({"name": format!("Company {n}"), "is_customer": true}),
        "people" => json!({
            "first_name": format!("First{n}"),
            "last_name": "Last",
            "is_lead": rng.below(3) != 0,
            "lead_status": rng.pick(&["NEW", "CONTACTED", "QUALIFIED"]),
        }),
        "opportunities" => json!({
            "name": format!("Deal {n}"),
            "amount": amount(rng),
            "currency": currency(rng),
            "sales_stage": rng.pick(&["Prospecting", "Proposal", "Closed Won"]),
        }),
        "employees" => json!({
            "first_name": format!("Emp{n}"),
            "job_title": rng.pick(&["Engineer", "Engineer", "Sales", "Accountant"]),
            "status": rng.pick(&["ACTIVE", "ACTIVE", "INACTIVE", "TERMINATED"]),
            "hired_date": day(rng),
            "salary": if rng.below(3) == 0 { money(1000 + rng.below(9000)) } else { money(3_000_000 + rng.below(9_000_000)) },
            "salary_currency": currency(rng),
            "salary_type": if rng.below(3) == 0 { "HOURLY" } else { "ANNUAL" },
        }),
        "pay_runs" => json!({
            "status": rng.pick(&["DRAFT", "POSTED", "PAID", "PAID", "VOIDED"]),
            "pay_date": day(rng),
            "currency": currency(rng),
            "total_gross": amount(rng),
            "total_tax": amount(rng),
            "total_deductions": amount(rng),
            "total_net": amount(rng),
        }),
        "pay_stubs" => json!({
            "pay_run_id": live_id(rng, model, "pay_runs")?,
            "employee_id": live_id(rng, model, "employees")?,
            "pay_date": day(rng),
            "gross_pay": amount(rng),
            "net_pay": amount(rng),
        }),
        "time_sheets" => {
            let start = some_day(rng);
            let mut sheet = json!({
                "employee_id": live_id(rng, model, "employees")?,
                "status": rng.pick(&["DRAFT", "SUBMITTED", "APPROVED", "APPROVED", "REJECTED"]),
                "start_date": start.to_string(),
                "total_hours": money(100 + rng.below(4000)),
            });
            if rng.below(2) == 0 {
                let lines: Vec<Value> = (0..1 + rng.below(3))
                    .map(|i| json!({"date": (start + chrono::Duration::days(i as i64 * 3)).to_string(), "hours": money(50 + rng.below(800))}))
                    .collect();
                sheet["lines"] = json!(lines);
            }
            sheet
        }
        "leave_applications" => json!({
            "employee_id": live_id(rng, model, "employees")?,
            "status": rng.pick(&["PENDING", "APPROVED", "APPROVED", "REJECTED"]),
            "start_date": day(rng),
            "hours": money(100 + rng.below(4000)),
        }),
        other => unreachable!("{other}"),
    };
    // Some records leave a grouping field out (reported as UNSPECIFIED).
    let optional = match entity {
        "people" => "lead_status",
        "employees" => "job_title",
        "accounts" => "type",
        _ => "",
    };
    if !optional.is_empty() && rng.below(6) == 0 {
        record.as_object_mut().unwrap().remove(optional);
    }
    if entity == "leave_applications" && rng.below(4) != 0 {
        record["leave_type"] = json!(rng.pick(&["ANNUAL", "SICK", "SICK"]));
    }
    if entity == "accounts" && rng.below(3) != 0 {
        record["currency"] = json!(currency(rng));
    }
    Some(record)
}

/// A change to an existing record of `entity`.
fn patch(rng: &mut Lcg, entity: &str) -> Value {
    let amount = money(100 + rng.below(200_000));
    match entity {
        "accounts" => {
            json!({"current_balance": amount, "status": rng.pick(&["ACTIVE", "INACTIVE"])})
        }
        "payments" => {
            json!({"status": rng.pick(&["DRAFT", "AUTHORISED", "VOIDED"]), "amount": amount})
        }
        "invoices" => {
            json!({"status": rng.pick(&["DRAFT", "AUTHORISED", "PAID", "VOIDED"]), "balance": amount, "transaction_date": some_day(rng).to_string()})
        }
        "journals" => {
            json!({"status": rng.pick(&["POSTED", "VOIDED"]), "transaction_date": some_day(rng).to_string()})
        }
        "organizations" => json!({"name": format!("Renamed {}", rng.below(1000))}),
        "people" => {
            json!({"lead_status": rng.pick(&["CONTACTED", "WON", "LOST"]), "is_lead": rng.below(4) != 0})
        }
        "opportunities" => {
            json!({"sales_stage": rng.pick(&["Proposal", "Closed Lost"]), "amount": amount})
        }
        "employees" => json!({"status": rng.pick(&["ACTIVE", "TERMINATED"]), "salary": amount}),
        "pay_runs" => {
            json!({"status": rng.pick(&["POSTED", "VOIDED"]), "total_net": amount, "pay_date": some_day(rng).to_string()})
        }
        "pay_stubs" => json!({"net_pay": amount}),
        "time_sheets" => {
            json!({"status": rng.pick(&["SUBMITTED", "APPROVED", "REJECTED"]), "total_hours": money(rng.below(4000))})
        }
        "leave_applications" => {
            json!({"status": rng.pick(&["APPROVED", "CANCELLED"]), "hours": money(rng.below(4000))})
        }
        other => unreachable!("{other}"),
    }
}

/// The widget queries checked, each with the parameters the model computes from.
fn queries() -> Vec<(&'static str, Query)> {
    let year = |period: &'static str| Query {
        from: NaiveDate::from_ymd_opt(2026, 1, 1),
        to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        period,
        limit: None,
        offset: 0,
    };
    let mut out: Vec<(&str, Query)> = expected::WIDGETS
        .iter()
        .map(|widget| (*widget, year("MONTHLY")))
        .collect();
    for period in ["DAILY", "WEEKLY", "QUARTERLY", "YEARLY"] {
        for widget in [
            "sales/growth",
            "sales/summary",
            "accounts/cash_summary",
            "hr/timesheets",
            "hr/payroll_summary",
        ] {
            out.push((widget, year(period)));
        }
    }
    out.push((
        "sales/top_customers",
        Query {
            limit: Some(3),
            ..year("MONTHLY")
        },
    ));
    // One page of the list, and a page past its end.
    for (limit, offset) in [(7, 5), (5, 100_000)] {
        out.push((
            "invoices/list",
            Query {
                limit: Some(limit),
                offset,
                ..year("MONTHLY")
            },
        ));
    }
    out.push((
        "accounts/balance_sheet",
        Query {
            to: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            ..year("MONTHLY")
        },
    ));
    out.push((
        "accounts/payable_receivable",
        Query {
            from: None,
            to: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            ..year("WEEKLY")
        },
    ));
    out
}

/// Writes `steps` random changes into `org` (records of `model`, kept up to
/// date); answers the stream sequence of the last write.
async fn generate(
    w: &ImpacWorld,
    org: &str,
    rng: &mut Lcg,
    model: &mut Model,
    steps: std::ops::Range<u64>,
) -> u64 {
    const WEIGHTS: &[(&str, u64)] = &[
        ("accounts", 2),
        ("journals", 2),
        ("payments", 3),
        ("invoices", 5),
        ("organizations", 1),
        ("people", 2),
        ("opportunities", 1),
        ("employees", 2),
        ("pay_runs", 2),
        ("pay_stubs", 3),
        ("time_sheets", 3),
        ("leave_applications", 2),
    ];
    let weight_sum: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut last = 0;
    for step in steps {
        let mut roll = rng.below(weight_sum);
        let entity = WEIGHTS
            .iter()
            .find(|(_, weight)| {
                let hit = roll < *weight;
                roll = roll.saturating_sub(*weight);
                hit
            })
            .unwrap()
            .0;
        let existing = live_id(rng, model, entity);
        let action = rng.below(20);
        last = match existing {
            Some(id) if action < 4 => {
                let changes = patch(rng, entity);
                let (_, seq) = w
                    .write_in(
                        org,
                        Method::PUT,
                        &format!("/{entity}/{id}"),
                        Some(json!({ entity: changes.clone() })),
                    )
                    .await;
                let record = model.entity(entity).get_mut(&id).unwrap();
                for (field, value) in changes.as_object().unwrap() {
                    record[field] = value.clone();
                }
                seq
            }
            Some(id) if action < 6 => {
                let (_, seq) = w
                    .write_in(org, Method::DELETE, &format!("/{entity}/{id}"), None)
                    .await;
                model.entity(entity).remove(&id);
                seq
            }
            _ => {
                let Some(mut record) = new_record(rng, model, entity, step) else {
                    continue; // What it would refer to does not exist yet.
                };
                let (body, seq) = w
                    .write_in(
                        org,
                        Method::POST,
                        &format!("/{entity}"),
                        Some(json!({ entity: record.clone() })),
                    )
                    .await;
                let id = body[entity]["id"].as_str().unwrap().to_owned();
                record["id"] = json!(id);
                model.entity(entity).insert(id, record);
                seq
            }
        };
    }
    last
}

/// Every widget (MONTHLY over 2026) over `orgs`, with `extra` parameters,
/// answers what `model` gives.
async fn assert_every_widget(
    w: &ImpacWorld,
    orgs: &[&str],
    extra: &str,
    model: &Model,
    what: &str,
) {
    for (widget, query) in queries().into_iter().take(expected::WIDGETS.len()) {
        let (status, answer) = w
            .widget_of(orgs, widget, &format!("{}&{extra}", query.url()))
            .await;
        assert_eq!(status, StatusCode::OK, "{widget}: {answer}");
        assert_eq!(
            normalize(&answer["content"]),
            normalize(&expected::content(widget, model, &query)),
            "{what}: {widget}"
        );
    }
}

#[tokio::test]
async fn every_widget_equals_an_independent_computation_live_and_replayed() {
    let mut w = ImpacWorld::start("analyst@example.com", ENTITIES).await;
    for (base, rate) in [("EUR", "1.0850"), ("GBP", "1.2700")] {
        sqlx::query("INSERT INTO impac_rates (base, quote, rate, as_of, source) VALUES ($1, 'USD', $2, '2026-11-01', 'test')")
            .bind(base)
            .bind(rate)
            .execute(&w.platform.running().db)
            .await
            .unwrap();
    }

    let mut rng = Lcg(7);
    let mut model = Model::default();
    let org = w.org.clone();
    let mut last = generate(&w, &org, &mut rng, &mut model, 0..750).await;
    let mut captured = Vec::new();
    for (widget, query) in queries() {
        let (status, answer) = w
            .widget(widget, &format!("{}&min_seq={last}", query.url()))
            .await;
        assert_eq!(status, StatusCode::OK, "{widget}: {answer}");
        captured.push((widget, query, answer));
    }
    let checkpoint = (last, captured, model.clone());
    last = generate(&w, &org, &mut rng, &mut model, 750..1500).await;
    assert!(
        model.of("pay_stubs").len() > 10 && model.of("time_sheets").len() > 10,
        "the generator wrote HR records"
    );

    // Live, once the projection has folded the last write.
    for (widget, query) in queries() {
        let (status, answer) = w
            .widget(widget, &format!("{}&min_seq={last}", query.url()))
            .await;
        assert_eq!(status, StatusCode::OK, "{widget}: {answer}");
        let expected = expected::content(widget, &model, &query);
        assert_ne!(
            expected,
            expected::content(widget, &Model::default(), &query),
            "{widget}: the generated records make a report that is not empty"
        );
        assert_eq!(
            normalize(&answer["content"]),
            normalize(&expected),
            "live {widget} {}",
            query.url()
        );
        if widget == "invoices/list" {
            let used = answer["rates"].as_array().unwrap();
            assert_eq!(used.len(), 2, "the rates used are named: {used:?}");
        }
    }

    // Replayed as of the captured sequence: the live answer then, and the model then.
    let (seq, captured, model_then) = checkpoint;
    for (widget, query, live_then) in captured {
        let expected = expected::content(widget, &model_then, &query);
        assert_eq!(
            normalize(&live_then["content"]),
            normalize(&expected),
            "captured {widget} {}",
            query.url()
        );
        let (status, replayed) = w
            .widget(widget, &format!("{}&as_of={seq}", query.url()))
            .await;
        assert_eq!(status, StatusCode::OK, "{widget}: {replayed}");
        assert_eq!(
            replayed["content"], live_then["content"],
            "replayed {widget}"
        );
    }

    // Restarted: the projection resumes from its checkpoint, counting nothing twice.
    w.platform.restart().await;
    let after = format!("min_seq={last}");
    assert_every_widget(&w, &[&org], &after, &model, "after a restart").await;

    // Several orgs aggregate: a second org of the same owner with records of its own.
    let second = w.add_org("Second Org", "USD").await;
    let mut second_model = Model::default();
    let last = generate(&w, &second, &mut rng, &mut second_model, 1500..1800).await;
    let both = model.merged(&second_model);
    let after = format!("min_seq={last}");
    assert_every_widget(&w, &[&org, &second], &after, &both, "two orgs").await;

    // As of before the first event: every widget is empty, not an error.
    let before = "as_of=2000-01-01";
    assert_every_widget(&w, &[&org], before, &Model::default(), "before the start").await;

    // The CSV export flattens the same content.
    let query = &queries()[0].1;
    let csv = w
        .platform
        .http
        .get(w.platform.url(&format!(
            "/impac/api/v2/widgets/sales/summary.csv?org_ids[]={org}&{}",
            query.url()
        )))
        .header("Authorization", &w.auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let summary = expected::content("sales/summary", &model, query);
    assert!(csv.starts_with("path,value\n"), "{csv}");
    assert!(
        csv.contains(&format!("\ntotals.count,{}\n", summary["totals"]["count"])),
        "{csv}"
    );
}

#[tokio::test]
async fn bad_widget_requests_are_refused_and_each_widget_needs_read_on_what_it_reads() {
    let w = ImpacWorld::start("a@example.com", &["invoices"]).await;
    let catalogue: Value = w
        .platform
        .http
        .get(w.platform.url("/impac/api/v2/widgets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        catalogue["widgets"].as_array().unwrap().len(),
        expected::WIDGETS.len()
    );
    assert_eq!(
        catalogue["reads"]["hr/payroll_summary"],
        json!(["pay_runs", "pay_stubs"]),
        "{catalogue}"
    );
    let (status, body) = w.widget("hr/horoscope", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    for known in expected::WIDGETS {
        assert!(detail.contains(known), "{known} in {detail}");
    }
    for period in ["DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY"] {
        let (status, body) = w.widget("sales/growth", &format!("period={period}")).await;
        assert_eq!(status, StatusCode::OK, "{period}: {body}");
    }
    for (query, parameter) in [
        ("period=FORTNIGHTLY", "period"),
        ("period=weekly", "period"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("to=2026-13-01", "to"),
    ] {
        let (status, body) = w.widget("sales/growth", query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{body}"
        );
    }
    // Invoices alone do not open widgets made of other collections.
    for widget in [
        "invoices/list",
        "sales/top_customers",
        "sales/leads_funnel",
        "accounts/balance",
        "accounts/cash_summary",
        "hr/payroll_summary",
        "hr/leaves_balance",
    ] {
        let (status, body) = w.widget(widget, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{widget}: {body}");
    }
    let (status, body) = w.widget("sales/summary", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
