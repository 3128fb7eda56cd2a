//! KPIs and alerts: a KPI on the P&L's revenue with a maximum; records
//! written through the Connec! API move the value across the target and back;
//! each crossing raises one alert (none while it stays out), listed, published
//! on HUB as `kpi_alert`, and POSTed to a real receiver, signed so that the
//! reference Standard Webhooks package verifies it. Bad KPIs store nothing.

use std::time::Duration;

use crate::fanout_support::{verify_with_python, Receiver};
use mno_e2e::impac_client::ImpacWorld;
use mno_e2e::TestPlatform;
use mno_events::consume::{replay_until_caught_up, ReplayFrom};
use mno_events::proto::HubEvent;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(
    world: &ImpacWorld,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = world
        .platform
        .http
        .request(method, world.platform.url(path))
        .header("Authorization", &world.auth);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn invoice(total: &str) -> Value {
    json!({"invoices": {"type": "CUSTOMER", "status": "AUTHORISED", "transaction_date": "2026-03-01",
                        "due_date": "2026-04-01", "currency": "USD", "total_amount": total, "balance": total}})
}

/// The world's org's KPIs.
async fn kpis(world: &ImpacWorld) -> Value {
    let path = format!("/impac/api/v2/kpis?org_ids[]={}", world.org);
    let (status, body) = call(world, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["kpis"].clone()
}

/// Wait until the KPI has been evaluated at `value`; its state then.
async fn kpi_at(world: &ImpacWorld, value: &str) -> Value {
    mno_harness::wait_for(
        &format!("the KPI at {value}"),
        Duration::from_secs(20),
        || async {
            let kpi = kpis(world).await.get(0)?.clone();
            (kpi["value"] == value).then_some(kpi)
        },
    )
    .await
}

async fn alerts(world: &ImpacWorld) -> Vec<Value> {
    let (status, body) = call(
        world,
        Method::GET,
        &format!("/impac/api/v2/alerts?org_ids[]={}", world.org),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

const READS: &[&str] = &["invoices", "organizations", "people"];

#[tokio::test]
async fn an_alert_is_raised_once_per_crossing_published_and_sent_signed() {
    crossings(ImpacWorld::start("kpi-owner@example.com", READS).await).await;
}

#[tokio::test]
async fn kpis_and_alerts_work_the_same_on_postgresql() {
    // A cluster of its own: on the shared one this test once missed its 20 s wait for a KPI.
    let pg = mno_harness::Postgres::start();
    let platform = TestPlatform::spawn_with(|c| c.database_url = Some(pg.url())).await;
    crossings(ImpacWorld::start_on(platform, "kpi-owner@example.com", READS).await).await;
}

async fn crossings(world: ImpacWorld) {
    let receiver = Receiver::start().await;
    let org = world.org.clone();

    // Bad KPIs: each refused with a pointer, nothing stored.
    let good = json!({"org_ids": [org], "widget": "accounts/profit_and_loss", "element": "totals.revenue",
                      "target": {"max": "1000"}, "alert": {"webhook": receiver.url()},
                      "params": {"currency": "USD", "from": "2026-01-01", "to": "2026-12-31"}});
    let with = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    for (body, status, pointer) in [
        (
            with("/widget", json!("accounts/nope")),
            StatusCode::NOT_FOUND,
            "/widget",
        ),
        (
            with("/element", json!("totals.nett")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/element",
        ),
        (
            with("/target", json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/target",
        ),
        (
            with("/target", json!({"max": "lots"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/target/max",
        ),
        (
            with("/alert", json!({"webhook": "not a url"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/alert/webhook",
        ),
        (
            with("/params", json!({"period": "HOURLY"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/params/period",
        ),
        // Misspelled, or `as_of` (a KPI follows the live widget): refused, not stored unused.
        (
            with("/params", json!({"perod": "DAILY"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/params/perod",
        ),
        (
            with("/params", json!({"as_of": "2"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/params/as_of",
        ),
    ] {
        let (got, answer) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
        assert_eq!(got, status, "{answer}");
        if !pointer.is_empty() {
            assert_eq!(
                answer["errors"][0]["source"]["pointer"], pointer,
                "{answer}"
            );
        }
    }
    assert_eq!(
        kpis(&world).await,
        json!([]),
        "nothing stored by bad requests"
    );

    // The KPI: revenue at most 1000. At 0 it is inside: no alert.
    let (status, created) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["kpi"]["value"], "0");
    assert_eq!(created["kpi"]["breached"], false);

    world
        .write(Method::POST, "/invoices", Some(invoice("600")))
        .await;
    kpi_at(&world, "600").await;
    assert!(alerts(&world).await.is_empty());

    // Crossing: one alert.
    let (second, _) = world
        .write(Method::POST, "/invoices", Some(invoice("500")))
        .await;
    let second_id = second["invoices"]["id"].as_str().unwrap().to_owned();
    assert_eq!(kpi_at(&world, "1100").await["breached"], true);
    // Still outside: no new alert.
    world
        .write(Method::POST, "/invoices", Some(invoice("100")))
        .await;
    kpi_at(&world, "1200").await;
    assert_eq!(alerts(&world).await.len(), 1);

    // Back inside, then out again: a second alert.
    world
        .write(Method::DELETE, &format!("/invoices/{second_id}"), None)
        .await;
    assert_eq!(kpi_at(&world, "700").await["breached"], false);
    world
        .write(Method::POST, "/invoices", Some(invoice("450")))
        .await;
    kpi_at(&world, "1150").await;
    let listed = alerts(&world).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["value"], "1150", "newest first");
    assert_eq!(listed[1]["value"], "1100");
    assert_eq!(listed[0]["target"], json!({"max": "1000"}));

    // Both POSTed, verified by the reference implementation, one webhook-id each.
    let posts = mno_harness::wait_for("two alert webhooks", Duration::from_secs(20), || async {
        let posts = receiver.posts();
        (posts.len() >= 2).then_some(posts)
    })
    .await;
    assert_eq!(posts.len(), 2);
    assert_ne!(posts[0].webhook_id, posts[1].webhook_id);
    assert_eq!(posts[0].body["type"], "kpi.alert");
    assert_eq!(posts[0].body["alert"]["value"], "1100");
    assert_eq!(verify_with_python(&[secret], &posts), 2);
    for post in &posts {
        crate::fanout_support::assert_matches_webhook_schema(
            &world.platform,
            "kpi_alert",
            &post.body,
        )
        .await;
    }

    // Published on HUB as kpi_alert for the org.
    let js = world.platform.running().bus.js.clone();
    let mut published = Vec::new();
    replay_until_caught_up(
        &js,
        "HUB",
        &[format!("hub.{org}.kpi_alert")],
        ReplayFrom::Beginning,
        None,
        |m| {
            published.push(HubEvent::from_bytes(&m.payload).unwrap());
            true
        },
    )
    .await
    .unwrap();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].kind, "kpi_alert");

    // Deleting the KPI stops it.
    let kpi_id = created["kpi"]["id"].as_str().unwrap();
    let (status, _) = call(
        &world,
        Method::DELETE,
        &format!("/impac/api/v2/kpis/{kpi_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kpis(&world).await, json!([]));
}

#[tokio::test]
async fn deleting_another_orgs_kpi_answers_as_an_unknown_kpi_and_names_no_org() {
    let world = ImpacWorld::start("kpi-owner@example.com", READS).await;
    let body = json!({"org_ids": [world.org], "widget": "accounts/profit_and_loss",
                      "element": "totals.revenue", "target": {"max": "1000"}, "alert": {"inapp": true}});
    let (status, created) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["kpi"]["id"].as_str().unwrap().to_owned();

    // A signed-in user of another org only.
    let hub = mno_e2e::hub_client::HubClient::new(&world.platform.base_url);
    let (_, stranger) = hub
        .signup_and_login("kpi-stranger@example.com")
        .await
        .unwrap();
    hub.create_org(&stranger, "Elsewhere", "USD").await.unwrap();
    let delete = |auth: String| {
        let url = world.platform.url(&format!("/impac/api/v2/kpis/{id}"));
        let http = world.platform.http.clone();
        async move {
            let response = http
                .delete(url)
                .header("Authorization", auth)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, answer) = delete(mno_e2e::hub_client::bearer(&stranger)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(!answer.contains(&world.org), "names the org: {answer}");
    // Same answer as a KPI that does not exist.
    let unknown = answer.replace(&id, "nope");
    let (_, none) = {
        let url = world.platform.url("/impac/api/v2/kpis/nope");
        let response = world
            .platform
            .http
            .delete(url)
            .header("Authorization", mno_e2e::hub_client::bearer(&stranger))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(unknown, none);
    assert_eq!(kpis(&world).await.as_array().unwrap().len(), 1, "kept");
    // Without credentials it is still 401, and the owner still deletes it.
    let (status, _) = delete(String::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = delete(world.auth.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

#[tokio::test]
async fn kpi_alert_webhooks_take_the_platforms_one_url_check() {
    let platform = TestPlatform::spawn_with(|c| c.allow_private_webhooks = false).await;
    let world = ImpacWorld::start_on(platform, "kpi-owner@example.com", READS).await;
    for url in [
        "http://localhost:9/x",
        "http://api.localhost/x",
        "http://198.18.0.1/x",
        "http://240.0.0.1/x",
        "http://192.0.0.8/x",
        "http://[::127.0.0.1]/x",
        "http://[64:ff9b::10.0.0.1]/x",
        "http://[2002:7f00:1::]/x",
        "https://user:pass@alerts.example.com/x",
    ] {
        let body = json!({"org_ids": [world.org], "widget": "accounts/profit_and_loss",
                          "element": "totals.revenue", "target": {"max": "1000"}, "alert": {"webhook": url}});
        let (status, answer) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        assert_eq!(
            answer["errors"][0]["source"]["pointer"], "/alert/webhook",
            "{answer}"
        );
    }
    assert_eq!(kpis(&world).await, json!([]), "nothing stored");
    let body = json!({"org_ids": [world.org], "widget": "accounts/profit_and_loss",
                      "element": "totals.revenue", "target": {"max": "1000"},
                      "alert": {"webhook": "https://alerts.example.com/hook"}});
    let (status, answer) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// A webhook KPI sends an org's figures out of the platform: once its creator
/// no longer reads the org (a member removed, an app uninstalled), its alerts
/// are still raised and listed, but the webhook is not sent, and says why.
#[tokio::test]
async fn a_webhook_kpi_whose_creator_lost_access_sends_nothing() {
    let world = ImpacWorld::start("kpi-owner@example.com", READS).await;
    let receiver = Receiver::start().await;
    let hub = mno_e2e::hub_client::HubClient::new(&world.platform.base_url);
    let org = world.org.clone();
    let owner = world.owner_token().to_owned();
    let kpi = |max: &str| {
        json!({"org_ids": [org], "widget": "accounts/profit_and_loss", "element": "totals.revenue",
               "target": {"max": max}, "alert": {"webhook": receiver.url()},
               "params": {"currency": "USD", "from": "2026-01-01", "to": "2026-12-31"}})
    };
    let create = |auth: String, body: Value| {
        let world = &world;
        async move {
            let response = world
                .platform
                .http
                .post(world.platform.url("/impac/api/v2/kpis"))
                .header("Authorization", auth)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    };

    // A member's KPI, then the member is removed.
    let (member, member_token) = hub
        .signup_and_login("kpi-member@example.com")
        .await
        .unwrap();
    hub.add_member(
        &owner,
        &org,
        "kpi-member@example.com",
        "member",
        &member_token,
    )
    .await
    .unwrap();
    create(mno_e2e::hub_client::bearer(&member_token), kpi("100")).await;
    // An app's KPI, then the app is uninstalled.
    let watcher = hub
        .create_app(&owner, "Watcher", None, &[("invoices", true, false)])
        .await
        .unwrap();
    hub.install(&owner, &org, &watcher.id).await.unwrap();
    create(
        mno_e2e::hub_client::basic_auth(&watcher.key, &watcher.secret),
        kpi("200"),
    )
    .await;
    hub.remove_member(&owner, &org, &member.id).await.unwrap();
    hub.uninstall(&owner, &org, &watcher.id).await.unwrap();

    // Both cross their targets: two alerts, neither sent.
    world
        .write(Method::POST, "/invoices", Some(invoice("500")))
        .await;
    let listed = mno_harness::wait_for(
        "both alerts with what became of their webhooks",
        Duration::from_secs(30),
        || async {
            let listed = alerts(&world).await;
            (listed.len() == 2
                && listed
                    .iter()
                    .all(|a| a["webhook"].as_str() != Some("pending")))
            .then_some(listed)
        },
    )
    .await;
    for alert in &listed {
        let webhook = alert["webhook"].as_str().unwrap_or_default();
        assert!(
            webhook.starts_with("not sent: the KPI's creator no longer reads"),
            "{alert}"
        );
    }
    assert!(receiver.posts().is_empty(), "{:?}", receiver.posts());

    // A KPI of a creator who still reads is sent as before.
    create(world.auth.clone(), kpi("300")).await;
    world
        .write(Method::POST, "/invoices", Some(invoice("1")))
        .await;
    let posts = mno_harness::wait_for(
        "the still-allowed KPI's alert",
        Duration::from_secs(30),
        || async {
            let posts = receiver.posts();
            (!posts.is_empty()).then_some(posts)
        },
    )
    .await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["alert"]["target"], json!({"max": "300"}));
}

/// A KPI is deleted by its creator or by an admin of its orgs; a member who
/// only reads may not remove another's KPI (its alerts).
#[tokio::test]
async fn only_a_kpis_creator_or_an_admin_deletes_it() {
    let world = ImpacWorld::start("kpi-owner@example.com", READS).await;
    let hub = mno_e2e::hub_client::HubClient::new(&world.platform.base_url);
    let org = world.org.clone();
    let owner = world.owner_token().to_owned();
    let mut members = Vec::new();
    for email in ["kpi-a@example.com", "kpi-b@example.com"] {
        let (_, token) = hub.signup_and_login(email).await.unwrap();
        hub.add_member(&owner, &org, email, "member", &token)
            .await
            .unwrap();
        members.push(mno_e2e::hub_client::bearer(&token));
    }
    let send = |method: Method, path: String, auth: String, body: Option<Value>| {
        let world = &world;
        async move {
            let mut request = world
                .platform
                .http
                .request(method, world.platform.url(&path))
                .header("Authorization", auth);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let body = json!({"org_ids": [org], "widget": "accounts/profit_and_loss", "element": "totals.revenue",
                      "target": {"max": "1000"}, "alert": {"inapp": true}});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, created) = send(
            Method::POST,
            "/impac/api/v2/kpis".into(),
            members[0].clone(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["kpi"]["id"].as_str().unwrap().to_owned());
    }
    let delete = |id: &str| format!("/impac/api/v2/kpis/{id}");
    // Another member: refused, and the KPI stays.
    let (status, refused) = send(Method::DELETE, delete(&ids[0]), members[1].clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("creator or an admin"),
        "{refused}"
    );
    assert_eq!(kpis(&world).await.as_array().unwrap().len(), 2);
    // The creator, and the owner (an admin): deleted.
    let (status, _) = send(Method::DELETE, delete(&ids[0]), members[0].clone(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        Method::DELETE,
        delete(&ids[1]),
        mno_e2e::hub_client::bearer(&owner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kpis(&world).await, json!([]));
}

/// A KPI's value, and its alerts', is its widget's figure: an app of the org
/// that is not shared the widget's collections does not see them listed.
#[tokio::test]
async fn kpis_and_alerts_are_listed_only_to_who_may_read_their_widget() {
    let world = ImpacWorld::start("kpi-reader@example.com", READS).await;
    let hub = mno_e2e::hub_client::HubClient::new(&world.platform.base_url);
    let owner = world.owner_token().to_owned();
    let body = json!({"org_ids": [world.org], "widget": "accounts/profit_and_loss", "element": "totals.revenue",
                      "target": {"max": "100"}, "alert": {"inapp": true}});
    let (status, created) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = call(
        &world,
        Method::POST,
        &format!("/connec/api/v2/{}/invoices", world.org),
        Some(invoice("777")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    kpi_at(&world, "777").await;
    mno_harness::wait_for("the alert", Duration::from_secs(20), || async {
        (!alerts(&world).await.is_empty()).then_some(())
    })
    .await;

    let items_only = hub
        .create_app(&owner, "ItemsOnly", None, &[("items", true, false)])
        .await
        .unwrap();
    hub.install(&owner, &world.org, &items_only.id)
        .await
        .unwrap();
    let auth = mno_e2e::hub_client::basic_auth(&items_only.key, &items_only.secret);
    for (path, list) in [
        (
            format!("/impac/api/v2/kpis?org_ids[]={}", world.org),
            "kpis",
        ),
        (
            format!("/impac/api/v2/alerts?org_ids[]={}", world.org),
            "alerts",
        ),
    ] {
        let response = world
            .platform
            .http
            .get(world.platform.url(&path))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body[list], json!([]), "{list}: {body}");
    }
    // Who may read the widget still sees both.
    assert_eq!(kpis(&world).await.as_array().unwrap().len(), 1);
    assert_eq!(alerts(&world).await.len(), 1);
}

/// An alert's value is a figure over every org its KPI watches: a KPI over
/// orgs A and B files its alerts under A, but they are listed only to who
/// names and may read both, like the KPI itself (from an outside audit: A's
/// members and apps saw B's revenue through them).
#[tokio::test]
async fn an_alert_over_two_orgs_is_listed_only_to_who_may_read_both() {
    let world = ImpacWorld::start("kpi-two-orgs@example.com", READS).await;
    let hub = mno_e2e::hub_client::HubClient::new(&world.platform.base_url);
    let owner = world.owner_token().to_owned();
    let other = world.add_org("Second", "USD").await;
    world
        .write_in(&other, Method::POST, "/invoices", Some(invoice("424242")))
        .await;
    let body = json!({"org_ids": [world.org, other], "widget": "accounts/profit_and_loss",
                      "element": "totals.revenue", "target": {"max": "100"}, "alert": {"inapp": true}});
    let (status, created) = call(&world, Method::POST, "/impac/api/v2/kpis", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // The owner reads both: naming both lists the alert; naming A alone does not.
    let as_owner = |orgs: String| {
        let world = &world;
        let owner = owner.clone();
        async move {
            let response = world
                .platform
                .http
                .get(world.platform.url(&format!("/impac/api/v2/alerts?{orgs}")))
                .bearer_auth(&owner)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()["alerts"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let both = format!("org_ids[]={}&org_ids[]={}", world.org, other);
    let listed = mno_harness::wait_for("the alert", Duration::from_secs(20), || async {
        let listed = as_owner(both.clone()).await;
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed[0]["value"], "424242", "{listed:?}");
    assert_eq!(
        as_owner(format!("org_ids[]={}", world.org)).await,
        Vec::<Value>::new()
    );

    // A member of A only, and an app installed in A only, never see it.
    let (member, member_token) = hub
        .signup_and_login("kpi-a-only@example.com")
        .await
        .unwrap();
    hub.add_member(&owner, &world.org, &member.email, "member", &member_token)
        .await
        .unwrap();
    let a_only = hub
        .create_app(&owner, "A only", None, &[("invoices", true, false)])
        .await
        .unwrap();
    hub.install(&owner, &world.org, &a_only.id).await.unwrap();
    for auth in [
        format!("Bearer {member_token}"),
        mno_e2e::hub_client::basic_auth(&a_only.key, &a_only.secret),
    ] {
        let response = world
            .platform
            .http
            .get(
                world
                    .platform
                    .url(&format!("/impac/api/v2/alerts?org_ids[]={}", world.org)),
            )
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["alerts"], json!([]), "{auth}: {body}");
        assert!(!body.to_string().contains("424242"), "{body}");
    }
}
