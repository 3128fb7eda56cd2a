//! Single sign-on against a relying party nobody here wrote: openid-client 6
//! (a certified OpenID Connect RP, tests/e2e/node/sso_rp.mjs) discovers the
//! Hub, signs a user in through its forms with PKCE, exchanges the code,
//! checks the ID token's signature against the JWKS and reads userinfo; then
//! the negative cases of the specs. Around it, what only the platform can
//! show: the session check, back-channel logout (a real receiver), key
//! rotation with `mno sso rotate-keys`, end-session, and the bad-input rules.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::{Form, Router};
use clap::Parser;
use mno_e2e::hub_client::{basic_auth, bearer, App, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

mno_harness::on_both_databases!(
    TestPlatform;
    openid_client_signs_in_and_the_specs_negative_cases_fail,
    no_org_gets_a_page_and_several_orgs_a_choice,
);

const RP: &str = "http://127.0.0.1:9/rp";

/// Run the relying party; its JSON answer.
async fn relying_party(config: Value) -> Result<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node");
    if !std::path::Path::new(dir)
        .join("node_modules/openid-client")
        .exists()
    {
        bail!(
            "openid-client is not installed: run tests/run.sh, or npm ci --prefix tests/e2e/node"
        );
    }
    let output = tokio::process::Command::new("node")
        .arg("sso_rp.mjs")
        .arg(config.to_string())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .context("run node (Node 20 or later must be installed)")?;
    if !output.status.success() {
        bail!(
            "the relying party failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "the relying party printed no JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// An org with an app installed that signs users in.
struct World {
    hub: HubClient,
    owner_id: String,
    owner_token: String,
    org: String,
    app: App,
}

impl World {
    async fn new(platform: &TestPlatform, backchannel: Option<&str>) -> Result<World> {
        let hub = HubClient::new(&platform.base_url);
        let (owner, owner_token) = hub.signup_and_login("ann@example.com").await?;
        let org = hub
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/hub/v1/orgs",
                Some(&bearer(&owner_token)),
                Some(json!({"name": "Acme & Sons", "currency": "EUR", "timezone": "Europe/Paris", "country": "FR"})),
            )
            .await?["id"]
            .as_str()
            .context("org id")?
            .to_owned();
        let app = hub.create_app(&owner_token, "Books", None, &[]).await?;
        let settings = hub
            .expect(
                StatusCode::OK,
                Method::PATCH,
                &format!("/hub/v1/apps/{}", app.id),
                Some(&bearer(&owner_token)),
                Some(json!({
                    "redirect_uris": [format!("{RP}/callback")],
                    "post_logout_redirect_uris": [format!("{RP}/bye")],
                    "backchannel_logout_uri": backchannel,
                })),
            )
            .await?;
        assert_eq!(settings["redirect_uris"], json!([format!("{RP}/callback")]));
        assert_eq!(settings["backchannel_logout_uri"], json!(backchannel));
        hub.install(&owner_token, &org, &app.id).await?;
        Ok(World {
            hub,
            owner_id: owner.id,
            owner_token,
            org,
            app,
        })
    }

    fn rp(&self, platform: &TestPlatform, scenario: &str, email: &str) -> Value {
        json!({
            "scenario": scenario,
            "issuer": platform.base_url,
            "client_id": self.app.key,
            "client_secret": self.app.secret,
            "redirect_uri": format!("{RP}/callback"),
            "email": email,
            "password": TEST_PASSWORD,
        })
    }

    async fn session_check(&self, sid: &str) -> Result<Value> {
        self.hub
            .expect(
                StatusCode::OK,
                Method::POST,
                "/sso/v1/session_check",
                Some(&basic_auth(&self.app.key, &self.app.secret)),
                Some(json!({ "sid": sid })),
            )
            .await
    }
}

/// A back-channel logout receiver: answers 503 to its first POST (the Hub
/// must retry), and to every POST until [`Receiver::accept`] when started
/// refusing; then 200. Every logout_token goes down the channel.
struct Receiver {
    url: String,
    /// Each logout token and whether the receiver took it (200).
    tokens: mpsc::UnboundedReceiver<(String, bool)>,
    state: ReceiverState,
}

#[derive(Clone)]
struct ReceiverState {
    posts: Arc<Mutex<usize>>,
    accepting: Arc<Mutex<bool>>,
    sink: mpsc::UnboundedSender<(String, bool)>,
}

async fn receive(
    State(state): State<ReceiverState>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> AxumStatus {
    let first = {
        let mut posts = state.posts.lock().unwrap();
        *posts += 1;
        *posts == 1
    };
    let take = !first && *state.accepting.lock().unwrap();
    let token = form.get("logout_token").cloned().unwrap_or_default();
    let _ = state.sink.send((token, take));
    if take {
        AxumStatus::OK
    } else {
        AxumStatus::SERVICE_UNAVAILABLE
    }
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        Self::start_accepting(true).await
    }

    async fn start_accepting(accepting: bool) -> Result<Receiver> {
        let (sink, tokens) = mpsc::unbounded_channel();
        let state = ReceiverState {
            posts: Arc::new(Mutex::new(0)),
            accepting: Arc::new(Mutex::new(accepting)),
            sink,
        };
        let app = Router::new()
            .route("/logout", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/logout", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, tokens, state })
    }

    fn accept(&self) {
        *self.state.accepting.lock().unwrap() = true;
    }

    /// The next token POSTed and whether it was taken (a bound only so that a
    /// broken test ends).
    async fn next(&mut self) -> Result<(String, bool)> {
        tokio::time::timeout(Duration::from_secs(60), self.tokens.recv())
            .await
            .context("no back-channel logout came within a minute")?
            .context("the receiver stopped")
    }

    /// The first token the receiver took.
    async fn taken(&mut self) -> Result<String> {
        loop {
            if let (token, true) = self.next().await? {
                return Ok(token);
            }
        }
    }
}

/// A token checked by jose (openid-client's JOSE library) against the JWKS,
/// with `typ` when given: `{header, claims}`.
async fn verified(
    platform: &TestPlatform,
    world: &World,
    token: &str,
    typ: Option<&str>,
) -> Result<Value> {
    let out = relying_party(json!({
        "scenario": "verify",
        "issuer": platform.base_url,
        "client_id": world.app.key,
        "client_secret": world.app.secret,
        "token": token,
        "typ": typ,
    }))
    .await?;
    let result = &out["verified"];
    if result.get("claims").is_none() {
        bail!("the token did not verify: {out}");
    }
    Ok(result.clone())
}

fn failure<'a>(result: &'a Value, what: &str) -> &'a Value {
    assert!(
        result.get("ok").is_none(),
        "{what} must fail, the relying party accepted it: {result}"
    );
    &result["failed"]
}

async fn openid_client_signs_in_and_the_specs_negative_cases_fail(
    platform: &TestPlatform,
) -> Result<()> {
    let mut receiver = Receiver::start().await?;
    let world = World::new(platform, Some(&receiver.url)).await?;
    let out = relying_party(world.rp(platform, "flow", "ann@example.com")).await?;

    // Signed in through the form; the ID token passed openid-client's checks.
    assert_eq!(out["pages"], json!(["signin"]), "{out}");
    let claims = &out["claims"];
    assert_eq!(claims["iss"], json!(platform.base_url));
    assert_eq!(claims["aud"], json!(world.app.key));
    assert_eq!(claims["sub"], json!(world.owner_id));
    assert_eq!(claims["email"], "ann@example.com");
    assert_eq!(claims["name"], "ann");
    assert_eq!(
        claims["org"],
        json!({"id": world.org, "name": "Acme & Sons", "role": "super_admin", "currency": "EUR", "timezone": "Europe/Paris", "country": "FR"})
    );
    let sid = claims["sid"].as_str().context("sid")?.to_owned();
    assert!(claims["nonce"].is_string(), "{claims}");
    assert_eq!(out["userinfo"]["sub"], claims["sub"]);
    assert_eq!(out["userinfo"]["org"], claims["org"]);
    assert_eq!(out["userinfo"]["email"], claims["email"]);
    let callback = out["callback"].as_str().unwrap_or_default();
    assert!(
        callback.starts_with(&format!("{RP}/callback?code=")),
        "{callback}"
    );

    // Already signed in: no form the second time.
    assert_eq!(out["again_pages"], json!([]));
    assert_eq!(out["again_status"], 303);
    // The negative cases, as openid-client reports them.
    assert_eq!(
        failure(&out["reused"], "a reused code")["error"],
        "invalid_grant"
    );
    failure(
        &out["userinfo_after_reuse"],
        "userinfo with a token of a replayed code",
    );
    let pkce = failure(&out["pkce_mismatch"], "a PKCE mismatch");
    assert_eq!(pkce["error"], "invalid_grant");
    assert!(
        pkce["description"]
            .as_str()
            .unwrap_or_default()
            .contains("PKCE"),
        "{pkce}"
    );
    let state = failure(&out["state_mismatch"], "a state mismatch");
    assert!(
        state["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("state"),
        "{state}"
    );
    let tampered = failure(&out["tampered"], "a tampered ID token");
    assert!(
        tampered["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("signature verification failed"),
        "{tampered}"
    );
    let wrong = &out["wrong_redirect"];
    assert_eq!(wrong["status"], 400, "{wrong}");
    assert!(wrong["location"].is_null(), "{wrong}");
    assert!(wrong["text"]
        .as_str()
        .unwrap_or_default()
        .contains("is not one the app registered"));

    // The session check: valid while the Hub session lives.
    let check = world.session_check(&sid).await?;
    assert_eq!(check["valid"], true, "{check}");
    assert!(check["recheck_at"].is_string(), "{check}");
    // Another app's credentials, or a sid this app never saw: not valid.
    let other = world
        .hub
        .create_app(&world.owner_token, "Other", None, &[])
        .await?;
    let foreign = world
        .hub
        .expect(
            StatusCode::OK,
            Method::POST,
            "/sso/v1/session_check",
            Some(&basic_auth(&other.key, &other.secret)),
            Some(json!({ "sid": sid })),
        )
        .await?;
    assert_eq!(foreign["valid"], false);

    // Signing out of the Hub (the browser's session token) ends it, and the
    // app's back-channel receiver gets a logout token, after one retry.
    let session_token = out["session_cookie"].as_str().context("session cookie")?;
    world.hub.logout(session_token).await?;
    let (first, taken) = receiver.next().await?;
    assert!(!first.is_empty() && !taken);
    let (second, taken) = receiver.next().await?;
    assert!(taken, "the retry is taken");
    let verified = verified(platform, &world, &second, Some("logout+jwt")).await?;
    let logout = &verified["claims"];
    assert_eq!(logout["sid"], json!(sid), "{verified}");
    assert_eq!(logout["sub"], json!(world.owner_id));
    assert!(logout["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(logout.get("nonce").is_none());
    assert!(logout["jti"].is_string());

    let check = world.session_check(&sid).await?;
    assert_eq!(check, json!({"valid": false, "recheck_at": null}));
    let userinfo = platform
        .http
        .get(platform.url("/sso/v1/userinfo"))
        .header(
            "authorization",
            bearer(out["access_token"].as_str().unwrap_or_default()),
        )
        .send()
        .await?;
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert!(userinfo.headers()["www-authenticate"]
        .to_str()?
        .contains("invalid_token"));
    Ok(())
}

async fn no_org_gets_a_page_and_several_orgs_a_choice(platform: &TestPlatform) -> Result<()> {
    let world = World::new(platform, None).await?;
    // Bob is in no org where the app is installed.
    world
        .hub
        .signup("bob@example.com", TEST_PASSWORD, "Bob")
        .await?;
    let out = relying_party(world.rp(platform, "sign_in_only", "bob@example.com")).await?;
    assert_eq!(out["status"], 403, "{out}");
    assert!(out["location"].is_null());
    assert!(out["text"]
        .as_str()
        .unwrap_or_default()
        .contains("none of your organisations has installed Books"));

    // A wrong password: the form again, saying so, and nothing for the app.
    let mut config = world.rp(platform, "sign_in_only", "ann@example.com");
    config["password"] = json!("not the password");
    let out = relying_party(config).await?;
    assert_eq!(out["status"], 401, "{out}");
    assert!(out["location"].is_null());
    assert!(out["session_cookie"].is_null());
    let text = out["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("the email or password is wrong") && text.contains("name=\"password\""),
        "{text}"
    );

    // Ann in two orgs that installed it chooses the second.
    let second = world
        .hub
        .create_org(&world.owner_token, "Beta", "USD")
        .await?;
    world
        .hub
        .install(&world.owner_token, &second, &world.app.id)
        .await?;
    let mut config = world.rp(platform, "sign_in_only", "ann@example.com");
    config["org"] = json!(second);
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    assert_eq!(out["pages"], json!(["signin", "org"]), "{out}");
    assert_eq!(
        out["exchange"]["claims"]["org"]["id"],
        json!(second),
        "{out}"
    );
    assert_eq!(out["exchange"]["claims"]["org"]["name"], "Beta");
    Ok(())
}

#[tokio::test]
async fn an_expired_code_is_refused() -> Result<()> {
    let platform = TestPlatform::spawn_with(|c| c.sso_code_ttl_secs = 0).await;
    let world = World::new(&platform, None).await?;
    let mut config = world.rp(&platform, "sign_in_only", "ann@example.com");
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    assert_eq!(out["status"], 303, "{out}");
    let failed = failure(&out["exchange"], "an expired code");
    assert_eq!(failed["error"], "invalid_grant");
    assert!(failed["description"]
        .as_str()
        .unwrap_or_default()
        .contains("expired"));
    Ok(())
}

/// A code another client presents is not used up: its own client still
/// exchanges it. A refused exchange by its own client uses it up, and the
/// answer to the next one says so without claiming tokens were revoked.
/// Sign Ann in, stopping at the callback: the code and the PKCE verifier,
/// for a test that exchanges the code itself.
async fn signed_in_code(platform: &TestPlatform, world: &World) -> Result<(String, String)> {
    let out = relying_party(world.rp(platform, "sign_in_only", "ann@example.com")).await?;
    let location = out["location"].as_str().context("a redirect")?;
    let code = reqwest::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("a code")?;
    let verifier = out["verifier"].as_str().context("the verifier")?.to_owned();
    Ok((code, verifier))
}

#[tokio::test]
async fn only_its_own_client_uses_a_code_up() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let other = world
        .hub
        .create_app(&world.owner_token, "Other", None, &[])
        .await?;
    let http = no_redirects();
    let exchange = |client: (&str, &str), code: &str, verifier: &str, redirect: &str| {
        http.post(platform.url("/sso/v1/token"))
            .basic_auth(client.0, Some(client.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
            ])
            .send()
    };
    let sign_in = || signed_in_code(&platform, &world);
    let ours = (world.app.key.as_str(), world.app.secret.as_str());
    let callback = format!("{RP}/callback");

    let (code, verifier) = sign_in().await?;
    let r = exchange((&other.key, &other.secret), &code, &verifier, &callback).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("another client"),
        "{body}"
    );
    let r = exchange(ours, &code, &verifier, &callback).await?;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await?);

    let (code, verifier) = sign_in().await?;
    let r = exchange(ours, &code, &verifier, &format!("{callback}/elsewhere")).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = exchange(ours, &code, &verifier, &callback).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await?;
    let why = body["error_description"].as_str().unwrap_or_default();
    assert!(
        why.contains("already presented") && !why.contains("revoked"),
        "{body}"
    );
    Ok(())
}

/// Sign Ann in and exchange the code; the ID token.
async fn sign_in_and_exchange(platform: &TestPlatform, world: &World) -> Result<String> {
    let mut config = world.rp(platform, "sign_in_only", "ann@example.com");
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    out["exchange"]["id_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("sign-in failed: {out}"))
}

/// The ID token checked by jose against the JWKS: its header.
async fn verify(platform: &TestPlatform, world: &World, token: &str) -> Result<Value> {
    Ok(verified(platform, world, token, None).await?["header"].clone())
}

async fn kids(platform: &TestPlatform) -> Result<Vec<String>> {
    let jwks: Value = platform
        .http
        .get(platform.url("/sso/v1/jwks"))
        .send()
        .await?
        .json()
        .await?;
    Ok(jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn rotated_keys_sign_new_tokens_and_old_ones_still_verify() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let before = kids(&platform).await?;
    assert_eq!(before.len(), 1);
    let old_token = sign_in_and_exchange(&platform, &world).await?;
    assert_eq!(
        verify(&platform, &world, &old_token).await?["kid"],
        json!(before[0])
    );

    // The operator rotates on the running platform's database.
    let data_dir = platform.data_dir.path().to_str().context("data dir")?;
    mno_gateway::cli::Cli::parse_from(["mno", "sso", "rotate-keys", "--data-dir", data_dir])
        .run()
        .await?;
    let after = kids(&platform).await?;
    assert_eq!(after.len(), 2, "the old key stays published: {after:?}");
    assert_eq!(after[1], before[0]);

    // New tokens carry the new key; the old token still verifies.
    let new_token = sign_in_and_exchange(&platform, &world).await?;
    assert_eq!(
        verify(&platform, &world, &new_token).await?["kid"],
        json!(after[0])
    );
    assert_eq!(
        verify(&platform, &world, &old_token).await?["kid"],
        json!(before[0])
    );

    // A key retired with no tokens left to verify is no longer published.
    mno_gateway::cli::Cli::parse_from([
        "mno",
        "sso",
        "rotate-keys",
        "--publish-old-secs",
        "0",
        "--data-dir",
        data_dir,
    ])
    .run()
    .await?;
    let last = kids(&platform).await?;
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(!last.contains(&after[0]), "{last:?}");
    assert_eq!(last[1], before[0]);
    Ok(())
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The query of a redirect's Location as (name, value) pairs.
fn location_query(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default();
    reqwest::Url::parse(location)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn protocol_errors_use_the_standard_codes_and_change_nothing() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let http = no_redirects();
    let authorize = |params: &[(&str, &str)]| {
        let mut all: Vec<(&str, &str)> = vec![
            ("client_id", world.app.key.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in params {
            all.retain(|(name, _)| name != k);
            if !v.is_empty() {
                all.push((k, v));
            }
        }
        http.get(platform.url("/sso/v1/authorize"))
            .query(&all)
            .send()
    };

    // Unknown client: a page, never a redirect.
    let r = authorize(&[("client_id", "mk_nobody")]).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    // The rest go back to the app with the standard code and the state.
    for (params, code) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
    ] {
        let r = authorize(&params).await?;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{params:?}");
        let query = location_query(&r);
        assert!(
            query.contains(&("error".into(), code.into())),
            "{params:?}: {query:?}"
        );
        assert!(query.contains(&("state".into(), "s1".into())), "{query:?}");
        assert!(!query.iter().any(|(k, _)| k == "code"));
    }
    // A form posted without the browser's CSRF token does nothing.
    let r = http
        .post(platform.url("/sso/v1/authorize"))
        .form(&[
            ("client_id", world.app.key.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
            ("action", "signin"),
            ("email", "ann@example.com"),
            ("password", TEST_PASSWORD),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());
    // A query or form that cannot be read (a parameter twice, a body that is
    // not a form) gets a page like every other answer here, not plain text.
    let twice = format!(
        "/sso/v1/authorize?client_id={key}&client_id={key}",
        key = world.app.key
    );
    for r in [
        http.get(platform.url(&twice)).send().await?,
        http.get(platform.url("/sso/v1/end_session?state=a&state=b"))
            .send()
            .await?,
        http.post(platform.url("/sso/v1/authorize"))
            .json(&serde_json::json!({"action": "signin"}))
            .send()
            .await?,
        http.post(platform.url("/sso/v1/end_session"))
            .json(&serde_json::json!({}))
            .send()
            .await?,
    ] {
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.url());
        let content_type = r.headers()["content-type"].to_str()?.to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{}: {content_type}",
            r.url()
        );
        assert!(r.text().await?.contains("could not be read"));
    }

    // The token endpoint.
    let token = |auth: Option<(&str, &str)>, form: Vec<(&str, &str)>| {
        let mut request = http.post(platform.url("/sso/v1/token")).form(&form);
        if let Some((key, secret)) = auth {
            request = request.basic_auth(key, Some(secret));
        }
        request.send()
    };
    let app = (world.app.key.as_str(), world.app.secret.as_str());
    let code_form = |code: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ]
    };
    // (client credentials, form, status, error code)
    type Case<'a> = (
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            None,
            code_form("mac_x"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some((app.0, "ms_wrong")),
            code_form("mac_x"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some(app),
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            Some(app),
            vec![("grant_type", "authorization_code")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some(app),
            code_form("mac_unknown"),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            Some(app),
            [code_form("mac_x"), vec![("client_secret", app.1)]].concat(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (auth, form, status, code) in cases {
        let r = token(auth, form.clone()).await?;
        assert_eq!(r.status(), status, "{form:?}");
        let basic = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await?;
        assert_eq!(body["error"], code, "{form:?}: {body}");
        assert!(body["error_description"].is_string());
        if auth.is_some_and(|(_, secret)| secret == "ms_wrong") {
            assert!(basic.is_some_and(|b| b.starts_with("Basic")));
        }
    }
    let r = http
        .post(platform.url("/sso/v1/token"))
        .basic_auth(app.0, Some(app.1))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_request");

    // Bad sign-in settings: 422 at each field, nothing changed.
    let path = format!("/hub/v1/apps/{}", world.app.id);
    let (status, body) = world
        .hub
        .call(
            Method::PATCH,
            &path,
            Some(&bearer(&world.owner_token)),
            Some(json!({"redirect_uris": ["https://books.example/cb#frag", "not a url"], "backchannel_logout_uri": "ftp://x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["source"]["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        [
            "/redirect_uris/0",
            "/redirect_uris/1",
            "/backchannel_logout_uri"
        ]
    );
    let settings = world
        .hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &path,
            Some(&bearer(&world.owner_token)),
            None,
        )
        .await?;
    assert_eq!(settings["redirect_uris"], json!([format!("{RP}/callback")]));
    assert!(settings["backchannel_logout_uri"].is_null());

    // The session check is the app's.
    let (status, _) = world
        .hub
        .call(
            Method::POST,
            "/sso/v1/session_check",
            None,
            Some(json!({"sid": "x"})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = world
        .hub
        .call(
            Method::POST,
            "/sso/v1/session_check",
            Some(&basic_auth(app.0, app.1)),
            Some(json!({})),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["source"]["pointer"], "/sid");
    Ok(())
}

#[tokio::test]
async fn end_session_with_a_hint_signs_out_and_goes_back_to_the_app() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let mut config = world.rp(&platform, "sign_in_only", "ann@example.com");
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    let id_token = out["exchange"]["id_token"].as_str().context("id token")?;
    let sid = out["exchange"]["claims"]["sid"].as_str().context("sid")?;
    let http = no_redirects();
    let end = |params: Vec<(&'static str, String)>| {
        http.get(platform.url("/sso/v1/end_session"))
            .query(&params)
            .send()
    };

    // An unregistered URI, or a hint that is not ours: a page, and nothing ends.
    let r = end(vec![
        ("id_token_hint", id_token.to_owned()),
        ("post_logout_redirect_uri", format!("{RP}/elsewhere")),
    ])
    .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let forged = format!("{}x", id_token);
    let r = end(vec![("id_token_hint", forged)]).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Without a hint the user is asked to confirm; nothing ends on a GET.
    let r = end(vec![]).await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await?.contains("method=\"post\""));
    assert_eq!(world.session_check(sid).await?["valid"], true);

    let r = end(vec![
        ("id_token_hint", id_token.to_owned()),
        ("post_logout_redirect_uri", format!("{RP}/bye")),
        ("state", "after".to_owned()),
    ])
    .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("{RP}/bye?state=after").as_str()
    );
    assert_eq!(world.session_check(sid).await?["valid"], false);
    Ok(())
}

#[tokio::test]
async fn a_back_channel_logout_survives_a_restart_of_the_platform() -> Result<()> {
    // Retries a second apart, enough of them to span a restart.
    let mut platform = TestPlatform::spawn_with(|c| {
        c.webhook_retry_schedule = Some(vec!["1s"; 30].join(","));
    })
    .await;
    let mut receiver = Receiver::start_accepting(false).await?;
    let world = World::new(&platform, Some(&receiver.url)).await?;
    let mut config = world.rp(&platform, "sign_in_only", "ann@example.com");
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    let session = out["session_cookie"].as_str().context("session cookie")?;

    // Signed out while the app's receiver is down: the first try fails.
    world.hub.logout(session).await?;
    receiver.next().await?;
    // The platform stops and starts again; the logout is still owed, and comes.
    platform.restart().await;
    receiver.accept();
    let token = receiver.taken().await?;
    let verified = verified(&platform, &world, &token, Some("logout+jwt")).await?;
    assert_eq!(
        verified["claims"]["sub"],
        json!(world.owner_id),
        "{verified}"
    );
    Ok(())
}

/// An access token checks the user's membership and the app's install as they
/// were when it was issued: uninstalling the app ends it, and installing the
/// app again does not bring it back (from an outside audit: the same token
/// answered 200 again after a reinstall, or after a removed member rejoined).
#[tokio::test]
async fn an_access_token_stays_ended_after_the_app_is_installed_again() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let out = relying_party(world.rp(&platform, "flow", "ann@example.com")).await?;
    let token = out["access_token"]
        .as_str()
        .with_context(|| format!("no access token: {out}"))?
        .to_owned();
    let userinfo = || async {
        let response = platform
            .http
            .get(platform.url("/sso/v1/userinfo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let (status, claims) = userinfo().await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["org"]["id"], json!(world.org));

    world
        .hub
        .uninstall(&world.owner_token, &world.org, &world.app.id)
        .await?;
    assert_eq!(userinfo().await.0, StatusCode::UNAUTHORIZED);
    world
        .hub
        .install(&world.owner_token, &world.org, &world.app.id)
        .await?;
    let (status, body) = userinfo().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A new sign-in, after the new install, is served.
    let out = relying_party(world.rp(&platform, "flow", "ann@example.com")).await?;
    assert_eq!(out["userinfo"]["org"]["id"], json!(world.org), "{out}");
    Ok(())
}

/// `max_age` (OpenID Connect Core): a sign-in older than it asks for the
/// password again, and with `prompt=none` answers `login_required`; 0 always
/// asks (from an outside audit: it was ignored and a code issued at once).
#[tokio::test]
async fn max_age_asks_a_signed_in_user_again_once_their_sign_in_is_older() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let out = relying_party(world.rp(&platform, "flow", "ann@example.com")).await?;
    let cookie = out["session_cookie"]
        .as_str()
        .with_context(|| format!("no session cookie: {out}"))?
        .to_owned();
    let http = no_redirects();
    let authorize = |extra: Vec<(&'static str, &'static str)>| {
        let mut query: Vec<(&str, &str)> = vec![
            ("client_id", world.app.key.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        query.extend(extra);
        http.get(platform.url("/sso/v1/authorize"))
            .header("cookie", format!("mno_session={cookie}"))
            .query(&query)
            .send()
    };
    // Signed in a moment ago: an hour's max_age lets the code through.
    let r = authorize(vec![("max_age", "3600")]).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location_query(&r).iter().any(|(k, _)| k == "code"));

    // 0: the sign-in form again, no code; with prompt=none, login_required.
    let r = authorize(vec![("max_age", "0")]).await?;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await?;
    assert!(page.contains("name=\"password\""), "{page}");
    assert!(
        page.contains("name=\"max_age\""),
        "the form carries max_age: {page}"
    );
    let r = authorize(vec![("max_age", "0"), ("prompt", "none")]).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let query = location_query(&r);
    assert!(
        query.contains(&("error".into(), "login_required".into())),
        "{query:?}"
    );
    assert!(!query.iter().any(|(k, _)| k == "code"));
    Ok(())
}

/// RP-Initiated Logout by POST: an app's form with `id_token_hint` (no CSRF
/// token of ours) ends the hinted session as the GET does; without a hint it
/// changes nothing (from an outside audit: the POST was refused).
#[tokio::test]
async fn end_session_by_post_with_a_hint_signs_out() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let mut config = world.rp(&platform, "sign_in_only", "ann@example.com");
    config["exchange"] = json!(true);
    let out = relying_party(config).await?;
    let id_token = out["exchange"]["id_token"].as_str().context("id token")?;
    let sid = out["exchange"]["claims"]["sid"].as_str().context("sid")?;
    let http = no_redirects();

    let r = http
        .post(platform.url("/sso/v1/end_session"))
        .form(&[("post_logout_redirect_uri", format!("{RP}/bye"))])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(world.session_check(sid).await?["valid"], true);

    let r = http
        .post(platform.url("/sso/v1/end_session"))
        .form(&[
            ("id_token_hint", id_token.to_owned()),
            ("post_logout_redirect_uri", format!("{RP}/bye")),
            ("state", "after".to_owned()),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("{RP}/bye?state=after").as_str()
    );
    assert_eq!(world.session_check(sid).await?["valid"], false);
    Ok(())
}

/// Too many failed sign-ins at the Hub's sign-in page answer 429 with
/// Retry-After, as the API does (they answered 401 like a wrong password).
#[tokio::test]
async fn a_locked_sign_in_at_the_sso_page_answers_429_with_retry_after() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let http = no_redirects();
    let query = [
        ("client_id", world.app.key.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
        ("response_type", "code"),
        ("scope", "openid"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    let form = http
        .get(platform.url("/sso/v1/authorize"))
        .query(&query)
        .send()
        .await?;
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the form sets its CSRF cookie")?
        .to_owned();
    let page = form.text().await?;
    let fields = mno_e2e::browser::hidden_fields(&page);
    let mut last = None;
    for _ in 0..12 {
        let mut body = fields.clone();
        body.push(("email".into(), "ann@example.com".into()));
        body.push(("password".into(), "not the password".into()));
        let r = http
            .post(platform.url("/sso/v1/authorize"))
            .header("cookie", &cookie)
            .form(&body)
            .send()
            .await?;
        let status = r.status();
        let retry_after = r.headers().get("retry-after").cloned();
        last = Some((status, retry_after));
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = retry_after.context("a Retry-After")?.to_str()?.parse()?;
    assert!(seconds > 0);
    Ok(())
}

/// A code issued before the app was uninstalled is refused after it is
/// installed again, as a token issued before is (from an outside re-audit:
/// the code, exchanged within its minute, gave a working token).
#[tokio::test]
async fn a_code_issued_before_a_reinstall_is_refused() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let (code, verifier) = signed_in_code(&platform, &world).await?;
    let verifier = verifier.as_str();
    world
        .hub
        .uninstall(&world.owner_token, &world.org, &world.app.id)
        .await?;
    world
        .hub
        .install(&world.owner_token, &world.org, &world.app.id)
        .await?;
    let r = no_redirects()
        .post(platform.url("/sso/v1/token"))
        .basic_auth(&world.app.key, Some(&world.app.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier),
            ("redirect_uri", &format!("{RP}/callback")),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    Ok(())
}

/// From an outside audit: redirect URIs that browsers and other URL parsers
/// read differently (a backslash before an `@`), or that carry a user, were
/// registered; one registered before the rules is not sent to at sign-in.
#[tokio::test]
async fn redirect_uris_read_differently_or_with_a_user_are_refused() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let path = format!("/hub/v1/apps/{}", world.app.id);
    let backslash = r"https://app.example\@evil.example/cb";
    let (status, body) = world
        .hub
        .call(
            Method::PATCH,
            &path,
            Some(&bearer(&world.owner_token)),
            Some(json!({
                "redirect_uris": [backslash, "https://user@app.example/cb"],
                "post_logout_redirect_uris": ["https://App.Example/bye"],
            })),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let errors: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["source"]["pointer"].as_str().unwrap_or_default(),
                e["detail"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{body}");
    assert_eq!(errors[0].0, "/redirect_uris/0");
    assert!(
        errors[0].1.starts_with("redirect_uris") && errors[0].1.contains("ASCII letters, digits"),
        "{body}"
    );
    assert_eq!(errors[1].0, "/redirect_uris/1");
    assert!(errors[1].1.contains("user or password"), "{body}");
    assert_eq!(errors[2].0, "/post_logout_redirect_uris/0");
    assert!(
        errors[2].1.contains("\"https://app.example/bye\""),
        "{body}"
    );
    let settings = world
        .hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &path,
            Some(&bearer(&world.owner_token)),
            None,
        )
        .await?;
    assert_eq!(settings["redirect_uris"], json!([format!("{RP}/callback")]));

    // Registered before the rules: an error page at sign-in, never a redirect.
    sqlx::query("UPDATE hub_sso_clients SET redirect_uris = $1 WHERE app_id = $2")
        .bind(json!([backslash]).to_string())
        .bind(&world.app.id)
        .execute(&platform.running().db)
        .await?;
    let r = no_redirects()
        .get(platform.url("/sso/v1/authorize"))
        .query(&[
            ("client_id", world.app.key.as_str()),
            ("redirect_uri", backslash),
            ("response_type", "code"),
            ("scope", "openid"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await?.contains("register it again"));
    Ok(())
}

/// From an outside audit: the sign-in form's CSRF check was a plain double
/// submit (the cookie's value repeated in the form), so whoever can set the
/// Hub's cookies (a sibling subdomain) made up a pair. The form's token is
/// now an HMAC of the cookie's nonce under the Hub's key: a made-up pair is
/// refused and signs no one in; the form as the Hub gave it still works.
#[tokio::test]
async fn a_made_up_csrf_pair_is_refused_and_the_hubs_own_works() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let world = World::new(&platform, None).await?;
    let http = no_redirects();
    let query = [
        ("client_id", world.app.key.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/rp/callback"),
        ("response_type", "code"),
        ("scope", "openid"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    let form = http
        .get(platform.url("/sso/v1/authorize"))
        .query(&query)
        .send()
        .await?;
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the form sets its CSRF cookie")?
        .to_owned();
    let fields = mno_e2e::browser::hidden_fields(&form.text().await?);
    let with = |csrf: &str| {
        let mut body: Vec<(String, String)> = fields
            .iter()
            .filter(|(name, _)| name != "csrf")
            .cloned()
            .collect();
        body.push(("csrf".into(), csrf.into()));
        body.push(("email".into(), "ann@example.com".into()));
        body.push(("password".into(), TEST_PASSWORD.into()));
        body
    };
    let token = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.clone())
        .context("the form's token")?;
    let made_up = "mst_planted-by-a-sibling-subdomain-0123456789a";
    let r = http
        .post(platform.url("/sso/v1/authorize"))
        .header("cookie", format!("mno_sso_csrf={made_up}"))
        .form(&with(made_up))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await?.contains("This form has expired"));

    // The form's token is not the cookie's value, and is refused with another nonce.
    assert_ne!(
        Some(token.as_str()),
        cookie.split_once('=').map(|(_, nonce)| nonce),
        "the form repeats the cookie"
    );
    let r = http
        .post(platform.url("/sso/v1/authorize"))
        .header("cookie", format!("mno_sso_csrf={made_up}"))
        .form(&with(&token))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = http
        .post(platform.url("/sso/v1/authorize"))
        .header("cookie", &cookie)
        .form(&with(&token))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location_query(&r);
    assert!(back.iter().any(|(name, _)| name == "code"), "{back:?}");
    Ok(())
}
