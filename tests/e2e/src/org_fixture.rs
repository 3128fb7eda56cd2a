//! An organisation with data in it, for tests that aim requests at real ids:
//! its owner, an app installed with data sharing on, a person record written
//! by that app, a KPI over the org, and a pending invitation to it.

use serde_json::{json, Value};

use crate::hub_client::{App, HubClient};
use crate::TestPlatform;

pub struct OrgFixture {
    pub owner_token: String,
    pub owner_id: String,
    pub org: String,
    pub app: App,
    /// The person record's global id.
    pub record: String,
    pub kpi: String,
    /// A pending invitation of `invitee@example.com` (who has no account) as a member.
    pub invitation: String,
}

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
        OrgFixture {
            invitation,
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
