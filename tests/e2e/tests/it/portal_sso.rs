//! The portal and the Hub's sign-in page (single sign-on) share the browser's
//! Hub session: a user who signed in through an app's "sign in with Mno" is
//! signed in at the portal, one signed in at the portal is not asked again by
//! an app, and signing out of the portal ends the app's session too; so do a
//! password changed elsewhere and signing out everywhere from the account page.

use anyhow::{Context, Result};
use mno_e2e::browser::{hidden_fields, Browser};
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

const CALLBACK: &str = "http://127.0.0.1:9/app/callback";

/// An org with an app that signs its users in with Mno.
async fn org_with_sso_app(hub: &HubClient) -> Result<(String, mno_e2e::hub_client::App)> {
    let (token, _org, app) = hub.org_with_app("ann@example.com", None, &[]).await?;
    hub.expect(
        StatusCode::OK,
        Method::PATCH,
        &format!("/hub/v1/apps/{}", app.id),
        Some(&bearer(&token)),
        Some(json!({"redirect_uris": [CALLBACK]})),
    )
    .await?;
    Ok((token, app))
}

fn authorize_url(platform: &TestPlatform, app: &mno_e2e::hub_client::App) -> String {
    let query = [
        ("client_id", app.key.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s1"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    reqwest::Url::parse_with_params(&platform.url("/sso/v1/authorize"), query)
        .expect("a URL")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_through_an_app_is_signed_in_at_the_portal() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, app) = org_with_sso_app(&hub).await?;
    let mut browser = Browser::new();

    // An app sends Ann to the Hub's sign-in page; she signs in there.
    let url = authorize_url(&platform, &app);
    let form = browser.get(&url).await?;
    let back = browser
        .sign_in_at_hub(&form, &url, "ann@example.com", TEST_PASSWORD)
        .await?;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text);
    assert!(back
        .location
        .as_deref()
        .unwrap_or_default()
        .starts_with(&format!("{CALLBACK}?code=")));

    // The portal knows her: her organisations, not the sign-in page.
    let orgs = browser.get(&platform.url("/orgs")).await?;
    assert_eq!(orgs.status, StatusCode::OK, "{:?}", orgs.location);
    assert!(
        orgs.text.contains("Test Org") && orgs.text.contains("Sign out"),
        "{}",
        orgs.text
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_at_the_portal_an_app_does_not_ask_again_and_sign_out_ends_both() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, app) = org_with_sso_app(&hub).await?;
    let mut browser = Browser::new();

    // Ann signs in at the portal's own form.
    let form = browser.get(&platform.url("/signin")).await?;
    let signed_in = browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "ann@example.com",
            TEST_PASSWORD,
        )
        .await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );

    // An app's sign-in goes straight back to the app with a code: no form.
    let back = browser.get(&authorize_url(&platform, &app)).await?;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text);
    let location = back.location.context("a redirect to the app")?;
    assert!(
        location.starts_with(&format!("{CALLBACK}?code=")),
        "{location}"
    );

    // The app's session check sees the session; signing out of the portal ends it.
    let code = reqwest::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("a code")?;
    let tokens = platform
        .http
        .post(platform.url("/sso/v1/token"))
        .header("authorization", basic_auth(&app.key, &app.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .send()
        .await?;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: serde_json::Value = tokens.json().await?;
    let id_token = tokens["id_token"].as_str().context("an ID token")?;
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = id_token.split('.').nth(1).context("a JWT")?;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?
    };
    let sid = claims["sid"].as_str().context("a sid")?.to_owned();
    let check = |sid: String| {
        platform
            .http
            .post(platform.url("/sso/v1/session_check"))
            .header("authorization", basic_auth(&app.key, &app.secret))
            .json(&json!({ "sid": sid }))
            .send()
    };
    let before: serde_json::Value = check(sid.clone()).await?.json().await?;
    assert_eq!(before["valid"], true, "{before}");

    let page = browser.get(&platform.url("/orgs")).await?;
    let fields = hidden_fields(&page.text);
    let out = browser
        .post_form(&platform.url("/signout"), &fields)
        .await?;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.text);
    let after: serde_json::Value = check(sid).await?.json().await?;
    assert_eq!(after["valid"], false, "{after}");
    Ok(())
}

/// The Hub session id (`sid`) behind an app's sign-in: the code at `location`
/// exchanged for an ID token, whose claims name it.
async fn sid_of(
    platform: &TestPlatform,
    app: &mno_e2e::hub_client::App,
    location: &str,
) -> Result<String> {
    let code = reqwest::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("a code")?;
    let tokens: serde_json::Value = platform
        .http
        .post(platform.url("/sso/v1/token"))
        .header("authorization", basic_auth(&app.key, &app.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .send()
        .await?
        .json()
        .await?;
    let id_token = tokens["id_token"].as_str().context("an ID token")?;
    use base64::Engine;
    let payload = id_token.split('.').nth(1).context("a JWT")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    Ok(claims["sid"].as_str().context("a sid")?.to_owned())
}

/// Whether the app's session check still sees the Hub session `sid`.
async fn app_session_valid(
    platform: &TestPlatform,
    app: &mno_e2e::hub_client::App,
    sid: &str,
) -> Result<bool> {
    let check: serde_json::Value = platform
        .http
        .post(platform.url("/sso/v1/session_check"))
        .header("authorization", basic_auth(&app.key, &app.secret))
        .json(&json!({ "sid": sid }))
        .send()
        .await?
        .json()
        .await?;
    Ok(check["valid"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_elsewhere_ends_the_apps_session_and_the_portals() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, app) = org_with_sso_app(&hub).await?;
    let mut browser = Browser::new();
    let url = authorize_url(&platform, &app);
    let form = browser.get(&url).await?;
    let back = browser
        .sign_in_at_hub(&form, &url, "ann@example.com", TEST_PASSWORD)
        .await?;
    let sid = sid_of(
        &platform,
        &app,
        back.location.as_deref().unwrap_or_default(),
    )
    .await?;
    assert!(app_session_valid(&platform, &app, &sid).await?);

    // On another device, Ann changes her password.
    let elsewhere = hub.login("ann@example.com", TEST_PASSWORD).await?;
    let changed = hub
        .expect(
            StatusCode::OK,
            Method::POST,
            "/hub/v1/users/me/password",
            Some(&bearer(&elsewhere)),
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "a new long password"})),
        )
        .await?;
    assert!(changed["sessions_ended"].as_u64() >= Some(1), "{changed}");
    assert!(
        !app_session_valid(&platform, &app, &sid).await?,
        "the app's session ended"
    );
    let orgs = browser.get(&platform.url("/orgs")).await?;
    assert!(
        orgs.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/signin")),
        "the portal asks to sign in again: {:?}",
        orgs.location
    );
    hub.expect(
        StatusCode::OK,
        Method::GET,
        "/hub/v1/users/me",
        Some(&bearer(&elsewhere)),
        None,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_at_the_portal_ends_every_session() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, app) = org_with_sso_app(&hub).await?;
    let mut browser = Browser::new();
    let form = browser.get(&platform.url("/signin")).await?;
    browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "ann@example.com",
            TEST_PASSWORD,
        )
        .await?;
    let back = browser.get(&authorize_url(&platform, &app)).await?;
    let sid = sid_of(
        &platform,
        &app,
        back.location.as_deref().unwrap_or_default(),
    )
    .await?;
    let elsewhere = hub.login("ann@example.com", TEST_PASSWORD).await?;

    // The button is a link to a page that asks; a GET ends nothing.
    let asking = browser
        .get(&platform.url("/account/signout-everywhere"))
        .await?;
    assert_eq!(asking.status, StatusCode::OK);
    assert!(
        asking.text.contains("Sign out everywhere?"),
        "{}",
        asking.text
    );
    assert!(app_session_valid(&platform, &app, &sid).await?);
    // A post without the form's token is refused and ends nothing.
    let forged = browser
        .post_form(
            &platform.url("/account/signout-everywhere"),
            &[("csrf".to_owned(), "forged".to_owned())],
        )
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app_session_valid(&platform, &app, &sid).await?);

    let done = browser
        .post_form(
            &platform.url("/account/signout-everywhere"),
            &hidden_fields(&asking.text),
        )
        .await?;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.location.as_deref(), Some("/signin"));
    let signin = browser.get(&platform.url("/signin")).await?;
    assert!(
        signin.text.contains("You were signed out everywhere"),
        "{}",
        signin.text
    );
    assert!(!app_session_valid(&platform, &app, &sid).await?);
    let (status, _) = hub
        .call(
            Method::GET,
            "/hub/v1/users/me",
            Some(&bearer(&elsewhere)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "every session ended");
    Ok(())
}
