//! schemathesis (tests/python-requirements.txt) fuzzes every documented
//! operation of a real platform from `/openapi.json`, as an app (HTTP Basic)
//! and as a user (Bearer) of a real org: no answer may be a 5xx, and every
//! answer must match the document (status, content type, headers, schema).
//!
//! The budget is fixed and the generation deterministic, so a run repeats.

use mno_e2e::hub_client::HubClient;
use mno_e2e::TestPlatform;

/// Examples per operation: enough to reach each route's validation, small
/// enough for a couple of minutes on two cores.
const MAX_EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_document_and_none_is_a_5xx() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app(
            "fuzz@example.com",
            None,
            &[
                ("invoices", true, true),
                ("people", true, true),
                ("company", true, true),
                ("accounts", true, true),
            ],
        )
        .await
        .unwrap();
    // A record to find: reads and writes of a real id reach past the 404s.
    let created = platform
        .http
        .post(platform.url(&format!("/connec/api/v2/{org}/people")))
        .basic_auth(&app.key, Some(&app.secret))
        .json(&serde_json::json!({"people": {"id": "P-1", "first_name": "Ann"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let record = created["people"]["id"].as_str().unwrap().to_owned();
    let me: serde_json::Value = platform
        .http
        .get(platform.url("/hub/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kpi: serde_json::Value = platform
        .http
        .post(platform.url("/impac/api/v2/kpis"))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"org_ids": [org], "widget": "accounts/profit_and_loss",
            "element": "totals.revenue", "target": {"max": "1000"}, "alert": {"inapp": true}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kpi = kpi["kpi"]["id"].as_str().expect("a KPI").to_owned();

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

[[operations]]
include-path = "/impac/api/v2/kpis/{{id}}"
parameters = {{ "path.id" = "{kpi}" }}
"#,
            user = me["id"].as_str().unwrap(),
            key = app.key,
            secret = app.secret,
            app_id = app.id,
        ),
    )
    .unwrap();

    let output = tokio::process::Command::new("schemathesis")
        .arg("--config-file")
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
            "--request-timeout",
            "30",
            // An endless stream: schemathesis would wait on it forever.
            "--exclude-path",
            "/connec/api/v2/{org}/stream",
            // Signing out would end the user's session for the rest of the run.
            "--exclude-path",
            "/hub/v1/sessions/current",
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
