//! No secret reaches the logs: every log line of the platform, at TRACE level,
//! is captured while a user signs up, signs in, creates and rotates an app and
//! is checked, and none of them holds a password, token or secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_password_token_or_secret_appears_in_the_logs() -> Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("ann@example.com").await?;
    let org = hub.create_org(&token, "Acme", "USD").await?;
    let app = hub
        .create_app(
            &token,
            "Books",
            Some("https://books.example.com/hook"),
            &[("invoices", true, true)],
        )
        .await?;
    hub.install(&token, &org, &app.id).await?;
    let rotated = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/hub/v1/apps/{}/credentials/rotate", app.id),
            Some(&bearer(&token)),
            None,
        )
        .await?;
    let credential = json!({"type": "app", "key": app.key, "secret": app.secret});
    hub.check(credential, &org, Some("invoices"), "write")
        .await?;
    hub.expect(
        StatusCode::OK,
        Method::GET,
        &format!("/hub/v1/apps/{}", app.id),
        Some(&basic_auth(&app.key, &app.secret)),
        None,
    )
    .await?;
    // And over NATS request-reply, where the secret travels in the payload.
    {
        use mno_events::idm::{Action, Credential, Idm, IdmRequest, NatsIdm};
        let decision = NatsIdm::new(platform.nats.client().await)
            .check(&IdmRequest {
                credential: Credential::App {
                    key: app.key.clone(),
                    secret: app.secret.clone(),
                },
                org: org.clone(),
                entity: Some("invoices".into()),
                action: Action::Read,
            })
            .await?;
        assert!(decision.allow, "{decision:?}");
    }
    // Failures log too.
    hub.call(
        Method::POST,
        "/hub/v1/sessions",
        None,
        Some(json!({"email": "ann@example.com", "password": "wrong password 123"})),
    )
    .await?;
    hub.logout(&token).await?;
    let mut platform = platform;
    platform.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone())?;
    assert!(
        logs.contains("hub") || logs.contains("HTTP"),
        "the capture works: {logs}"
    );
    let secrets = [
        TEST_PASSWORD.to_owned(),
        "wrong password 123".to_owned(),
        token.clone(),
        app.secret.clone(),
        app.webhook_secret.clone(),
        rotated["credentials"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
        rotated["webhook_secret"].as_str().unwrap().to_owned(),
        basic_auth(&app.key, &app.secret),
    ];
    for secret in &secrets {
        // The base64 part of a whsec_ may hold '/' or '+': look for the whole string.
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            eprintln!("LEAK: {line:.400}");
        }
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the logs: {secret:.12}..."
        );
    }
    Ok(())
}
