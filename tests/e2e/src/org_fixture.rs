//! An organisation with data in it, for tests that aim requests at real ids:
//! its owner, an app installed with data sharing on, a person record written
//! by that app, a KPI and a dashboard over the org, a pending invitation to
//! it, and the app's bills to it: one invoiced (so the org has an invoice)
//! and a recurring one.

use clap::Parser;
use serde_json::{json, Value};

use crate::hub_client::{App, HubClient};
use crate::TestPlatform;

pub struct OrgFixture {
    pub owner_email: String,
    pub owner_token: String,
    pub owner_id: String,
    pub org: String,
    pub app: App,
    /// The person record's global id.
    pub record: String,
    pub kpi: String,
    /// A pending invitation of `invitee@example.com` (who has no account) as a member.
    pub invitation: String,
    /// The owner's dashboard over the org.
    pub dashboard: String,
    /// The app's bill to the org, invoiced by a billing run of [`BILLED_PERIOD`].
    pub bill: String,
    /// The app's recurring bill to the org (its cycles start after the period billed).
    pub recurring_bill: String,
    /// The org's invoice of [`BILLED_PERIOD`].
    pub invoice: String,
}

/// The month the fixture's billing run invoices.
pub const BILLED_PERIOD: &str = "2026-01";

/// Send a request and read its answer as JSON.
pub async fn json_answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

impl OrgFixture {
    /// `person`: the fields of the person record (wrapped and sent by the app).
    pub async fn create(
        platform: &TestPlatform,
        owner_email: &str,
        shared_entities: &[(&str, bool, bool)],
        person: Value,
    ) -> OrgFixture {
        let hub = HubClient::new(&platform.base_url);
        let (owner_token, org, app) = hub
            .org_with_app(owner_email, None, shared_entities)
            .await
            .unwrap();
        let http = &platform.http;
        let me = json_answer(
            http.get(platform.url("/hub/v1/users/me"))
                .bearer_auth(&owner_token),
        )
        .await;
        let created = json_answer(
            http.post(platform.url(&format!("/connec/api/v2/{org}/people")))
                .basic_auth(&app.key, Some(&app.secret))
                .json(&json!({ "people": person })),
        )
        .await;
        let kpi = json_answer(
            http.post(platform.url("/impac/api/v2/kpis"))
                .bearer_auth(&owner_token)
                .json(&json!({"org_ids": [org], "widget": "accounts/profit_and_loss",
                    "element": "totals.revenue", "target": {"max": "1000"}, "alert": {"inapp": true}})),
        )
        .await;
        let invitation = hub
            .invite(&owner_token, &org, "invitee@example.com", "member")
            .await
            .unwrap();
        let dashboard = json_answer(
            http.post(platform.url("/impac/api/v2/dashboards"))
                .bearer_auth(&owner_token)
                .json(&json!({"org_ids": [org], "name": "Finance",
                    "widgets": [{"widget": "accounts/profit_and_loss"}]})),
        )
        .await;
        let bill = json_answer(
            http.post(platform.url("/hub/v1/bills"))
                .basic_auth(&app.key, Some(&app.secret))
                .json(&json!({"org": org, "price_cents": 1050, "currency": "USD",
                    "description": "3 seats", "units": 3,
                    "period_ended_at": format!("{BILLED_PERIOD}-28T00:00:00Z")})),
        )
        .await;
        let recurring = json_answer(
            http.post(platform.url("/hub/v1/recurring_bills"))
                .basic_auth(&app.key, Some(&app.secret))
                .json(&json!({"org": org, "price_cents": 2000, "currency": "USD",
                    "description": "Plan", "period": "month", "start_date": "2099-01-01"})),
        )
        .await;
        billing_run(platform, BILLED_PERIOD).await;
        OrgFixture {
            owner_email: owner_email.to_owned(),
            invitation,
            dashboard: id_of(&dashboard, "a dashboard"),
            bill: id_of(&bill, "a bill"),
            recurring_bill: id_of(&recurring, "a recurring bill"),
            invoice: format!("inv-{org}-{BILLED_PERIOD}-USD"),
            owner_id: me["id"].as_str().expect("the owner's id").to_owned(),
            record: created["people"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a person record: {created}"))
                .to_owned(),
            kpi: kpi["kpi"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a KPI: {kpi}"))
                .to_owned(),
            owner_token,
            org,
            app,
        }
    }
}

fn id_of(answer: &Value, what: &str) -> String {
    answer["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {answer}"))
        .to_owned()
}

/// `mno billing run --period <period>` against the platform's bus and database,
/// as an operator runs it.
async fn billing_run(platform: &TestPlatform, period: &str) {
    let url = platform.nats.url();
    let dir = platform.data_dir.path().to_str().unwrap().to_owned();
    let mut argv = vec!["mno", "billing", "run", "--period", period];
    argv.extend_from_slice(&["--nats-url", &url, "--data-dir", &dir]);
    if let Some(database) = &platform.config.database_url {
        argv.extend_from_slice(&["--database-url", database]);
    }
    mno_gateway::cli::Cli::try_parse_from(argv)
        .expect("the billing run's arguments")
        .run()
        .await
        .expect("the billing run");
}
