//! Sign-in and sign-up limits, credential rotation with its overlap, and PATCH routes
//! whose changes reach the IDM check and the HUB stream.

use std::time::Duration;

use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use mno_events::consume::{replay_until_caught_up, ReplayFrom};
use mno_events::proto::HubEvent;
use reqwest::{Method, StatusCode};
use serde_json::json;

mno_harness::on_both_databases!(
    TestPlatform;
    failed_sign_ins_are_limited_per_email_and_per_address,
    accounts_made_from_one_address_are_limited,
    rotated_credentials_overlap_and_patches_reach_the_check_and_the_stream,
);

async fn login_from(
    platform: &TestPlatform,
    email: &str,
    password: &str,
    address: &str,
) -> Result<reqwest::Response> {
    Ok(platform
        .http
        .post(platform.url("/hub/v1/sessions"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?)
}

async fn failed_sign_ins_are_limited_per_email_and_per_address(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;

    // Five wrong passwords for one email, then even the right one waits.
    for _ in 0..5 {
        let r = login_from(
            platform,
            "ann@example.com",
            "wrong password!",
            "198.51.100.1",
        )
        .await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = login_from(platform, "ann@example.com", TEST_PASSWORD, "198.51.100.2").await?;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = limited.json().await?;
    assert_eq!(body["errors"][0]["code"], "rate_limited");

    // Twenty failures from one address across many emails lock that address only.
    hub.signup("bob@example.com", TEST_PASSWORD, "Bob").await?;
    for i in 0..20 {
        let r = login_from(
            platform,
            &format!("guess{i}@example.com"),
            "wrong password!",
            "203.0.113.9",
        )
        .await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let from_attacker =
        login_from(platform, "bob@example.com", TEST_PASSWORD, "203.0.113.9").await?;
    assert_eq!(from_attacker.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(from_attacker.headers().contains_key("retry-after"));
    let from_elsewhere =
        login_from(platform, "bob@example.com", TEST_PASSWORD, "192.0.2.44").await?;
    assert_eq!(from_elsewhere.status(), StatusCode::CREATED);
    Ok(())
}

async fn accounts_made_from_one_address_are_limited(platform: &TestPlatform) -> Result<()> {
    // Twenty accounts from one address are made; the next waits, and is not made.
    for i in 0..20 {
        let made = platform
            .signup_from(&format!("made{i}@example.com"), "203.0.113.50")
            .await;
        assert_eq!(made.status(), StatusCode::CREATED, "account {i}");
    }
    let refused = platform
        .signup_from("one-too-many@example.com", "203.0.113.50")
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await?;
    assert_eq!(body["errors"][0]["code"], "rate_limited", "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("accounts made from this address"),
        "{body}"
    );
    let not_made = login_from(
        platform,
        "one-too-many@example.com",
        TEST_PASSWORD,
        "192.0.2.60",
    )
    .await?;
    assert_eq!(
        not_made.status(),
        StatusCode::UNAUTHORIZED,
        "no account was made"
    );

    // Another address is not affected, and the accounts made sign in.
    let elsewhere = platform
        .signup_from("one-too-many@example.com", "192.0.2.61")
        .await;
    assert_eq!(elsewhere.status(), StatusCode::CREATED);
    let signed_in = login_from(platform, "made0@example.com", TEST_PASSWORD, "192.0.2.62").await?;
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    Ok(())
}

/// The operator sets the limits (`MNO_SIGNUPS_PER_ADDRESS` and the sign-in
/// ones): a platform allowing two accounts per address refuses the third.
/// A leaked secret: rotating with `previous_valid_secs=0` ends the previous
/// credentials at once (the check and every route), not after the overlap.
#[tokio::test]
async fn a_rotation_may_revoke_the_previous_credentials_at_once() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app("owner@example.com", None, &[("invoices", true, false)])
        .await?;
    let auth = bearer(&token);
    let rotate = format!("/hub/v1/apps/{}/credentials/rotate", app.id);
    // A value past the overlap, or not a number, or a misspelled name: 400, nothing rotated.
    for query in [
        "?previous_valid_secs=86401",
        "?previous_valid_secs=soon",
        "?previous_valid=0",
    ] {
        let refused = hub
            .expect(
                StatusCode::BAD_REQUEST,
                Method::POST,
                &format!("{rotate}{query}"),
                Some(&auth),
                None,
            )
            .await?;
        assert!(
            refused["errors"][0]["source"]["parameter"].is_string(),
            "{refused}"
        );
    }
    let old = basic_auth(&app.key, &app.secret);
    hub.expect(
        StatusCode::OK,
        Method::GET,
        &format!("/hub/v1/apps/{}", app.id),
        Some(&old),
        None,
    )
    .await?;

    let rotated = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("{rotate}?previous_valid_secs=0"),
            Some(&auth),
            None,
        )
        .await?;
    let new = basic_auth(
        rotated["credentials"]["key"].as_str().unwrap(),
        rotated["credentials"]["secret"].as_str().unwrap(),
    );
    // The old pair is refused by the next call, whatever a cache held.
    hub.expect(
        StatusCode::UNAUTHORIZED,
        Method::GET,
        &format!("/hub/v1/apps/{}", app.id),
        Some(&old),
        None,
    )
    .await?;
    let decision = hub
        .check(
            json!({"type": "app", "key": app.key, "secret": app.secret}),
            &org,
            Some("invoices"),
            "read",
        )
        .await?;
    assert_eq!(decision["allow"], false, "{decision}");
    let read = platform
        .http
        .get(platform.url(&format!("/connec/api/v2/{org}/invoices")))
        .header("Authorization", &old)
        .send()
        .await?;
    assert_eq!(read.status(), StatusCode::UNAUTHORIZED);
    let read = platform
        .http
        .get(platform.url(&format!("/connec/api/v2/{org}/invoices")))
        .header("Authorization", &new)
        .send()
        .await?;
    assert_eq!(read.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_operator_sets_the_limits() -> Result<()> {
    let platform = TestPlatform::spawn_with(|c| {
        c.signups_per_address = 2;
        c.signin_failures_per_email = 1;
    })
    .await;
    for i in 0..2 {
        let made = platform
            .signup_from(&format!("set{i}@example.com"), "203.0.113.70")
            .await;
        assert_eq!(made.status(), StatusCode::CREATED, "account {i}");
    }
    let third = platform
        .signup_from("set2@example.com", "203.0.113.70")
        .await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);

    // One wrong password, then even the right one waits.
    let wrong = login_from(
        &platform,
        "set0@example.com",
        "wrong password!",
        "192.0.2.70",
    )
    .await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = login_from(&platform, "set0@example.com", TEST_PASSWORD, "192.0.2.71").await?;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

async fn rotated_credentials_overlap_and_patches_reach_the_check_and_the_stream(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app(
            "owner@example.com",
            Some("https://books.example.com/hook"),
            &[("invoices", true, false)],
        )
        .await?;
    let auth = bearer(&token);
    let app_path = format!("/hub/v1/apps/{}", app.id);

    // Rotation: new credentials and signing secret, shown once; the old ones keep working.
    let rotated = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("{app_path}/credentials/rotate"),
            Some(&auth),
            None,
        )
        .await?;
    let new_key = rotated["credentials"]["key"].as_str().unwrap().to_owned();
    let new_secret = rotated["credentials"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_key, app.key);
    assert!(rotated["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert!(rotated["previous_valid_until"].is_string());
    for (key, secret) in [(&app.key, &app.secret), (&new_key, &new_secret)] {
        let d = hub
            .check(
                json!({"type": "app", "key": key, "secret": secret}),
                &org,
                Some("invoices"),
                "read",
            )
            .await?;
        assert_eq!(d["allow"], true, "{d}");
        hub.expect(
            StatusCode::OK,
            Method::GET,
            &app_path,
            Some(&basic_auth(key, secret)),
            None,
        )
        .await?;
    }
    // Valid app credentials on a user's route: 403 (the key is fine, the route is not an app's);
    // wrong ones: 401.
    let refused = hub
        .expect(
            StatusCode::FORBIDDEN,
            Method::GET,
            "/hub/v1/orgs",
            Some(&basic_auth(&new_key, &new_secret)),
            None,
        )
        .await?;
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("sign in as a user"),
        "{refused}"
    );
    hub.expect(
        StatusCode::UNAUTHORIZED,
        Method::GET,
        "/hub/v1/orgs",
        Some(&basic_auth(&new_key, "wrong")),
        None,
    )
    .await?;
    let shown = hub
        .expect(StatusCode::OK, Method::GET, &app_path, Some(&auth), None)
        .await?;
    let keys = shown["credentials"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["key"], new_key.as_str());
    assert!(keys[0]["expires_at"].is_null() && keys[1]["expires_at"].is_string());
    assert!(!shown.to_string().contains(&new_secret));

    // PATCH the app: writing invoices is now shared.
    let new = json!({"type": "app", "key": new_key, "secret": new_secret});
    assert_eq!(
        hub.check(new.clone(), &org, Some("invoices"), "write")
            .await?["allow"],
        false
    );
    let patched = hub
        .expect(StatusCode::OK, Method::PATCH, &app_path, Some(&auth),
            Some(json!({"shared_entities": [{"entity": "invoices", "read": true, "write": true}], "webhook_url": null})))
        .await?;
    assert!(patched["webhook_url"].is_null());
    assert_eq!(
        hub.check(new, &org, Some("invoices"), "write").await?["allow"],
        true
    );

    // PATCH the org.
    let org_path = format!("/hub/v1/orgs/{org}");
    let renamed = hub
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &org_path,
            Some(&auth),
            Some(json!({"name": "Acme Ltd", "currency": "eur"})),
        )
        .await?;
    assert_eq!(
        (renamed["name"].as_str(), renamed["currency"].as_str()),
        (Some("Acme Ltd"), Some("EUR"))
    );
    let shown = hub
        .expect(StatusCode::OK, Method::GET, &org_path, Some(&auth), None)
        .await?;
    assert_eq!(shown["name"], "Acme Ltd");

    // Every change is on the HUB stream, with no secret in any payload.
    let js = platform.running().bus.js.clone();
    let events = mno_harness::wait_for("the org_updated event", Duration::from_secs(10), || {
        let js = js.clone();
        async move {
            let mut events = Vec::new();
            replay_until_caught_up(
                &js,
                "HUB",
                &["hub.>".to_owned()],
                ReplayFrom::Beginning,
                None,
                |m| {
                    events.push(HubEvent::from_bytes(&m.payload).unwrap());
                    true
                },
            )
            .await
            .ok()?;
            events
                .iter()
                .any(|e| e.kind == "org_updated")
                .then_some(events)
        }
    })
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "user_created",
        "org_created",
        "member_added",
        "app_created",
        "install_created",
        "credentials_rotated",
        "app_updated",
        "org_updated",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let org_updated = events.iter().find(|e| e.kind == "org_updated").unwrap();
    assert_eq!(org_updated.org, org);
    assert_eq!(
        org_updated.payload_json()?["changed_fields"],
        json!(["name", "currency"])
    );
    for event in &events {
        let payload = String::from_utf8_lossy(&event.payload);
        for secret in [&app.secret, &app.webhook_secret, &new_secret, &token] {
            assert!(
                !payload.contains(secret.as_str()),
                "{} carries a secret",
                event.kind
            );
        }
    }
    Ok(())
}

/// Without trusted proxies, `X-Forwarded-For` names no one: a client that
/// varies it is still counted at its own address and locked out.
#[tokio::test]
async fn a_forged_forwarded_for_does_not_dodge_the_address_limit() -> Result<()> {
    let platform = TestPlatform::spawn_with(|config| config.trusted_proxies.clear()).await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("cy@example.com", TEST_PASSWORD, "Cy").await?;
    for i in 0..20 {
        let forged = format!("198.18.0.{i}");
        let r = login_from(
            &platform,
            &format!("guess{i}@example.com"),
            "wrong password!",
            &forged,
        )
        .await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let next = login_from(&platform, "cy@example.com", TEST_PASSWORD, "198.18.1.1").await?;
    assert_eq!(
        next.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is the connection's peer, not the forged header"
    );
    Ok(())
}
