//! Sessions expire: the Hub's router alone (no gateway), on SQLite and PostgreSQL.

mno_harness::on_both_databases!(World; an_expired_session_is_refused_everywhere);

use std::time::Duration;

use crate::common::{call, World};
use axum::http::StatusCode;
use mno_events::idm::{Action, Credential, IdmRequest};
use mno_hub::HubConfig;
use serde_json::json;

async fn an_expired_session_is_refused_everywhere(world: &World) {
    let hub = world
        .hub(HubConfig {
            session_ttl: Duration::from_secs(1),
            ..HubConfig::default()
        })
        .await;
    let router = hub.router();
    let (status, _) = call(
        &router,
        "POST",
        "/hub/v1/users",
        None,
        Some(
            json!({"email": "ann@example.com", "password": "long enough password", "name": "Ann"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, session) = call(
        &router,
        "POST",
        "/hub/v1/sessions",
        None,
        Some(json!({"email": "ann@example.com", "password": "long enough password"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = session["token"].as_str().unwrap().to_owned();
    let (status, org) = call(
        &router,
        "POST",
        "/hub/v1/orgs",
        Some(&token),
        Some(json!({"name": "Acme", "currency": "USD"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let check = IdmRequest {
        credential: Credential::Session {
            token: token.clone(),
        },
        org: org["id"].as_str().unwrap().to_owned(),
        entity: None,
        action: Action::Read,
    };
    assert!(hub.idm().check(&check).await.unwrap().allow);

    // Within a bounded wait the token expires; then every door is shut.
    mno_harness::wait_for("the session to expire", Duration::from_secs(10), || async {
        let (status, _) = call(&router, "GET", "/hub/v1/users/me", Some(&token), None).await;
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let decision = hub.idm().check(&check).await.unwrap();
    assert!(
        !decision.allow && decision.principal.is_none(),
        "{decision:?}"
    );
    let (status, body) = call(&router, "GET", "/hub/v1/orgs", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("sign in again"));
    hub.shutdown().await;
}
