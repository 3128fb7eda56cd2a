//! Single sign-on through the Hub's real HTML forms (a browser made of
//! reqwest and a cookie jar), ending in a validated, typed user; the session
//! check before and after signing out; tampered tokens and callbacks refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::routing::post;
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use mno_e2e::browser::Browser;
use mno_e2e::hub_client::{bearer, TEST_PASSWORD};
use mno_sdk::sso::{Role, SessionChecks};
use mno_sdk::Error;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{serve, World};

const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";

/// Signs in at `authorize` through the form; returns the callback URL's query.
async fn sign_in(browser: &mut Browser, world: &World, authorize: &str) -> Result<String> {
    let form = browser.get(authorize).await?;
    assert_eq!(
        form.status,
        StatusCode::OK,
        "the sign-in form: {}",
        form.text
    );
    let answer = browser
        .sign_in_at_hub(
            &form,
            &world.platform.url("/sso/v1/authorize"),
            &world.owner_email,
            TEST_PASSWORD,
        )
        .await?;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let location = answer.location.context("a redirect to the app")?;
    let query = location
        .strip_prefix(&format!("{CALLBACK}?"))
        .with_context(|| format!("back at the callback: {location}"))?;
    Ok(query.to_owned())
}

/// Sets the app's sign-in settings (its owner's `PATCH /hub/v1/apps/{app}`).
async fn register(world: &World, settings: Value) -> Result<()> {
    world
        .hub
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &format!("/hub/v1/apps/{}", world.app.id),
            Some(&bearer(&world.owner_token)),
            Some(settings),
        )
        .await?;
    Ok(())
}

/// The app's back-channel logout endpoint: every `logout_token` posted to it.
async fn backchannel_endpoint() -> Result<(String, Arc<Mutex<Vec<String>>>)> {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let taken = tokens.clone();
    let router = axum::Router::new().route(
        "/auth/backchannel-logout",
        post(
            move |Form(form): Form<BTreeMap<String, String>>| async move {
                taken
                    .lock()
                    .unwrap()
                    .push(form.get("logout_token").cloned().unwrap_or_default());
            },
        ),
    );
    let addr = serve(router).await?;
    Ok((format!("http://{addr}/auth/backchannel-logout"), tokens))
}

#[tokio::test]
async fn a_user_signs_in_through_the_form_and_is_checked_until_signed_out() -> Result<()> {
    let world = World::new("sso@example.com").await?;
    let (backchannel, logout_tokens) = backchannel_endpoint().await?;
    register(
        &world,
        json!({"redirect_uris": [CALLBACK], "post_logout_redirect_uris": ["http://127.0.0.1:9/"],
               "backchannel_logout_uri": backchannel}),
    )
    .await?;
    let mno = world.sdk(&world.app);
    let sso = mno.sso(CALLBACK);

    let (url, pending) = sso.authorization_url()?;
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["client_id"], world.app.key);
    let mut browser = Browser::new();
    let query = sign_in(&mut browser, &world, url.as_str()).await?;

    // A callback whose state is not ours is refused before any exchange.
    let forged = query.replace(&format!("state={}", pending.state), "state=forged");
    assert!(matches!(
        sso.callback(&pending, &forged).await,
        Err(Error::Sso(_))
    ));

    let signed_in = sso.callback(&pending, &query).await?;
    let user = &signed_in.user;
    assert_eq!(user.email, world.owner_email);
    assert_eq!(user.org.id, world.org);
    assert_eq!(user.role, Role::SuperAdmin);
    assert_eq!(user.org.currency, "USD");
    assert!(!user.session_id.is_empty());

    // The code was used: exchanging it again is refused, typed.
    let code = url::form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == "code")
        .map(|(_, v)| v.into_owned())
        .context("a code")?;
    let reuse = sso.exchange(&pending, &code).await.unwrap_err();
    assert_eq!(reuse.api().map(|a| a.code()), Some("invalid_grant"));

    // The ID token validates again with its nonce, and not with another.
    assert_eq!(
        sso.validate_id_token(&signed_in.id_token, &pending.nonce)
            .await?,
        *user
    );
    assert!(sso
        .validate_id_token(&signed_in.id_token, "other-nonce")
        .await
        .is_err());
    // A token whose claims were changed keeps its signature and is refused.
    let parts: Vec<&str> = signed_in.id_token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&BASE64URL.decode(parts[1])?)?;
    claims["org"]["role"] = json!("member");
    claims["email"] = json!("mallory@example.com");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        BASE64URL.encode(serde_json::to_vec(&claims)?),
        parts[2]
    );
    let refused = sso
        .validate_id_token(&tampered, &pending.nonce)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("refused"), "{refused}");
    // Another app's SDK (another audience) refuses this app's token.
    let other = world.second_app("Other", json!({})).await?;
    let other_sso = world.sdk(&other).sso(CALLBACK);
    assert!(other_sso
        .validate_id_token(&signed_in.id_token, &pending.nonce)
        .await
        .is_err());

    // The session check: valid while the Hub session lives, then not.
    let status = sso.session_check(&user.session_id).await?;
    assert!(status.valid);
    assert!(status.recheck_at.is_some());
    let checks = SessionChecks::new(sso.clone());
    assert!(checks.is_live(&user.session_id).await?);
    let logout = sso.logout_url(
        &signed_in.id_token,
        Some("http://127.0.0.1:9/"),
        Some("bye"),
    )?;
    assert!(logout.as_str().contains("id_token_hint="));
    let session_token = browser
        .cookies
        .get("mno_session")
        .context("the Hub session cookie")?
        .clone();
    world.hub.logout(&session_token).await?;
    let status = sso.session_check(&user.session_id).await?;
    assert!(!status.valid);
    assert_eq!(status.recheck_at, None);
    // The cached answer stands until its recheck time (five minutes away);
    // forgotten, as after a back-channel logout, the Hub is asked again.
    assert!(checks.is_live(&user.session_id).await?);
    checks.forget(&user.session_id);
    assert!(!checks.is_live(&user.session_id).await?);
    assert!(
        !checks.is_live(&user.session_id).await?,
        "an ended session stays ended"
    );

    // The Hub tells the app at its back-channel endpoint; the token validates
    // and names the session that ended.
    let token = mno_harness::wait_for(
        "the back-channel logout",
        Duration::from_secs(30),
        || async { logout_tokens.lock().unwrap().first().cloned() },
    )
    .await;
    let logout = sso.validate_logout_token(&token).await?;
    assert_eq!(
        (logout.sid.as_str(), logout.sub.as_str()),
        (user.session_id.as_str(), user.id.as_str())
    );
    // An ID token is no logout token.
    assert!(sso
        .validate_logout_token(&signed_in.id_token)
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn the_issuer_is_the_hubs_public_url_not_the_url_the_app_calls() -> Result<()> {
    // The app reaches the API at the loopback address; the Hub announces another issuer.
    let issuer = "http://mno.example.test";
    let platform =
        mno_e2e::TestPlatform::spawn_with(|c| c.public_url = Some(issuer.to_owned())).await;
    let world = World::on(platform, "issuer@example.com").await?;
    register(&world, json!({"redirect_uris": [CALLBACK]})).await?;
    let sso = world.sdk(&world.app).sso(CALLBACK);
    let (url, pending) = sso.authorization_url()?;
    let query = sign_in(&mut Browser::new(), &world, url.as_str()).await?;
    assert!(
        query.contains("iss=http%3A%2F%2Fmno.example.test"),
        "{query}"
    );
    let signed_in = sso.callback(&pending, &query).await?;
    assert_eq!(signed_in.user.email, world.owner_email);

    // A callback naming another issuer is refused (RFC 9207).
    let (url, pending) = sso.authorization_url()?;
    let query = sign_in(&mut Browser::new(), &world, url.as_str()).await?;
    let mixed_up = query.replace(
        "iss=http%3A%2F%2Fmno.example.test",
        "iss=http%3A%2F%2Fevil.test",
    );
    let refused = sso.callback(&pending, &mixed_up).await.unwrap_err();
    assert!(refused.to_string().contains("issuer"), "{refused}");
    Ok(())
}
