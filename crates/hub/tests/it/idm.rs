//! The IDM check in process, over NATS request-reply, and through the cache
//! that Hub events keep fresh; the directory over NATS.

mno_harness::on_both_databases!(
    World;
    cached_decisions_are_dropped_by_hub_events_not_by_age,
    a_revoked_session_and_rotated_out_credentials_are_dropped_from_the_cache,
    the_check_over_nats_answers_as_in_process,
    the_directory_over_nats_answers_as_in_process_and_disabling_a_webhook_emits_an_event,
);

use std::time::{Duration, Instant};

use crate::common::World;

use mno_events::directory::{AppStack, Directory, NatsDirectory, SharedEntity};
use mno_events::idm::*;
use mno_hub::store::installs::InstallChange;
use mno_hub::store::{apps, installs, invitations, orgs, users};
use mno_hub::{secrets, HubConfig};

/// An hour: longer than any test, so only a Hub event can drop a cached decision.
const NO_TTL: Duration = Duration::from_secs(3600);

struct Setup {
    owner: String,
    bob: String,
    bob_token: String,
    org: String,
    app: String,
    key: String,
    secret: String,
}

async fn setup(hub: &mno_hub::Hub) -> Setup {
    let store = hub.store();
    let owner = users::create(store, "owner@example.com", "Owner", "x")
        .await
        .unwrap();
    let bob = users::create(store, "bob@example.com", "Bob", "x")
        .await
        .unwrap();
    let bob_token = secrets::new_session_token();
    users::create_session(
        &store.pool,
        &bob.id,
        &secrets::sha256_hex(&bob_token),
        i64::MAX / 2,
    )
    .await
    .unwrap();
    let org = orgs::create(store, &owner.id, "Acme", "USD", "UTC", "US")
        .await
        .unwrap();
    // Bob joins by consent: invited, then accepting.
    let invitation = invitations::invite(
        store,
        &owner.id,
        mno_hub::access::Role::SuperAdmin,
        &org.id,
        "bob@example.com",
        mno_hub::access::Role::PowerUser,
    )
    .await
    .unwrap();
    invitations::accept(store, &invitation.id, &bob.id, "bob@example.com")
        .await
        .unwrap();
    let (app, creds) = apps::create(
        store,
        &owner.id,
        "Books".into(),
        AppStack::Cloud,
        Some("http://127.0.0.1:9/hook".into()),
        None,
        vec![
            SharedEntity {
                entity: "invoices".into(),
                read: true,
                write: true,
            },
            SharedEntity {
                entity: "people".into(),
                read: true,
                write: true,
            },
        ],
        Default::default(),
    )
    .await
    .unwrap();
    installs::install(store, &owner.id, &org.id, &app.id, true)
        .await
        .unwrap();
    // Every setup event is out before a cache starts: only later events can touch it.
    crate::common::wait_for_empty_outbox(hub).await;
    Setup {
        owner: owner.id,
        bob: bob.id,
        bob_token,
        org: org.id,
        app: app.id,
        key: creds.key,
        secret: creds.secret,
    }
}

fn request(credential: Credential, org: &str, action: Action) -> IdmRequest {
    IdmRequest {
        credential,
        org: org.to_owned(),
        entity: Some("invoices".into()),
        action,
    }
}

/// Poll the cached check until it denies; the time it took.
async fn until_denied(idm: &dyn Idm, request: &IdmRequest) -> Duration {
    let started = Instant::now();
    mno_harness::wait_for(
        "the cached decision to be dropped",
        Duration::from_secs(10),
        || async {
            let decision = idm.check(request).await.unwrap();
            (!decision.allow).then_some(())
        },
    )
    .await;
    started.elapsed()
}

async fn cached_decisions_are_dropped_by_hub_events_not_by_age(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let s = setup(&hub).await;
    let cache = CachingIdm::start(hub.idm(), world.bus.client.clone(), NO_TTL)
        .await
        .unwrap();

    let bob = request(
        Credential::Session {
            token: s.bob_token.clone(),
        },
        &s.org,
        Action::Write,
    );
    let app = request(
        Credential::App {
            key: s.key.clone(),
            secret: s.secret.clone(),
        },
        &s.org,
        Action::Read,
    );
    assert!(cache.check(&bob).await.unwrap().allow);
    assert!(cache.check(&app).await.unwrap().allow);
    assert_eq!(cache.cached(), 2);

    // Data sharing off: the app's decision goes, and the app is denied.
    installs::update(
        hub.store(),
        &s.owner,
        &s.org,
        &s.app,
        InstallChange::sharing(false),
    )
    .await
    .unwrap();
    let took = until_denied(&cache, &app).await;
    eprintln!("data sharing off reached the cache in {took:?}");
    installs::update(
        hub.store(),
        &s.owner,
        &s.org,
        &s.app,
        InstallChange::sharing(true),
    )
    .await
    .unwrap();
    mno_harness::wait_for("sharing back on", Duration::from_secs(10), || async {
        cache.check(&app).await.unwrap().allow.then_some(())
    })
    .await;

    // The org narrows sharing to people: the app's invoices decision goes,
    // with the reason; all entities again: allowed again.
    // Repeats are dropped.
    let narrowed = InstallChange::entities(Some(vec!["people".into(), "people".into()]));
    let row = installs::update(hub.store(), &s.owner, &s.org, &s.app, narrowed)
        .await
        .unwrap();
    assert_eq!(row.entities, Some(vec!["people".to_owned()]));
    let took = until_denied(&cache, &app).await;
    eprintln!("narrowed sharing reached the cache in {took:?}");
    let denied = cache.check(&app).await.unwrap();
    assert!(
        denied
            .reason
            .contains(&format!("organisation {} does not share invoices", s.org)),
        "{denied:?}"
    );
    installs::update(
        hub.store(),
        &s.owner,
        &s.org,
        &s.app,
        InstallChange::entities(None),
    )
    .await
    .unwrap();
    mno_harness::wait_for("invoices shared again", Duration::from_secs(10), || async {
        cache.check(&app).await.unwrap().allow.then_some(())
    })
    .await;

    // Uninstall, and member removal.
    installs::uninstall(hub.store(), &s.owner, &s.org, &s.app)
        .await
        .unwrap();
    let took = until_denied(&cache, &app).await;
    eprintln!("uninstall reached the cache in {took:?}");
    orgs::remove_member(
        hub.store(),
        &s.owner,
        mno_hub::access::Role::SuperAdmin,
        &s.org,
        &s.bob,
    )
    .await
    .unwrap();
    let took = until_denied(&cache, &bob).await;
    eprintln!("member removal reached the cache in {took:?}");
    hub.shutdown().await;
}

async fn a_revoked_session_and_rotated_out_credentials_are_dropped_from_the_cache(world: &World) {
    let hub = world
        .hub(HubConfig {
            credential_overlap: Duration::ZERO,
            ..HubConfig::default()
        })
        .await;
    let s = setup(&hub).await;
    let cache = CachingIdm::start(hub.idm(), world.bus.client.clone(), NO_TTL)
        .await
        .unwrap();
    let bob = request(
        Credential::Session {
            token: s.bob_token.clone(),
        },
        &s.org,
        Action::Read,
    );
    let app = request(
        Credential::App {
            key: s.key.clone(),
            secret: s.secret.clone(),
        },
        &s.org,
        Action::Read,
    );
    assert!(cache.check(&bob).await.unwrap().allow);
    assert!(cache.check(&app).await.unwrap().allow);

    let session = users::live_session(&hub.store().pool, &secrets::sha256_hex(&s.bob_token))
        .await
        .unwrap()
        .unwrap();
    users::revoke_session(hub.store(), &session.session_id, &s.bob)
        .await
        .unwrap();
    until_denied(&cache, &bob).await;
    let decision = cache.check(&bob).await.unwrap();
    assert!(
        decision.principal.is_none(),
        "a revoked session is no principal: {decision:?}"
    );

    apps::rotate(hub.store(), &s.owner, &s.app, 0)
        .await
        .unwrap();
    until_denied(&cache, &app).await;
    hub.shutdown().await;
}

async fn the_check_over_nats_answers_as_in_process(world: &World) {
    let hub = world.hub(HubConfig::default()).await;
    let s = setup(&hub).await;
    let remote = NatsIdm::new(world.nats.client().await);
    let local = hub.idm();
    let outsider = users::create(hub.store(), "eve@example.com", "Eve", "x")
        .await
        .unwrap();
    let eve_token = secrets::new_session_token();
    users::create_session(
        &hub.store().pool,
        &outsider.id,
        &secrets::sha256_hex(&eve_token),
        i64::MAX / 2,
    )
    .await
    .unwrap();
    let requests = [
        request(
            Credential::Session {
                token: s.bob_token.clone(),
            },
            &s.org,
            Action::Write,
        ),
        request(
            Credential::Session { token: eve_token },
            &s.org,
            Action::Read,
        ),
        request(
            Credential::Session {
                token: "mst_nope".into(),
            },
            &s.org,
            Action::Read,
        ),
        request(
            Credential::App {
                key: s.key.clone(),
                secret: s.secret.clone(),
            },
            &s.org,
            Action::Write,
        ),
        request(
            Credential::App {
                key: s.key.clone(),
                secret: "ms_wrong".into(),
            },
            &s.org,
            Action::Read,
        ),
        request(
            Credential::App {
                key: s.key.clone(),
                secret: s.secret.clone(),
            },
            "no-such-org",
            Action::Read,
        ),
    ];
    let mut allowed = Vec::new();
    for r in &requests {
        let over_nats = remote.check(r).await.unwrap();
        assert_eq!(over_nats, local.check(r).await.unwrap(), "{r:?}");
        allowed.push(over_nats.allow);
    }
    assert_eq!(allowed, [true, false, false, true, false, false]);

    // A secret sent in the clear on NATS is refused: credentials travel hashed.
    let clear = serde_json::to_vec(&requests[0]).unwrap();
    let reply = world
        .bus
        .client
        .request(IDM_SUBJECT, clear.into())
        .await
        .unwrap();
    match serde_json::from_slice::<IdmReply>(&reply.payload).unwrap() {
        IdmReply::Decision(d) => {
            assert!(
                !d.allow && d.principal.is_none() && d.reason.contains("hashed"),
                "{d:?}"
            )
        }
        other => panic!("{other:?}"),
    }

    // A malformed request gets an error reply, not silence.
    let reply = world
        .bus
        .client
        .request(IDM_SUBJECT, "not json".into())
        .await
        .unwrap();
    let reply: IdmReply = serde_json::from_slice(&reply.payload).unwrap();
    assert!(
        matches!(reply, IdmReply::Error(ref e) if e.contains("IdmRequest")),
        "{reply:?}"
    );
    hub.shutdown().await;
}

async fn the_directory_over_nats_answers_as_in_process_and_disabling_a_webhook_emits_an_event(
    world: &World,
) {
    let hub = world.hub(HubConfig::default()).await;
    let s = setup(&hub).await;
    let remote = NatsDirectory::new(world.nats.client().await);
    let local = hub.directory();

    assert_eq!(remote.apps().await.unwrap(), local.apps().await.unwrap());
    let profile = remote.app(&s.app).await.unwrap().unwrap();
    assert_eq!(Some(&profile), local.app(&s.app).await.unwrap().as_ref());
    assert_eq!(profile.webhook_secrets.len(), 1);
    assert!(profile.webhook_secrets[0].starts_with("whsec_"));
    assert!(remote.app("nope").await.unwrap().is_none());
    let installs = remote.installs_of_app(&s.app).await.unwrap();
    assert_eq!(installs, local.installs_of_app(&s.app).await.unwrap());
    assert_eq!(installs[0].org, s.org);
    let org = remote.org(&s.org).await.unwrap().unwrap();
    assert_eq!(org.currency, "USD");
    // A member's role, and none for someone who is not one.
    assert_eq!(
        remote.member_role(&s.org, &s.bob).await.unwrap().as_deref(),
        Some("power_user")
    );
    assert_eq!(
        remote.member_role(&s.org, &s.bob).await.unwrap(),
        local.member_role(&s.org, &s.bob).await.unwrap()
    );
    assert_eq!(remote.member_role(&s.org, "nobody").await.unwrap(), None);

    remote
        .disable_webhook(&s.app, "receiver answered 410 Gone")
        .await
        .unwrap();
    assert!(local.app(&s.app).await.unwrap().unwrap().webhook_disabled);
    mno_harness::wait_for(
        "a webhook_disabled event",
        Duration::from_secs(10),
        || async {
            world
                .hub_events()
                .await
                .into_iter()
                .find(|e| e.kind == "webhook_disabled" && e.app_id == s.app)
        },
    )
    .await;

    // Rotation: two signing secrets during the overlap, newest first.
    let (creds, _) = apps::rotate(hub.store(), &s.owner, &s.app, 60_000)
        .await
        .unwrap();
    let secrets = local.app(&s.app).await.unwrap().unwrap().webhook_secrets;
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0], creds.webhook_secret);
    hub.shutdown().await;
}
