//! schemathesis (tests/python-requirements.txt) fuzzes every documented
//! operation of a real platform from `/openapi.json`, as an app (HTTP Basic)
//! and as a user (Bearer) of a real org: no answer may be a 5xx, and every
//! answer must match the document (status, content type, headers, schema).
//!
//! The budget is fixed and the generation deterministic, so a run repeats.

use mno_e2e::org_fixture::OrgFixture;
use mno_e2e::TestPlatform;

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
"path.invoice" = "{invoice}"

[[operations]]
include-path = "/impac/api/v2/kpis/{{id}}"
parameters = {{ "path.id" = "{kpi}" }}

[[operations]]
include-path = "/impac/api/v2/dashboards/{{id}}"
parameters = {{ "path.id" = "{dashboard}" }}

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
            org = world.org,
            app_id = world.app.id,
            user = world.owner_id,
            record = world.record,
            kpi = world.kpi,
            dashboard = world.dashboard,
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
            "--request-timeout",
            "30",
            // An endless stream: schemathesis would wait on it forever.
            "--exclude-path",
            "/connec/api/v2/{org}/stream",
            // Signing out would end the user's session for the rest of the run.
            "--exclude-path",
            "/hub/v1/sessions/current",
            // The OpenID Connect browser endpoints answer HTML forms and
            // redirects that carry a CSRF token and a browser cookie, which
            // generated requests cannot hold; tests/e2e/tests/sso.rs drives
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
