//! Exchange rates through the API: only admins of an org the operator allowed
//! may load them; a bad rate refuses the whole request and stores nothing;
//! loaded rates convert widget amounts, and the answer names the rate used.

use mno_e2e::hub_client::{basic_auth, bearer, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[tokio::test]
async fn rates_load_all_or_nothing_for_allowed_admins_and_convert_widgets() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app("rates-owner@example.com", None, &[("invoices", true, true)])
        .await
        .unwrap();
    let owner = bearer(&token);
    let app_auth = basic_auth(&app.key, &app.secret);
    let rates = |auth: String, body: Option<Value>| {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let hub = &hub;
        async move {
            hub.call(method, "/impac/api/v2/rates", Some(&auth), body)
                .await
                .unwrap()
        }
    };
    let eur = json!({"base": "EUR", "quote": "USD", "rate": "1.10", "as_of": "2026-11-01", "source": "ECB"});

    // Not yet allowed by the operator: refused, saying how to allow it.
    let (status, body) = rates(owner.clone(), Some(json!({"rates": [eur]}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("allow-org"));

    mno_impac_projector::rates::allow_org(&platform.running().db, &org)
        .await
        .unwrap();
    // One bad rate: 422 pointing at it, nothing stored.
    let bad =
        json!({"base": "GBP", "quote": "USD", "rate": "-2", "as_of": "2026-11-01", "source": "x"});
    let (status, body) = rates(owner.clone(), Some(json!({"rates": [eur, bad]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/rates/1/rate");
    let (_, listed) = rates(owner.clone(), None).await;
    assert_eq!(listed["rates"], json!([]), "nothing stored: {listed}");
    // An app is not an admin.
    let (status, _) = rates(app_auth.clone(), Some(json!({"rates": [eur]}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = rates(owner.clone(), Some(json!({"rates": [eur]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, listed) = rates(owner.clone(), None).await;
    assert_eq!(listed["rates"].as_array().unwrap().len(), 1, "{listed}");

    // A EUR invoice reported in USD: converted at the loaded rate, which the answer names.
    let (status, written) = hub
        .call(
            Method::POST,
            &format!("/connec/api/v2/{org}/invoices"),
            Some(&app_auth),
            Some(json!({"invoices": {"type": "CUSTOMER", "status": "AUTHORISED", "transaction_date": "2026-11-02",
                "currency": "EUR", "total_amount": "100", "balance": "100"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let path = format!("/impac/api/v2/widgets/accounts/profit_and_loss?org_ids[]={org}&currency=USD&from=2026-01-01&to=2026-12-31");
    let report = mno_harness::wait_for(
        "the invoice in the report",
        std::time::Duration::from_secs(20),
        || async {
            let (status, report) = hub
                .call(Method::GET, &path, Some(&owner), None)
                .await
                .ok()?;
            assert_eq!(status, StatusCode::OK, "{report}");
            (report["content"]["totals"]["revenue"] != "0").then_some(report)
        },
    )
    .await;
    let revenue: Decimal = report["content"]["totals"]["revenue"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(revenue, Decimal::new(110, 0), "{report}");
    assert_eq!(report["rates"][0]["source"], "ECB", "{report}");
}
