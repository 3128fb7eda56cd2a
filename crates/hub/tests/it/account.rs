//! A user managing their own account through the Hub's router, on SQLite and
//! PostgreSQL: the name, the password (other sessions end), signing out
//! everywhere, and one-time reset links. Every refusal changes nothing.

mno_harness::on_both_databases!(
    World;
    the_name_changes_by_the_rules_of_signup,
    a_password_change_ends_the_other_sessions_and_keeps_this_one,
    wrong_current_passwords_count_toward_the_signin_lockout,
    signing_out_everywhere_ends_every_session,
    a_reset_link_works_once,
    a_reset_link_does_not_work_after_its_hour,
    a_password_change_or_signing_out_everywhere_spends_open_reset_links,
    of_two_password_changes_at_once_one_wins_and_the_other_is_refused,
);

use std::time::Duration;

use crate::common::{call, wait_for_empty_outbox, World};
use axum::http::StatusCode;
use mno_events::subject::hub_kind;
use mno_hub::store::password_resets::{self, RESET_TTL};
use mno_hub::{Hub, HubConfig};
use serde_json::{json, Value};
use sqlx::AnyPool;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a whole new password";

/// What an account change could touch: users (names, hashes), sessions
/// (revocations), reset links (uses) and the outbox (events).
async fn fingerprint(pool: &AnyPool) -> Vec<String> {
    let mut out = Vec::new();
    let users: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT id, name, password_hash, updated_at FROM hub_users ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    out.extend(users.into_iter().map(|u| format!("{u:?}")));
    let sessions: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, revoked_at FROM hub_sessions ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    out.extend(sessions.into_iter().map(|s| format!("{s:?}")));
    let resets: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, used_at FROM hub_password_resets ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    out.extend(resets.into_iter().map(|r| format!("{r:?}")));
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hub_outbox")
        .fetch_one(pool)
        .await
        .unwrap();
    out.push(format!("outbox {events}"));
    out
}

/// A refusal: its status, code and pointer, and nothing changed.
async fn refused(
    hub: &Hub,
    request: (&str, &str, Option<&str>, Option<Value>),
    status: StatusCode,
    code: &str,
    pointer: Option<&str>,
) -> Value {
    let (method, path, token, body) = request;
    let before = fingerprint(&hub.store().pool).await;
    let (got, answer) = call(&hub.router(), method, path, token, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    assert_eq!(answer["errors"][0]["code"], code, "{answer}");
    if let Some(pointer) = pointer {
        assert_eq!(
            answer["errors"][0]["source"]["pointer"], pointer,
            "{answer}"
        );
    }
    assert_eq!(
        fingerprint(&hub.store().pool).await,
        before,
        "{method} {path} changed something"
    );
    answer
}

async fn sign_up(router: &axum::Router, email: &str) {
    let (status, body) = call(
        router,
        "POST",
        "/hub/v1/users",
        None,
        Some(json!({"email": email, "password": PASSWORD, "name": "Ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn sign_in(router: &axum::Router, email: &str, password: &str) -> (StatusCode, String) {
    let (status, body) = call(
        router,
        "POST",
        "/hub/v1/sessions",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await;
    (
        status,
        body["token"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn session_works(router: &axum::Router, token: &str) -> bool {
    let (status, _) = call(router, "GET", "/hub/v1/users/me", Some(token), None).await;
    status == StatusCode::OK
}

async fn the_name_changes_by_the_rules_of_signup(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let (_, token) = sign_in(&router, "ann@example.com", PASSWORD).await;
    let patch = |body: Value| {
        (
            "PATCH",
            "/hub/v1/users/me",
            Some(token.as_str()),
            Some(body),
        )
    };
    let blank = refused(
        &hub,
        patch(json!({"name": "   "})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/name"),
    )
    .await;
    assert!(
        blank["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("blank"),
        "{blank}"
    );
    for bad in [
        json!({"name": null}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "Ann\u{202E}"}),
        json!({"email": "bob@example.com"}),
    ] {
        refused(
            &hub,
            patch(bad),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        )
        .await;
    }
    // Without a session: 401, nothing changed.
    refused(
        &hub,
        (
            "PATCH",
            "/hub/v1/users/me",
            None,
            Some(json!({"name": "Eve"})),
        ),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    )
    .await;

    let (status, user) = call(
        &router,
        "PATCH",
        "/hub/v1/users/me",
        Some(&token),
        Some(json!({"name": "  Ann Smith "})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["name"], "Ann Smith");
    assert_eq!(user["email"], "ann@example.com");
    let (_, me) = call(&router, "GET", "/hub/v1/users/me", Some(&token), None).await;
    assert_eq!(me["name"], "Ann Smith");

    // The change is a user_updated event naming the field.
    wait_for_empty_outbox(&hub).await;
    let events = world.hub_events().await;
    let updated = events
        .iter()
        .find(|e| e.kind == hub_kind::USER_UPDATED)
        .expect("a user_updated event");
    let payload: Value = serde_json::from_slice(&updated.payload).unwrap();
    assert_eq!(payload["changed_fields"], json!(["name"]), "{payload}");
    assert_eq!(payload["name"], "Ann Smith");
    hub.shutdown().await;
}

async fn a_password_change_ends_the_other_sessions_and_keeps_this_one(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    sign_up(&router, "bob@example.com").await;
    let (_, here) = sign_in(&router, "ann@example.com", PASSWORD).await;
    let (_, elsewhere) = sign_in(&router, "ann@example.com", PASSWORD).await;
    let (_, bobs) = sign_in(&router, "bob@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| {
        (
            "POST",
            "/hub/v1/users/me/password",
            Some(here.as_str()),
            Some(json!({"current_password": current, "new_password": new})),
        )
    };

    let wrong = refused(
        &hub,
        change("not my password", NEW_PASSWORD),
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_password",
        Some("/current_password"),
    )
    .await;
    assert!(
        wrong["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("the current password is wrong"),
        "{wrong}"
    );
    let weak = refused(
        &hub,
        change(PASSWORD, "short"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/new_password"),
    )
    .await;
    assert!(
        weak["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("at least 10"),
        "{weak}"
    );
    refused(
        &hub,
        change(PASSWORD, "          "),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/new_password"),
    )
    .await;
    refused(
        &hub,
        change(PASSWORD, PASSWORD),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/new_password"),
    )
    .await;
    refused(
        &hub,
        (
            "POST",
            "/hub/v1/users/me/password",
            Some(here.as_str()),
            Some(json!({"new_password": NEW_PASSWORD})),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/current_password"),
    )
    .await;
    assert!(session_works(&router, &elsewhere).await);

    let (status, answer) = call(
        &router,
        "POST",
        "/hub/v1/users/me/password",
        Some(&here),
        Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sessions_ended"], 1, "{answer}");
    assert_eq!(answer["user"]["email"], "ann@example.com");
    assert!(
        session_works(&router, &here).await,
        "the caller's session stays"
    );
    assert!(
        !session_works(&router, &elsewhere).await,
        "the other session ended"
    );
    assert!(
        session_works(&router, &bobs).await,
        "another user's session is not touched"
    );
    let (status, _) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    let (status, _) = sign_in(&router, "ann@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);

    // The ended session is a session_revoked event (back-channel logout acts on it).
    wait_for_empty_outbox(&hub).await;
    let revoked = world
        .hub_events()
        .await
        .into_iter()
        .filter(|e| e.kind == hub_kind::SESSION_REVOKED)
        .count();
    assert_eq!(revoked, 1);
    hub.shutdown().await;
}

async fn wrong_current_passwords_count_toward_the_signin_lockout(world: &World) {
    let hub = world
        .hub(HubConfig {
            login_failures_per_email: 3,
            ..HubConfig::default()
        })
        .await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let (_, token) = sign_in(&router, "ann@example.com", PASSWORD).await;
    for _ in 0..3 {
        let (status, _) = call(
            &router,
            "POST",
            "/hub/v1/users/me/password",
            Some(&token),
            Some(json!({"current_password": "a wrong guess", "new_password": NEW_PASSWORD})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Locked: signing in, even with the right password, and changing it.
    let (status, _) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let answer = refused(
        &hub,
        (
            "POST",
            "/hub/v1/users/me/password",
            Some(token.as_str()),
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        ),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        None,
    )
    .await;
    assert!(
        answer["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("wait"),
        "{answer}"
    );
    hub.shutdown().await;
}

async fn signing_out_everywhere_ends_every_session(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    sign_up(&router, "bob@example.com").await;
    let mut anns = Vec::new();
    for _ in 0..3 {
        anns.push(sign_in(&router, "ann@example.com", PASSWORD).await.1);
    }
    let (_, bobs) = sign_in(&router, "bob@example.com", PASSWORD).await;
    refused(
        &hub,
        ("DELETE", "/hub/v1/sessions", None, None),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    )
    .await;
    let (status, _) = call(&router, "DELETE", "/hub/v1/sessions", Some(&anns[1]), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in &anns {
        assert!(!session_works(&router, token).await, "every session ended");
    }
    assert!(session_works(&router, &bobs).await, "not another user's");
    let (status, _) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "signing in again works");
    hub.shutdown().await;
}

async fn a_reset_link_works_once(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let (_, old_session) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert!(
        password_resets::issue(hub.store(), "nobody@example.com", RESET_TTL)
            .await
            .unwrap()
            .is_none()
    );
    let link = password_resets::issue(hub.store(), "ann@example.com", RESET_TTL)
        .await
        .unwrap()
        .unwrap();
    let token = link.token.as_str();
    // Another link of the same user, still unused, is spent with the one used.
    let other_link = password_resets::issue(hub.store(), "ann@example.com", RESET_TTL)
        .await
        .unwrap()
        .unwrap();
    // Only the hash is stored.
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM hub_password_resets WHERE token_hash = $1")
            .bind(token)
            .fetch_one(&hub.store().pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);

    let (status, found) = call(
        &router,
        "POST",
        "/hub/v1/password_resets/lookup",
        None,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["email"], "ann@example.com");

    let redeem = |token: &str, password: &str| {
        (
            "POST",
            "/hub/v1/password_resets/redeem",
            None,
            Some(json!({"token": token, "password": password})),
        )
    };
    refused(
        &hub,
        redeem(token, "short"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/password"),
    )
    .await;
    refused(
        &hub,
        redeem("mpr_not-a-link", NEW_PASSWORD),
        StatusCode::NOT_FOUND,
        "not_found",
        Some("/token"),
    )
    .await;
    refused(
        &hub,
        (
            "POST",
            "/hub/v1/password_resets/redeem",
            None,
            Some(json!({"password": NEW_PASSWORD})),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("/token"),
    )
    .await;
    assert!(session_works(&router, &old_session).await);

    let (status, answer) = call(
        &router,
        "POST",
        "/hub/v1/password_resets/redeem",
        None,
        Some(json!({"token": token, "password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sessions_ended"], 1);
    assert!(
        !session_works(&router, &old_session).await,
        "every session ended"
    );
    let (status, _) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sign_in(&router, "ann@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);

    // Once only: used, it answers 410 and changes nothing.
    let again = refused(
        &hub,
        redeem(token, "yet another password"),
        StatusCode::GONE,
        "reset_link_used",
        Some("/token"),
    )
    .await;
    assert!(
        again["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("ask the platform's operator for a new link"),
        "{again}"
    );
    refused(
        &hub,
        (
            "POST",
            "/hub/v1/password_resets/lookup",
            None,
            Some(json!({"token": token})),
        ),
        StatusCode::GONE,
        "reset_link_used",
        None,
    )
    .await;
    let (status, _) = sign_in(&router, "ann@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    refused(
        &hub,
        redeem(&other_link.token, "yet another password"),
        StatusCode::GONE,
        "reset_link_used",
        Some("/token"),
    )
    .await;
    hub.shutdown().await;
}

async fn a_reset_link_does_not_work_after_its_hour(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let link = password_resets::issue(hub.store(), "ann@example.com", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for (path, body) in [
        (
            "/hub/v1/password_resets/lookup",
            json!({"token": link.token}),
        ),
        (
            "/hub/v1/password_resets/redeem",
            json!({"token": link.token, "password": NEW_PASSWORD}),
        ),
    ] {
        let answer = refused(
            &hub,
            ("POST", path, None, Some(body)),
            StatusCode::GONE,
            "reset_link_expired",
            Some("/token"),
        )
        .await;
        assert!(
            answer["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{answer}"
        );
    }
    let (status, _) = sign_in(&router, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "the password is unchanged");
    hub.shutdown().await;
}

async fn lookup(router: &axum::Router, token: &str) -> (StatusCode, Value) {
    call(
        router,
        "POST",
        "/hub/v1/password_resets/lookup",
        None,
        Some(json!({"token": token})),
    )
    .await
}

/// From an outside trial: a reset link made before a password change (or a
/// sign-out everywhere) still reset the password for the rest of its hour,
/// so a link that leaked undid the user's own recovery.
async fn a_password_change_or_signing_out_everywhere_spends_open_reset_links(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let (_, session) = sign_in(&router, "ann@example.com", PASSWORD).await;

    let before_change = password_resets::issue(hub.store(), "ann@example.com", RESET_TTL)
        .await
        .unwrap()
        .unwrap();
    let (status, _) = lookup(&router, &before_change.token).await;
    assert_eq!(status, StatusCode::OK, "a fresh link works");
    let (status, changed) = call(
        &router,
        "POST",
        "/hub/v1/users/me/password",
        Some(&session),
        Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (status, answer) = lookup(&router, &before_change.token).await;
    assert_eq!(status, StatusCode::GONE, "{answer}");
    assert_eq!(answer["errors"][0]["code"], "reset_link_used", "{answer}");

    let before_sign_out = password_resets::issue(hub.store(), "ann@example.com", RESET_TTL)
        .await
        .unwrap()
        .unwrap();
    let (status, _) = call(&router, "DELETE", "/hub/v1/sessions", Some(&session), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = lookup(&router, &before_sign_out.token).await;
    assert_eq!(status, StatusCode::GONE, "{answer}");
    // The password is still the one Ann chose.
    assert_eq!(
        sign_in(&router, "ann@example.com", NEW_PASSWORD).await.0,
        StatusCode::CREATED
    );
}

/// From an outside trial: two sessions changing the password at the same
/// moment both heard 200, though only one password took and both sessions
/// had ended. One change wins; the other is refused and changes nothing.
async fn of_two_password_changes_at_once_one_wins_and_the_other_is_refused(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let router = hub.router();
    sign_up(&router, "ann@example.com").await;
    let (_, first) = sign_in(&router, "ann@example.com", PASSWORD).await;
    let (_, second) = sign_in(&router, "ann@example.com", PASSWORD).await;
    let change = |token: String, new_password: &'static str| {
        let router = router.clone();
        async move {
            let (status, answer) = call(
                &router,
                "POST",
                "/hub/v1/users/me/password",
                Some(&token),
                Some(json!({"current_password": PASSWORD, "new_password": new_password})),
            )
            .await;
            (status, answer, token, new_password)
        }
    };
    let (a, b) = tokio::join!(
        change(first, "the first new password"),
        change(second, "the second new password")
    );
    let (winner, loser) = match (a.0, b.0) {
        (StatusCode::OK, StatusCode::OK) => panic!("both changes answered 200: {} / {}", a.1, b.1),
        (StatusCode::OK, _) => (a, b),
        (_, StatusCode::OK) => (b, a),
        _ => panic!("neither change took: {} / {}", a.1, b.1),
    };
    // The loser was refused: the other change won (422), or had already ended its session (401).
    assert!(
        [StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNAUTHORIZED].contains(&loser.0),
        "{} {}",
        loser.0,
        loser.1
    );
    assert!(
        session_works(&router, &winner.2).await,
        "the winner stays signed in"
    );
    assert!(
        !session_works(&router, &loser.2).await,
        "the loser's session ended with the change"
    );
    assert_eq!(
        sign_in(&router, "ann@example.com", winner.3).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        sign_in(&router, "ann@example.com", loser.3).await.0,
        StatusCode::UNAUTHORIZED
    );
}
