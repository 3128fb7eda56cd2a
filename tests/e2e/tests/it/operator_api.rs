//! `GET /operator/v1/bus` is for the accounts that held an email listed in
//! `MNO_OPERATORS` when the list was bound: emails are not verified, so an
//! account signed up later under a listed address is no operator.

use mno_e2e::hub_client::HubClient;
use mno_e2e::TestPlatform;
use reqwest::StatusCode;
use serde_json::Value;

async fn bus(platform: &TestPlatform, token: &str) -> (StatusCode, Value) {
    let response = platform
        .http
        .get(platform.url("/operator/v1/bus"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_accounts_bound_at_start_are_operators() {
    let platform = TestPlatform::spawn_with(|config| {
        config.operators = vec!["Ops@Example.com".into(), "late@example.com".into()];
        // Bound by the test, as `mno up --demo` binds once its demo user exists.
        config.bind_operators_once_up = true;
    })
    .await;
    let hub = HubClient::new(&platform.base_url);
    let (_, ops) = hub.signup_and_login("ops@example.com").await.unwrap();

    // Not bound yet: the platform is still starting.
    let (status, body) = bus(&platform, &ops).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    // A listed address nobody holds is refused, naming it; nothing is bound.
    let error = platform.running().bind_operators().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("late@example.com") && !message.contains("ops@example.com"),
        "{message}"
    );
    assert_eq!(
        bus(&platform, &ops).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Once every listed address has its account, the list binds to them.
    let (_, late) = hub.signup_and_login("late@example.com").await.unwrap();
    platform.running().bind_operators().await.unwrap();
    let (status, body) = bus(&platform, &ops).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["streams"].is_array(), "{body}");
    assert_eq!(bus(&platform, &late).await.0, StatusCode::OK);

    // Anyone else: 403, and without a session 401.
    let (_, customer) = hub.signup_and_login("customer@example.com").await.unwrap();
    let (status, body) = bus(&platform, &customer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        bus(&platform, "no-such-token").await.0,
        StatusCode::UNAUTHORIZED
    );
}
