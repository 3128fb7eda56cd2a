//! The Hub end to end: users, sessions, orgs, members, apps, installs and the
//! IDM check, through the platform's HTTP edge against a real nats-server and SQLite.

use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::json;

mno_harness::on_both_databases!(
    TestPlatform;
    a_service_apart_sees_revocations_through_its_cache,
    concurrent_changes_all_land_with_one_event_each,
    a_user_signs_up_creates_an_org_and_an_app_and_the_idm_check_follows_installs,
    members_read_by_role_and_lose_access_when_removed,
    a_signed_out_session_stops_working,
    an_app_reads_its_own_settings_with_basic_auth_and_never_sees_a_secret,
);

fn session(token: &str) -> serde_json::Value {
    json!({"type": "session", "token": token})
}

fn app_credential(key: &str, secret: &str) -> serde_json::Value {
    json!({"type": "app", "key": key, "secret": secret})
}

async fn a_user_signs_up_creates_an_org_and_an_app_and_the_idm_check_follows_installs(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);

    let (ann, token) = hub.signup_and_login("ann@example.com").await?;
    let me = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/users/me",
            Some(&bearer(&token)),
            None,
        )
        .await?;
    assert_eq!(me["id"], ann.id);
    assert!(me.get("password_hash").is_none(), "{me}");

    let org = hub.create_org(&token, "Acme", "usd").await?;
    let orgs = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/orgs",
            Some(&bearer(&token)),
            None,
        )
        .await?;
    assert_eq!(orgs["orgs"][0]["id"], org);
    assert_eq!(orgs["orgs"][0]["currency"], "USD");
    assert_eq!(orgs["orgs"][0]["role"], "super_admin");

    // The owner of the org reads and writes.
    let read = hub
        .check(session(&token), &org, Some("invoices"), "read")
        .await?;
    assert_eq!(read["allow"], true, "{read}");
    assert_eq!(read["principal"]["kind"], "user");
    assert_eq!(read["principal"]["role"], "super_admin");

    let app = hub
        .create_app(
            &token,
            "Books",
            None,
            &[("invoices", true, true), ("people", true, false)],
        )
        .await?;
    assert!(app.webhook_secret.starts_with("whsec_"));
    let creds = app_credential(&app.key, &app.secret);

    // Not installed yet: the app is known but denied.
    let before = hub
        .check(creds.clone(), &org, Some("invoices"), "read")
        .await?;
    assert_eq!(before["allow"], false, "{before}");
    assert_eq!(before["principal"]["id"], app.id);

    hub.install(&token, &org, &app.id).await?;
    let cases = [
        ("invoices", "read", true),
        ("invoices", "write", true),
        ("people", "read", true),
        ("people", "write", false),
        ("payments", "read", false),
    ];
    for (entity, action, allowed) in cases {
        let decision = hub.check(creds.clone(), &org, Some(entity), action).await?;
        assert_eq!(decision["allow"], allowed, "{entity} {action}: {decision}");
    }

    // Data sharing off: nothing; back on: allowed again; uninstalled: nothing.
    hub.set_data_sharing(&token, &org, &app.id, false).await?;
    let off = hub
        .check(creds.clone(), &org, Some("invoices"), "read")
        .await?;
    assert_eq!(off["allow"], false);
    assert!(
        off["reason"]
            .as_str()
            .unwrap()
            .contains("data sharing is off"),
        "{off}"
    );
    hub.set_data_sharing(&token, &org, &app.id, true).await?;
    assert_eq!(
        hub.check(creds.clone(), &org, Some("invoices"), "read")
            .await?["allow"],
        true
    );
    hub.uninstall(&token, &org, &app.id).await?;
    assert_eq!(
        hub.check(creds.clone(), &org, Some("invoices"), "read")
            .await?["allow"],
        false
    );

    // A wrong secret is no principal at all.
    let wrong = hub
        .check(
            app_credential(&app.key, "ms_wrong"),
            &org,
            Some("invoices"),
            "read",
        )
        .await?;
    assert_eq!(wrong["allow"], false);
    assert!(wrong["principal"].is_null(), "{wrong}");
    Ok(())
}

async fn members_read_by_role_and_lose_access_when_removed(platform: &TestPlatform) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (_, owner) = hub.signup_and_login("owner@example.com").await?;
    let (bob, bob_token) = hub.signup_and_login("bob@example.com").await?;
    let org = hub.create_org(&owner, "Acme", "EUR").await?;

    // Not a member: a valid principal, denied; the org API answers 403.
    let outsider = hub.check(session(&bob_token), &org, None, "read").await?;
    assert_eq!(outsider["allow"], false);
    assert_eq!(outsider["principal"]["id"], bob.id);
    let (status, body) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/orgs/{org}"),
            Some(&bearer(&bob_token)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    hub.add_member(&owner, &org, "bob@example.com", "member", &bob_token)
        .await?;
    let read = hub
        .check(session(&bob_token), &org, Some("invoices"), "read")
        .await?;
    let write = hub
        .check(session(&bob_token), &org, Some("invoices"), "write")
        .await?;
    assert_eq!(
        (read["allow"].clone(), write["allow"].clone()),
        (json!(true), json!(false))
    );

    hub.expect(
        StatusCode::OK,
        Method::PATCH,
        &format!("/hub/v1/orgs/{org}/members/{}", bob.id),
        Some(&bearer(&owner)),
        Some(json!({"role": "power_user"})),
    )
    .await?;
    let write = hub
        .check(session(&bob_token), &org, Some("invoices"), "write")
        .await?;
    assert_eq!(write["allow"], true, "{write}");

    hub.remove_member(&owner, &org, &bob.id).await?;
    let after = hub
        .check(session(&bob_token), &org, Some("invoices"), "read")
        .await?;
    assert_eq!(after["allow"], false, "{after}");
    Ok(())
}

async fn a_signed_out_session_stops_working(platform: &TestPlatform) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("carol@example.com").await?;
    hub.logout(&token).await?;
    let (status, body) = hub
        .call(Method::GET, "/hub/v1/users/me", Some(&bearer(&token)), None)
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["code"], "unauthorized");
    // Signing in again works.
    hub.login("carol@example.com", TEST_PASSWORD).await?;
    Ok(())
}

async fn an_app_reads_its_own_settings_with_basic_auth_and_never_sees_a_secret(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app(
            "dan@example.com",
            Some("http://127.0.0.1:9/hook"),
            &[("invoices", true, false)],
        )
        .await?;
    for auth in [bearer(&token), basic_auth(&app.key, &app.secret)] {
        let body = hub
            .expect(
                StatusCode::OK,
                Method::GET,
                &format!("/hub/v1/apps/{}", app.id),
                Some(&auth),
                None,
            )
            .await?;
        let text = body.to_string();
        assert!(
            !text.contains(&app.secret) && !text.contains(&app.webhook_secret),
            "{text}"
        );
        assert_eq!(body["credentials"][0]["key"], app.key);
        let installs = hub
            .expect(
                StatusCode::OK,
                Method::GET,
                &format!("/hub/v1/apps/{}/installs", app.id),
                Some(&auth),
                None,
            )
            .await?;
        assert_eq!(installs["installs"][0]["org_id"], org);
    }
    Ok(())
}

/// A service running apart asks over NATS through a `CachingIdm`: an uninstall
/// and a member removal reach it by Hub event, not by the cache's age.
async fn a_service_apart_sees_revocations_through_its_cache(platform: &TestPlatform) -> Result<()> {
    use mno_events::idm::{Action, CachingIdm, Credential, Idm, IdmRequest, NatsIdm};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub
        .org_with_app("owner@example.com", None, &[("invoices", true, true)])
        .await?;
    let (bob, bob_token) = hub.signup_and_login("bob@example.com").await?;
    hub.add_member(&token, &org, "bob@example.com", "member", &bob_token)
        .await?;

    let client = platform.nats.client().await;
    let cache = CachingIdm::start(
        Arc::new(NatsIdm::new(client.clone())),
        client,
        Duration::from_secs(3600),
    )
    .await?;
    let ask = |credential: Credential| IdmRequest {
        credential,
        org: org.clone(),
        entity: Some("invoices".into()),
        action: Action::Read,
    };
    let as_app = ask(Credential::App {
        key: app.key.clone(),
        secret: app.secret.clone(),
    });
    let as_bob = ask(Credential::Session {
        token: bob_token.clone(),
    });
    // Wait until both are allowed and cached (setup events may still be arriving).
    mno_harness::wait_for(
        "both allowed and cached",
        Duration::from_secs(10),
        || async {
            let a = cache.check(&as_app).await.ok()?.allow;
            let b = cache.check(&as_bob).await.ok()?.allow;
            (a && b && cache.cached() == 2).then_some(())
        },
    )
    .await;

    let started = Instant::now();
    hub.uninstall(&token, &org, &app.id).await?;
    mno_harness::wait_for(
        "the uninstall to reach the cache",
        Duration::from_secs(10),
        || async { (!cache.check(&as_app).await.ok()?.allow).then_some(()) },
    )
    .await;
    eprintln!(
        "uninstall reached a service apart in {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    hub.remove_member(&token, &org, &bob.id).await?;
    mno_harness::wait_for(
        "the removal to reach the cache",
        Duration::from_secs(10),
        || async { (!cache.check(&as_bob).await.ok()?.allow).then_some(()) },
    )
    .await;
    eprintln!(
        "member removal reached a service apart in {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Many changes at once (on SQLite too): every one lands, each with exactly
/// one Hub event, and outbox ids are unique.
async fn concurrent_changes_all_land_with_one_event_each(platform: &TestPlatform) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let hub = hub.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let org = hub.create_org(&token, &format!("Org {i}"), "USD").await?;
            let email = format!("user{i}@example.com");
            let (_, member) = hub.signup_and_login(&email).await?;
            hub.add_member(&token, &org, &email, "member", &member)
                .await?;
            anyhow::Ok(org)
        }));
    }
    let mut orgs = Vec::new();
    for task in tasks {
        orgs.push(task.await??);
    }
    let listed = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/orgs",
            Some(&bearer(&token)),
            None,
        )
        .await?;
    assert_eq!(listed["orgs"].as_array().unwrap().len(), 12);

    // 1 user + 12 x (org_created + member_added for the owner + user_created + member_added).
    let expected = 1 + 12 * 4;
    let js = platform.running().bus.js.clone();
    let ids = mno_harness::wait_for(
        "every event on HUB",
        std::time::Duration::from_secs(20),
        || {
            let js = js.clone();
            async move {
                let mut ids = Vec::new();
                mno_events::consume::replay_until_caught_up(
                    &js,
                    "HUB",
                    &["hub.>".to_owned()],
                    mno_events::consume::ReplayFrom::Beginning,
                    None,
                    |m| {
                        ids.push(
                            mno_events::proto::HubEvent::from_bytes(&m.payload)
                                .unwrap()
                                .outbox_id,
                        );
                        true
                    },
                )
                .await
                .ok()?;
                (ids.len() >= expected).then_some(ids)
            }
        },
    )
    .await;
    assert_eq!(ids.len(), expected);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), expected, "an outbox id was published twice");
    assert_eq!(ids, sorted, "events were published out of outbox order");
    Ok(())
}
