//! `mno users reset-password <email>` beside a running platform, on its data
//! dir: the link it prints opens the portal's page, sets a new password once
//! and ends the user's sessions; an unknown address is one clear error.

use crate::support;

use mno_e2e::hub_client::{bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

// Multi-threaded: the platform answers while the test waits for the `mno` child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_prints_a_link_that_works_once() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("ann@example.com").await.unwrap();
    let public_url = "https://mno.example.com";
    let run = |email: &str| {
        let output = support::mno_command(platform.data_dir.path())
            .args(["users", "reset-password", email])
            .env("MNO_PUBLIC_URL", public_url)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // An unknown or malformed address: a non-zero exit and one clear line.
    let (ok, out, err) = run("nobody@example.com");
    assert!(!ok, "{out}");
    assert!(
        err.contains("there is no user with email nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = run("not an email");
    assert!(!ok && err.contains("not an email address"), "{err}");

    // The address as the user typed it at sign-up, in any case.
    let (ok, out, err) = run("Ann@Example.com");
    assert!(ok, "{out}{err}");
    let link = out.lines().next().unwrap();
    let token_part = link
        .strip_prefix(&format!("{public_url}/reset/"))
        .unwrap_or_else(|| panic!("the link starts with the public URL: {out}"));
    assert!(
        token_part.starts_with("mpr_") && token_part.len() > 40,
        "{link}"
    );
    assert!(
        out.contains("ann@example.com") && out.contains("until"),
        "{out}"
    );

    // The same path on this platform is the portal's page, naming the account.
    let page = reset_page(&platform, token_part).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Choose a new password") && html.contains("ann@example.com"),
        "{html}"
    );

    let redeem = json!({"token": token_part, "password": "a brand new password"});
    let answer = hub
        .expect(
            StatusCode::OK,
            Method::POST,
            "/hub/v1/password_resets/redeem",
            None,
            Some(redeem.clone()),
        )
        .await
        .unwrap();
    assert_eq!(answer["sessions_ended"], 1, "{answer}");
    let (status, _) = hub
        .call(Method::GET, "/hub/v1/users/me", Some(&bearer(&token)), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old session ended");
    assert!(hub.login("ann@example.com", TEST_PASSWORD).await.is_err());
    hub.login("ann@example.com", "a brand new password")
        .await
        .unwrap();

    // Once only; the page then says so in words, with the refusal's status.
    let (status, again) = hub
        .call(
            Method::POST,
            "/hub/v1/password_resets/redeem",
            None,
            Some(redeem),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::GONE, "{again}");
    let used = reset_page(&platform, token_part).await;
    assert_eq!(used.status(), StatusCode::GONE);
    let html = used.text().await.unwrap();
    assert!(
        html.contains("This link was already used")
            && html.contains("Ask the platform's operator for a new link"),
        "{html}"
    );
    let unknown = reset_page(&platform, "mpr_no-such-link").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown
        .text()
        .await
        .unwrap()
        .contains("This link does not work"));
}

/// The portal's page of a reset link, as a browser asks for it.
async fn reset_page(platform: &TestPlatform, token: &str) -> reqwest::Response {
    platform
        .http
        .get(platform.url(&format!("/reset/{token}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}
