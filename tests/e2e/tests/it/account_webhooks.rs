//! Account webhooks and the apps' view of their customers: an app is told,
//! signed per Standard Webhooks (checked by the reference verifier), when an
//! org installs or uninstalls it and when members join, change role or leave;
//! failed deliveries are retried; an app reads only the orgs that installed it.

use std::time::Duration;

use crate::fanout_support::{verify_with_python, Post, Receiver};
use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An app with an account webhook URL: (id, key, secret, webhook secret).
async fn app_with_account_webhook(
    hub: &HubClient,
    token: &str,
    url: &str,
) -> Result<(String, String, String, String)> {
    let body = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/hub/v1/apps",
            Some(&bearer(token)),
            Some(json!({"name": "Books", "stack": "cloud", "account_webhook_url": url, "shared_entities": []})),
        )
        .await?;
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    Ok((
        s(&body["id"]),
        s(&body["credentials"]["key"]),
        s(&body["credentials"]["secret"]),
        s(&body["webhook_secret"]),
    ))
}

/// The accepted (2xx) webhooks, in arrival order, as (type, body).
fn accepted(receiver: &Receiver) -> Vec<Post> {
    receiver
        .posts()
        .into_iter()
        .filter(|p| (200..300).contains(&p.status))
        .collect()
}

async fn wait_accepted(receiver: &Receiver, n: usize) -> Vec<Post> {
    mno_harness::wait_for(
        &format!("{n} account webhooks"),
        Duration::from_secs(30),
        || async {
            let posts = accepted(receiver);
            (posts.len() >= n).then_some(posts)
        },
    )
    .await
}

#[tokio::test]
async fn apps_are_told_of_installs_and_members_signed_and_retried() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let receiver = Receiver::start().await;
    let (_, token) = hub.signup_and_login("owner@example.com").await?;
    let org = hub.create_org(&token, "Acme", "USD").await?;
    let (app, _, _, webhook_secret) =
        app_with_account_webhook(&hub, &token, &receiver.url()).await?;
    let (_, bob_token) = hub.signup_and_login("bob@example.com").await?;

    // The first attempt of every webhook fails: each is retried and then taken.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    receiver.answer_with(move |post| {
        if seen.lock().unwrap().insert(post.webhook_id.clone()) {
            (503, "{}".into())
        } else {
            (200, "{}".into())
        }
    });

    hub.install(&token, &org, &app).await?;
    hub.add_member(&token, &org, "bob@example.com", "member", &bob_token)
        .await?;
    let members = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/members"),
            Some(&bearer(&token)),
            None,
        )
        .await?;
    let bob = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.expect(
        StatusCode::OK,
        Method::PATCH,
        &format!("/hub/v1/orgs/{org}/members/{bob}"),
        Some(&bearer(&token)),
        Some(json!({"role": "admin"})),
    )
    .await?;
    hub.remove_member(&token, &org, &bob).await?;
    hub.uninstall(&token, &org, &app).await?;

    let posts = wait_accepted(&receiver, 5).await;
    let types: Vec<&str> = posts
        .iter()
        .map(|p| p.body["type"].as_str().unwrap())
        .collect();
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "app.installed",
            "app.uninstalled",
            "member.added",
            "member.removed",
            "member.role_changed"
        ],
        "{types:?}"
    );
    let of = |kind: &str| {
        posts
            .iter()
            .find(|p| p.body["type"] == kind)
            .unwrap()
            .body
            .clone()
    };
    assert_eq!(of("app.installed")["data"]["org"]["id"], org);
    assert_eq!(of("app.installed")["data"]["org"]["name"], "Acme");
    assert_eq!(
        of("member.added")["data"]["member"]["email"],
        "bob@example.com"
    );
    assert_eq!(of("member.added")["data"]["member"]["role"], "member");
    assert_eq!(of("member.role_changed")["data"]["member"]["role"], "admin");
    assert_eq!(
        of("member.role_changed")["data"]["member"]["previous_role"],
        "member"
    );
    assert_eq!(of("member.removed")["data"]["member"]["user_id"], bob);
    // Each was refused once, then retried under the same webhook-id.
    let all = receiver.posts();
    for post in &posts {
        let tries = all
            .iter()
            .filter(|p| p.webhook_id == post.webhook_id)
            .count();
        assert_eq!(tries, 2, "{}", post.body);
    }
    // The reference verifier accepts every signature (and refuses tampered copies).
    assert_eq!(verify_with_python(&[webhook_secret], &posts), 5);

    // Uninstalled: a member who joins now is not the app's business.
    hub.add_member(&token, &org, "bob@example.com", "member", &bob_token)
        .await?;
    hub.install(&token, &org, &app).await?;
    let after = wait_accepted(&receiver, 6).await;
    let late: Vec<&str> = after[5..]
        .iter()
        .map(|p| p.body["type"].as_str().unwrap())
        .collect();
    // The member event came first in the stream and went to no app.
    assert_eq!(late, vec!["app.installed"]);
    // Each is what the document's `account` webhook says.
    for post in &after {
        crate::fanout_support::assert_matches_webhook_schema(&platform, "account", &post.body)
            .await;
    }
    Ok(())
}

#[tokio::test]
async fn an_app_reads_its_customers_and_nothing_of_other_orgs() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub.org_with_app("owner@example.com", None, &[]).await?;
    let (_, ann_token) = hub.signup_and_login("ann@example.com").await?;
    hub.add_member(&token, &org, "ann@example.com", "power_user", &ann_token)
        .await?;
    let (_, other_org, other_app) = hub.org_with_app("other@example.com", None, &[]).await?;
    let auth = basic_auth(&app.key, &app.secret);

    let orgs = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/app/orgs",
            Some(&auth),
            None,
        )
        .await?;
    let list = orgs["orgs"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{orgs}");
    assert_eq!(list[0]["id"], org);
    assert_eq!(list[0]["currency"], "USD");
    assert_eq!(list[0]["data_sharing"], true);
    let members = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/app/orgs/{org}/members"),
            Some(&auth),
            None,
        )
        .await?;
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("owner@example.com".to_owned(), "super_admin".to_owned()),
            ("ann@example.com".to_owned(), "power_user".to_owned())
        ]
    );
    // Another org (existing or not): 404, for the org and its members.
    for target in [other_org.as_str(), "no-such-org"] {
        for path in [
            format!("/hub/v1/app/orgs/{target}"),
            format!("/hub/v1/app/orgs/{target}/members"),
        ] {
            let (status, body) = hub.call(Method::GET, &path, Some(&auth), None).await?;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
    }
    // The other app sees its own customer only.
    let other = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/app/orgs",
            Some(&basic_auth(&other_app.key, &other_app.secret)),
            None,
        )
        .await?;
    assert_eq!(other["orgs"].as_array().unwrap().len(), 1);
    assert_eq!(other["orgs"][0]["id"], other_org);
    // A user's session or bad credentials: 401.
    let user = hub.login("ann@example.com", TEST_PASSWORD).await?;
    for credentials in [bearer(&user), basic_auth(&app.key, "wrong")] {
        let (status, _) = hub
            .call(Method::GET, "/hub/v1/app/orgs", Some(&credentials), None)
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Uninstalled: gone from the view.
    hub.uninstall(&token, &org, &app.id).await?;
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/app/orgs/{org}/members"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}
