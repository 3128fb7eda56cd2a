//! `mno up --demo`: a demo organisation with three apps and a year of
//! plausible records, written through the public APIs as any user and app
//! would, and a demo app that keeps writing a change every few seconds so
//! the dashboard's live updates show.
//!
//! Seeding is idempotent per data dir: on a restart the demo user, org and
//! apps are found again (the apps' credentials rotated, since secrets are
//! shown only once) and no second year of records is written.

use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::api::{enc, Api, ApiFailure, Auth};

pub const DEMO_EMAIL: &str = "demo@mno.example";
pub const DEMO_PASSWORD: &str = "mno demo password";
pub const DEMO_ORG: &str = "Demo Co";

#[derive(Debug, thiserror::Error)]
#[error("the demo could not {step}: {failure}")]
pub struct DemoError {
    step: &'static str,
    failure: ApiFailure,
}

fn at(step: &'static str) -> impl FnOnce(ApiFailure) -> DemoError {
    move |failure| DemoError { step, failure }
}

/// An app of the demo and the credentials it writes with.
#[derive(Debug, Clone)]
pub struct DemoApp {
    pub id: String,
    pub name: String,
    pub key: String,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct Demo {
    pub org: String,
    pub apps: Vec<DemoApp>,
    /// Whether this run wrote the year of records (false when an earlier run had).
    pub seeded: bool,
}

/// The demo apps: name, and the collections each shares (read and write).
const APPS: &[(&str, &[&str])] = &[
    (
        "Demo Books",
        &[
            "invoices",
            "payments",
            "accounts",
            "organizations",
            "people",
        ],
    ),
    (
        "Demo CRM",
        &["opportunities", "organizations", "people", "invoices"],
    ),
    ("Demo HR", &["employees"]),
];

const CUSTOMERS: &[&str] = &[
    "Northwind Traders",
    "Blue Harbor Foods",
    "Kestrel Logistics",
    "Summit Dental",
    "Orchard & Vine",
    "Pioneer Robotics",
    "Lumen Studio",
    "Atlas Outdoor",
];
const SUPPLIERS: &[&str] = &["Cloud Hosting Co", "Office Supply Hub", "Metro Power"];
const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
];
const JOBS: &[(&str, &str, i64)] = &[
    ("Ada", "Engineer", 118_000),
    ("Ben", "Engineer", 112_000),
    ("Chloé", "Designer", 96_000),
    ("Dev", "Sales", 84_000),
    ("Emi", "Sales", 81_000),
    ("Femi", "Support", 62_000),
    ("Gus", "Support", 60_000),
    ("Hana", "Finance", 99_000),
    ("Ivo", "Engineer", 121_000),
    ("Jun", "Marketing", 88_000),
    ("Kai", "Operations", 79_000),
    ("Lea", "CEO", 165_000),
];

/// A small deterministic generator: the same demo on every machine.
struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// Create (or find again) the demo user, org and apps; write a year of records once.
pub async fn seed(api: &Api) -> Result<Demo, DemoError> {
    let user = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "name": "Demo User"});
    if let Err(e) = api.post(Auth::Anonymous, "/hub/v1/users", &user).await {
        if e.status != axum::http::StatusCode::CONFLICT {
            return Err(at("create the demo user")(e));
        }
    }
    let session = api
        .post(
            Auth::Anonymous,
            "/hub/v1/sessions",
            &json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}),
        )
        .await
        .map_err(at("sign in as the demo user"))?;
    let token = session["token"].as_str().unwrap_or_default().to_owned();
    let me = Auth::Session(&token);

    let orgs = api
        .get(me, "/hub/v1/orgs")
        .await
        .map_err(at("list the demo user's orgs"))?;
    let existing = orgs["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == DEMO_ORG)
        .and_then(|o| o["id"].as_str().map(str::to_owned));
    let seeded = existing.is_none();
    let org = match existing {
        Some(org) => org,
        None => api
            .post(
                me,
                "/hub/v1/orgs",
                &json!({"name": DEMO_ORG, "currency": "USD", "timezone": "UTC", "country": "US"}),
            )
            .await
            .map_err(at("create the demo org"))?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };

    let catalogue = api
        .get(me, "/hub/v1/apps")
        .await
        .map_err(at("read the app catalogue"))?;
    let mut apps = Vec::new();
    for (name, entities) in APPS {
        let found = catalogue["apps"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == *name);
        let app = match found {
            // Ours from an earlier run (the catalogue is everyone's: only the owner may rotate).
            Some(app) => {
                let id = id_text(&app["id"]);
                match api
                    .post(
                        me,
                        &format!("/hub/v1/apps/{}/credentials/rotate", enc(&id)),
                        &Value::Null,
                    )
                    .await
                {
                    Ok(rotated) => DemoApp {
                        id,
                        name: (*name).into(),
                        key: text(&rotated["credentials"]["key"]),
                        secret: text(&rotated["credentials"]["secret"]),
                    },
                    Err(_) => create_app(api, me, name, entities).await?,
                }
            }
            None => create_app(api, me, name, entities).await?,
        };
        let install = api
            .post(
                me,
                &format!("/hub/v1/orgs/{}/installs", enc(&org)),
                &json!({"app_id": app_id_value(&app.id)}),
            )
            .await;
        if let Err(e) = install {
            if e.status != axum::http::StatusCode::CONFLICT {
                return Err(at("install a demo app")(e));
            }
        }
        apps.push(app);
    }
    if seeded {
        write_year(api, &org, &apps).await?;
    }
    Ok(Demo { org, apps, seeded })
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn id_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// App ids are numbers in the Hub's answers; send one back as it came.
fn app_id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
}

async fn create_app(
    api: &Api,
    me: Auth<'_>,
    name: &str,
    entities: &[&str],
) -> Result<DemoApp, DemoError> {
    let shared: Vec<Value> = entities
        .iter()
        .map(|e| json!({"entity": e, "read": true, "write": true}))
        .collect();
    let app = api
        .post(me, "/hub/v1/apps", &json!({"name": name, "stack": "cloud", "webhook_url": null, "shared_entities": shared}))
        .await
        .map_err(at("create a demo app"))?;
    Ok(DemoApp {
        id: id_text(&app["id"]),
        name: name.into(),
        key: text(&app["credentials"]["key"]),
        secret: text(&app["credentials"]["secret"]),
    })
}

fn money(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

/// Send `ops` as sequential batches of at most 100 as `app`.
async fn batch(api: &Api, app: &DemoApp, ops: Vec<Value>) -> Result<(), DemoError> {
    for chunk in ops.chunks(100) {
        let answer = api
            .post(
                Auth::App {
                    key: &app.key,
                    secret: &app.secret,
                },
                "/connec/batch",
                &json!({"sequential": true, "ops": chunk}),
            )
            .await
            .map_err(at("write the demo records"))?;
        if let Some(bad) = answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["status"].as_u64().is_none_or(|s| s >= 300))
        {
            tracing::warn!(result = %bad, "a demo record was refused");
        }
    }
    Ok(())
}

fn post(org: &str, entity: &str, record: Value) -> Value {
    json!({"method": "post", "url": format!("/api/v2/{org}/{entity}"), "params": { entity: record }})
}

/// Twelve months of invoices, bills and payments, a pipeline, a chart of accounts and a team.
async fn write_year(api: &Api, org: &str, apps: &[DemoApp]) -> Result<(), DemoError> {
    let mut dice = Dice(0x5eed_d3e0_0000_0001);
    let today = Utc::now().date_naive();
    let first_month =
        NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today) - Months::new(11);
    let (books, crm, hr) = (&apps[0], &apps[1], &apps[2]);

    let mut ops = Vec::new();
    for (i, name) in CUSTOMERS.iter().enumerate() {
        ops.push(post(
            org,
            "organizations",
            json!({"id": format!("CUS-{i}"), "name": name, "is_customer": true}),
        ));
    }
    for (i, name) in SUPPLIERS.iter().enumerate() {
        ops.push(post(
            org,
            "organizations",
            json!({"id": format!("SUP-{i}"), "name": name, "is_supplier": true}),
        ));
    }
    for (code, name, class, kind, balance) in [
        ("1000", "Operating account", "ASSET", "BANK", 18_450_000),
        ("1200", "Accounts receivable", "ASSET", "CURRENT", 6_230_000),
        ("1500", "Equipment", "ASSET", "FIXED", 4_100_000),
        (
            "2000",
            "Accounts payable",
            "LIABILITY",
            "CURRENT",
            1_940_000,
        ),
        ("2300", "Bank loan", "LIABILITY", "NON_CURRENT", 5_000_000),
        ("3000", "Owner's equity", "EQUITY", "EQUITY", 21_840_000),
    ] {
        ops.push(post(org, "accounts", json!({"id": format!("ACC-{code}"), "code": code, "name": name, "class": class,
            "type": kind, "status": "ACTIVE", "currency": "USD", "current_balance": money(balance)})));
    }
    let mut number = 1000;
    for m in 0..12u32 {
        let month = first_month + Months::new(m);
        for _ in 0..dice.between(5, 8) {
            number += 1;
            let day = month + chrono::Days::new(dice.between(0, 26) as u64);
            if day > today {
                continue;
            }
            let net = dice.between(80_000, 900_000);
            let tax = net / 10;
            let open = (today - day).num_days() < 75 && dice.between(0, 2) > 0;
            let status = if open { "AUTHORISED" } else { "PAID" };
            let customer = format!("CUS-{}", dice.between(0, CUSTOMERS.len() as i64 - 1));
            ops.push(post(org, "invoices", json!({"id": format!("INV-{number}"), "transaction_number": format!("INV-{number}"),
                "type": "CUSTOMER", "status": status, "transaction_date": day.to_string(),
                "due_date": (day + chrono::Days::new(30)).to_string(), "currency": "USD", "organization_id": customer,
                "total_amount": money(net + tax), "tax_amount": money(tax), "balance": money(if open { net + tax } else { 0 })})));
            if !open {
                ops.push(post(org, "payments", json!({"id": format!("PAY-{number}"), "type": "CUSTOMER", "status": "AUTHORISED",
                    "transaction_date": (day + chrono::Days::new(dice.between(5, 40) as u64)).min(today).to_string(),
                    "currency": "USD", "amount": money(net + tax), "organization_id": customer,
                    "lines": [{"id": "1", "amount": money(net + tax), "invoice_id": format!("INV-{number}")}]})));
            }
        }
        for s in 0..SUPPLIERS.len() {
            number += 1;
            let day = month + chrono::Days::new(dice.between(0, 26) as u64);
            if day > today {
                continue;
            }
            let net = dice.between(150_000, 600_000);
            let open = (today - day).num_days() < 30;
            ops.push(post(org, "invoices", json!({"id": format!("BILL-{number}"), "type": "SUPPLIER",
                "status": if open { "AUTHORISED" } else { "PAID" }, "transaction_date": day.to_string(),
                "due_date": (day + chrono::Days::new(30)).to_string(), "currency": "USD", "organization_id": format!("SUP-{s}"),
                "total_amount": money(net), "tax_amount": "0", "balance": money(if open { net } else { 0 })})));
            if !open {
                ops.push(post(org, "payments", json!({"id": format!("PAYB-{number}"), "type": "SUPPLIER", "status": "AUTHORISED",
                    "transaction_date": (day + chrono::Days::new(20)).min(today).to_string(), "currency": "USD",
                    "amount": money(net), "organization_id": format!("SUP-{s}")})));
            }
        }
    }
    batch(api, books, ops).await?;

    let mut ops = Vec::new();
    for i in 0..16 {
        let stage = STAGES[dice.between(0, STAGES.len() as i64 - 1) as usize];
        ops.push(post(org, "opportunities", json!({"id": format!("OPP-{i}"), "name": format!("{} expansion", CUSTOMERS[i % CUSTOMERS.len()]),
            "sales_stage": stage, "amount": money(dice.between(500_000, 6_000_000)), "currency": "USD",
            "expected_close_date": (today + chrono::Days::new(dice.between(10, 120) as u64)).to_string()})));
    }
    batch(api, crm, ops).await?;

    let mut ops = Vec::new();
    for (i, (first, job, salary)) in JOBS.iter().enumerate() {
        let hired = today - chrono::Days::new(dice.between(30, 1500) as u64);
        ops.push(post(org, "employees", json!({"id": format!("EMP-{i}"), "first_name": first, "last_name": "Example",
            "job_title": job, "status": "ACTIVE", "hired_date": hired.to_string(), "salary": money(salary * 100),
            "salary_currency": "USD", "salary_type": "ANNUAL"})));
    }
    batch(api, hr, ops).await
}

/// Keep the demo alive: every `every`, Demo Books raises a new invoice (so
/// the dashboard's live updates show). Runs until the task is aborted.
pub async fn keep_writing(api: Api, demo: Demo, every: Duration) {
    let books = &demo.apps[0];
    let mut dice = Dice(Utc::now().timestamp_micros() as u64 | 1);
    loop {
        tokio::time::sleep(every).await;
        let today = Utc::now().date_naive();
        let net = dice.between(2_000, 30_000);
        let invoice = json!({"invoices": {"id": format!("LIVE-{}", Utc::now().timestamp_micros()), "type": "CUSTOMER",
            "status": "AUTHORISED", "transaction_date": today.to_string(), "due_date": (today + chrono::Days::new(30)).to_string(),
            "currency": "USD", "organization_id": format!("CUS-{}", dice.between(0, CUSTOMERS.len() as i64 - 1)),
            "total_amount": money(net), "tax_amount": "0", "balance": money(net)}});
        let path = format!("/connec/api/v2/{}/invoices", enc(&demo.org));
        if let Err(e) = api
            .post(
                Auth::App {
                    key: &books.key,
                    secret: &books.secret,
                },
                &path,
                &invoice,
            )
            .await
        {
            tracing::warn!(error = %e, "the demo app could not write its invoice; trying again shortly");
        }
    }
}
