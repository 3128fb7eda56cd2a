//! schemathesis (tests/python-requirements.txt) fuzzes every documented
//! operation of a real platform from `/openapi.json`, as an app (HTTP Basic)
//! and as a user (Bearer) of a real org: no answer may be a 5xx, and every
//! answer must match the document (status, content type, headers, schema).
//!
//! The budget is fixed and the generation deterministic, so a run repeats.

use mno_e2e::hub_client::TEST_PASSWORD;
use mno_e2e::org_fixture::{json_answer, OrgFixture};
use mno_e2e::TestPlatform;
use reqwest::header;

/// Examples per operation: enough to reach each route's validation, small
/// enough for a couple of minutes on two cores.
const MAX_EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_document_and_none_is_a_5xx() {
    let platform = TestPlatform::spawn().await;
    // Real ids (an org, its app, a record, a KPI, a dashboard, bills, an invoice),
    // so that requests reach past the 404s.
    let world = OrgFixture::create(
        &platform,
        "fuzz@example.com",
        &[
            ("invoices", true, true),
            ("people", true, true),
            ("company", true, true),
            ("accounts", true, true),
        ],
        serde_json::json!({"id": "P-1", "first_name": "Ann"}),
    )
    .await;

    let access_token = sso_access_token(&platform, &world).await;
    let spare = json_answer(
        platform
            .http
            .post(platform.url("/impac/api/v2/dashboards"))
            .bearer_auth(&world.owner_token)
            .json(&serde_json::json!({"org_ids": [world.org], "name": "Spare"})),
    )
    .await;
    let spare_dashboard = spare["id"].as_str().expect("a spare dashboard").to_owned();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[auth.openapi.app]
username = "{key}"
password = "{secret}"

[auth.openapi.user]
bearer = "{token}"

[auth.openapi.sso_access_token]
bearer = "{access_token}"

[generation]
deterministic = true

# Real ids, so that requests reach past the 404s; the rest is generated.
[parameters]
"path.org" = "{org}"
"path.app" = "{app_id}"
"path.user" = "{user}"
"path.id" = "{record}"
"path.entity" = "people"
"path.category" = "accounts"
"query.org_ids[]" = ["{org}"]
"path.invoice" = "{invoice}"

[[operations]]
include-path = "/impac/api/v2/kpis/{{id}}"
parameters = {{ "path.id" = "{kpi}" }}

# Deleting the dashboard would leave the other operations only 404s: a spare.
[[operations]]
include-path = "/impac/api/v2/dashboards/{{id}}"
exclude-method = "DELETE"
parameters = {{ "path.id" = "{dashboard}" }}

[[operations]]
include-name = "DELETE /impac/api/v2/dashboards/{{id}}"
parameters = {{ "path.id" = "{spare_dashboard}" }}

[[operations]]
include-path = "/hub/v1/bills/{{id}}"
parameters = {{ "path.id" = "{bill}" }}

[[operations]]
include-path = "/hub/v1/recurring_bills/{{id}}"
parameters = {{ "path.id" = "{recurring_bill}" }}
"#,
            key = world.app.key,
            secret = world.app.secret,
            token = world.owner_token,
            access_token = access_token,
            org = world.org,
            app_id = world.app.id,
            user = world.owner_id,
            record = world.record,
            kpi = world.kpi,
            dashboard = world.dashboard,
            spare_dashboard = spare_dashboard,
            bill = world.bill,
            recurring_bill = world.recurring_bill,
            invoice = world.invoice,
        ),
    )
    .unwrap();

    // Through python3, as the other Python checks run: pip's script directory
    // need not be on PATH.
    let output = tokio::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(&config)
        .args(["run", &platform.url("/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "19",
            "--workers",
            "2",
            "--no-color",
            // Generous: the document is checked here, not speed (a slow
            // answer on a loaded machine is not a failure).
            "--request-timeout",
            "120",
            // An endless stream: schemathesis would wait on it forever.
            "--exclude-path",
            "/connec/api/v2/{org}/stream",
            // Signing out (here, or everywhere) would end the user's session
            // for the rest of the run.
            "--exclude-path",
            "/hub/v1/sessions/current",
            "--exclude-name",
            "DELETE /hub/v1/sessions",
            // The OpenID Connect browser endpoints answer HTML forms and
            // redirects that carry a CSRF token and a browser cookie, which
            // generated requests cannot hold; tests/e2e/tests/it/sso.rs drives
            // them as a certified relying party and a browser would.
            "--exclude-path",
            "/sso/v1/authorize",
            "--exclude-path",
            "/sso/v1/end_session",
        ])
        .current_dir(dir.path())
        .output()
        .await
        .expect("schemathesis runs (bash tests/run.sh installs tests/python-requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("passed"),
        "schemathesis ran no operation:\n{stdout}"
    );
}

/// The owner signs in to the fixture's app with single sign-on, as a browser
/// does (the sign-in page, its form with the CSRF token and cookie), and the
/// app exchanges the code: an access token, so that userinfo is fuzzed signed in.
async fn sso_access_token(platform: &TestPlatform, world: &OrgFixture) -> String {
    let redirect_uri = "http://127.0.0.1:9/callback";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let registered = http
        .patch(platform.url(&format!("/hub/v1/apps/{}", world.app.id)))
        .bearer_auth(&world.owner_token)
        .json(&serde_json::json!({ "redirect_uris": [redirect_uri] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registered.status(),
        200,
        "{}",
        registered.text().await.unwrap()
    );

    let verifier = "schemathesis-fixture-verifier-of-forty-three-or-more-characters";
    let challenge = mno_hub::sso::token::s256(verifier);
    let page = http
        .get(platform.url("/sso/v1/authorize"))
        .query(&[
            ("client_id", world.app.key.as_str()),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = page
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let html = page.text().await.unwrap();
    // Every hidden field of the form, the CSRF token among them.
    let mut form: Vec<(String, String)> = html
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|field| {
            let (name, rest) = field.split_once("\" value=\"").unwrap();
            let value = rest.split('"').next().unwrap();
            (name.to_owned(), value.replace("&amp;", "&"))
        })
        .collect();
    form.push(("email".into(), world.owner_email.clone()));
    form.push(("password".into(), TEST_PASSWORD.into()));
    let signed_in = http
        .post(platform.url("/sso/v1/authorize"))
        .header(header::COOKIE, cookies.join("; "))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        303,
        "{}",
        signed_in.text().await.unwrap()
    );
    let location =
        reqwest::Url::parse(signed_in.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));

    let tokens = json_answer(
        http.post(platform.url("/sso/v1/token"))
            .basic_auth(&world.app.key, Some(&world.app.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ]),
    )
    .await;
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {tokens}"))
        .to_owned()
}
