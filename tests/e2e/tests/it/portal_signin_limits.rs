//! The portal signs visitors in through the Hub's API from loopback. The
//! Hub's sign-in limits must still count each visitor at their own address:
//! one visitor's failed guesses lock that visitor out, not everyone who signs
//! in through the portal. And only the portal (its key) may name a visitor.

use anyhow::Result;
use mno_e2e::browser::{hidden_fields, Browser, Page};
use mno_e2e::hub_client::{HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::StatusCode;
use serde_json::json;

/// Sign in through the portal's form as a visitor at `address` (the test
/// acts as the trusted proxy in front of the edge that names it).
async fn portal_sign_in(
    platform: &TestPlatform,
    address: &str,
    email: &str,
    password: &str,
) -> Result<Page> {
    let mut browser = Browser::new();
    let form = browser
        .send(
            browser
                .http
                .get(platform.url("/signin"))
                .header("x-forwarded-for", address),
        )
        .await?;
    let mut fields = hidden_fields(&form.text);
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), password.into()));
    browser
        .send(
            browser
                .http
                .post(platform.url("/signin"))
                .header("x-forwarded-for", address)
                .form(&fields),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_visitors_failed_sign_ins_do_not_lock_out_the_others() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;

    // A guesser at one address spends the per-address allowance (20)...
    for i in 0..20 {
        let page = portal_sign_in(
            &platform,
            "198.18.0.7",
            &format!("guess{i}@example.com"),
            "wrong password!",
        )
        .await?;
        assert!(
            page.text.contains("the email or password is wrong"),
            "attempt {i}: {}",
            page.text
        );
    }
    // A lock answers as the Hub does (it answered 200, the form again): 429
    // with Retry-After, and a page saying when to try again.
    let locked = portal_sign_in(&platform, "198.18.0.7", "ann@example.com", TEST_PASSWORD).await?;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.text
    );
    let seconds: u64 = locked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", locked.headers));
    assert!(seconds > 0);
    assert!(
        locked.text.contains("Too many failed sign-ins")
            && locked.text.contains("Try again in ")
            && locked.text.contains(" UTC)"),
        "{}",
        locked.text
    );
    assert!(!locked.text.contains("Retry-After"), "{}", locked.text);

    // ...and Ann, at her own address, signs in through the same portal.
    let ann = portal_sign_in(&platform, "198.18.9.9", "ann@example.com", TEST_PASSWORD).await?;
    assert_eq!(ann.status, StatusCode::SEE_OTHER, "{}", ann.text);
    Ok(())
}

/// Naming a visitor takes the portal's key: a client that sends the headers
/// with a key of its own is counted at its own address.
#[tokio::test]
async fn a_client_without_the_portals_key_cannot_name_a_visitor() -> Result<()> {
    let platform = TestPlatform::spawn_with(|config| config.trusted_proxies.clear()).await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("cy@example.com", TEST_PASSWORD, "Cy").await?;
    let sign_in = |i: u32, email: &str, password: &str| {
        platform
            .http
            .post(platform.url("/hub/v1/sessions"))
            .header("x-mno-frontend-key", "a guess at the key")
            .header("x-mno-visitor-peer", format!("198.18.1.{i}"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for i in 0..20 {
        let r = sign_in(i, &format!("guess{i}@example.com"), "wrong password!").await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let next = sign_in(99, "cy@example.com", TEST_PASSWORD).await?;
    assert_eq!(next.status(), StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}
