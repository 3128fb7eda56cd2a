//! A revocation is in force once the call that made it returns: after a
//! sign-out, a member removed, a role lowered or an uninstall answers, the next
//! request through Connec! (whose IDM decisions are cached) is refused, never
//! served. Each kind is tried many times, with the cache warmed by an allowed
//! request just before the revoking call.

use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

const TRIALS: usize = 25;

/// `GET` (or, with a body, `POST`) on the org's invoices: the answer's status.
async fn invoices(platform: &TestPlatform, org: &str, auth: &str, write: bool) -> StatusCode {
    let url = platform.url(&format!("/connec/api/v2/{org}/invoices"));
    let request = if write {
        platform.http.post(url).json(&json!({"invoices": {"type": "CUSTOMER",
            "transaction_date": "2026-03-01", "currency": "USD", "total_amount": "1", "balance": "1"}}))
    } else {
        platform.http.get(url)
    };
    request
        .header("Authorization", auth)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn no_request_is_served_after_a_revoking_call_returns() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (owner, org, app) = hub
        .org_with_app("owner@example.com", None, &[("invoices", true, true)])
        .await?;
    let app_auth = basic_auth(&app.key, &app.secret);
    let (bob, bob_token) = hub.signup_and_login("bob@example.com").await?;
    let bob_auth = bearer(&bob_token);
    let member_path = format!("/hub/v1/orgs/{org}/members/{}", bob.id);

    for trial in 0..TRIALS {
        // A member removed.
        hub.add_member(&owner, &org, "bob@example.com", "power_user", &bob_token)
            .await?;
        assert_eq!(
            invoices(&platform, &org, &bob_auth, false).await,
            StatusCode::OK
        );
        hub.remove_member(&owner, &org, &bob.id).await?;
        let after = invoices(&platform, &org, &bob_auth, false).await;
        assert_eq!(
            after,
            StatusCode::FORBIDDEN,
            "trial {trial}: read after removal"
        );

        // A role lowered: the write it allowed is refused at once.
        hub.add_member(&owner, &org, "bob@example.com", "power_user", &bob_token)
            .await?;
        assert_eq!(
            invoices(&platform, &org, &bob_auth, true).await,
            StatusCode::CREATED
        );
        hub.expect(
            StatusCode::OK,
            Method::PATCH,
            &member_path,
            Some(&bearer(&owner)),
            Some(json!({"role": "member"})),
        )
        .await?;
        let after = invoices(&platform, &org, &bob_auth, true).await;
        assert_eq!(
            after,
            StatusCode::FORBIDDEN,
            "trial {trial}: write after demotion"
        );
        hub.remove_member(&owner, &org, &bob.id).await?;

        // An uninstall.
        assert_eq!(
            invoices(&platform, &org, &app_auth, false).await,
            StatusCode::OK
        );
        hub.uninstall(&owner, &org, &app.id).await?;
        let after = invoices(&platform, &org, &app_auth, false).await;
        assert_eq!(
            after,
            StatusCode::FORBIDDEN,
            "trial {trial}: read after uninstall"
        );
        hub.install(&owner, &org, &app.id).await?;

        // A sign-out.
        let token = hub
            .login("owner@example.com", mno_e2e::hub_client::TEST_PASSWORD)
            .await?;
        let auth = bearer(&token);
        assert_eq!(
            invoices(&platform, &org, &auth, false).await,
            StatusCode::OK
        );
        hub.logout(&token).await?;
        let after = invoices(&platform, &org, &auth, false).await;
        assert_eq!(
            after,
            StatusCode::UNAUTHORIZED,
            "trial {trial}: read after sign-out"
        );
    }
    Ok(())
}
