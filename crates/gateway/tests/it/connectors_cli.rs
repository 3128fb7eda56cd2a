//! `mno connectors status` and `mno connectors sync` against a running
//! platform, for a connector whose outside API does not answer.

use crate::support;

use mno_e2e::hub_client::{bearer, HubClient};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

// Multi-threaded: the platform answers the `mno` child while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_sync_from_the_command_line() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("ops@example.com").await.unwrap();
    let org = hub.create_org(&token, "Acme", "USD").await.unwrap();
    let app = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/hub/v1/apps",
            Some(&bearer(&token)),
            Some(
                json!({"name": "Contacts", "stack": "connector", "webhook_url": null,
                "shared_entities": [{"entity": "people", "read": true, "write": true}]}),
            ),
        )
        .await
        .unwrap();
    let app_id = app["id"].as_str().unwrap();
    hub.install(&token, &org, app_id).await.unwrap();
    // An address book on a port where nothing listens: every pull fails.
    let dead = format!(
        "http://127.0.0.1:{}/ann/contacts/",
        mno_harness::free_port()
    );
    hub.expect(
        StatusCode::OK,
        Method::PUT,
        &format!("/hub/v1/orgs/{org}/installs/{app_id}/connector"),
        Some(&bearer(&token)),
        Some(json!({"connector": "carddav", "settings": {"url": dead},
            "credentials": {"username": "ann", "password": "cli-test-password"},
            "app_credentials": {"key": app["credentials"]["key"], "secret": app["credentials"]["secret"]},
            "interval_secs": 3600})),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let run = |command: &str| {
        let output = support::mno_command(dir.path())
            .args(["connectors", command, "--org", &org, "--app", app_id])
            .env("MNO_URL", &platform.base_url)
            .env("MNO_TOKEN", &token)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run("status");
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("carddav connector of app") && out.contains("idle"),
        "{out}"
    );
    assert!(out.contains("people") && out.contains("both"), "{out}");

    let (ok, out, err) = run("sync");
    assert!(!ok, "a failed sync exits non-zero: {out}");
    assert!(err.contains("502") && err.contains("unavailable"), "{err}");

    let (ok, out, err) = run("status");
    assert!(ok, "{err}");
    assert!(
        out.contains("last error") && out.contains("1 failure(s) in a row"),
        "{out}"
    );
    assert!(!out.contains("cli-test-password"), "{out}");
}
