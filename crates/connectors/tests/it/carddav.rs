//! Connector 1 against a real CardDAV server (Radicale): people and
//! organizations flow both ways, edits on both sides are settled by the
//! rule, credentials never come back out.

use crate::support;

use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{eventually, Radicale, World, PASSWORD};

async fn configured_world(radicale: &Radicale) -> World {
    let world = World::start(&["people", "organizations"]).await;
    let (status, body) = world
        .configure(json!({
            "connector": "carddav",
            "settings": {"url": radicale.book_url()},
            "credentials": {"username": support::USER, "password": PASSWORD},
            "app_credentials": world.app_credentials(),
            // Scheduled pulls wait an hour: the test pulls when it means to.
            "interval_secs": 3600,
            "entities": {
                "people": {"direction": "both", "cutoff": "2025-01-01T00:00:00Z"},
                "organizations": {"direction": "both"}
            }
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    world
}

#[tokio::test]
async fn contacts_flow_both_ways_and_only_once() {
    let radicale = Radicale::start().await;
    radicale.make_book().await;
    // Already in the address book before the install: one recent, one older than the cut-off.
    radicale
        .put_card(
            "bo.vcf",
            &[
                "UID:bo",
                "FN:Bo Lee",
                "N:Lee;Bo;;;",
                "EMAIL:bo@example.com",
                "REV:20261101T090000Z",
            ],
        )
        .await;
    radicale
        .put_card(
            "old.vcf",
            &[
                "UID:old",
                "FN:Old Timer",
                "N:Timer;Old;;;",
                "REV:20200101T000000Z",
            ],
        )
        .await;
    radicale
        .put_card(
            "acme.vcf",
            &[
                "UID:acme",
                "KIND:org",
                "FN:Acme Supplies",
                "ORG:Acme Supplies",
                "URL:https://acme.example",
            ],
        )
        .await;
    let world = configured_world(&radicale).await;

    // Credentials never come back out, nor sit in the database in clear.
    let status = world.status().await;
    let text = status.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains(&world.connector.secret),
        "{text}"
    );
    let sealed: Vec<(String,)> =
        sqlx::query_as("SELECT sealed_credentials FROM connector_installs")
            .fetch_all(&world.platform.running().db)
            .await
            .unwrap();
    assert_eq!(sealed.len(), 1);
    assert!(!sealed[0].0.contains(PASSWORD) && !sealed[0].0.contains(&world.connector.secret));

    // First sync: outside -> Connec!, in the outside ids, the cut-off honoured.
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let bo = world
        .connec_by_outside_id("people", "bo.vcf")
        .await
        .expect("bo synced");
    assert_eq!(
        (bo["first_name"].as_str(), bo["last_name"].as_str()),
        (Some("Bo"), Some("Lee"))
    );
    assert_eq!(bo["email"], "bo@example.com");
    assert!(
        world
            .connec_by_outside_id("people", "old.vcf")
            .await
            .is_none(),
        "before the cut-off"
    );
    let acme = world
        .connec_by_outside_id("organizations", "acme.vcf")
        .await
        .expect("acme synced");
    assert_eq!(
        (acme["name"].as_str(), acme["website"].as_str()),
        (Some("Acme Supplies"), Some("https://acme.example"))
    );
    let counts = entity_counts(&world.status().await);
    assert_eq!(counts["people"]["pulled"], 1);
    assert_eq!(counts["organizations"]["pulled"], 1);

    // A second sync changes nothing: no echo, no new version.
    let (code, _) = world.sync().await;
    assert_eq!(code, StatusCode::OK);
    let again = world
        .connec_by_outside_id("people", "bo.vcf")
        .await
        .unwrap();
    assert_eq!(again["version"], bo["version"]);

    // An edit outside (the email removed, a phone added) reaches Connec! on the next sync.
    radicale
        .put_card(
            "bo.vcf",
            &[
                "UID:bo",
                "FN:Bo Lee",
                "N:Lee;Bo;;;",
                "TEL:+1 555 0100",
                "REV:20261102T090000Z",
            ],
        )
        .await;
    world.sync().await;
    let bo = world
        .connec_by_outside_id("people", "bo.vcf")
        .await
        .unwrap();
    assert_eq!(bo["phone"], "+1 555 0100");
    assert!(
        bo["email"].is_null(),
        "the email removed outside is removed in Connec!: {bo}"
    );

    // A person created in Connec! by another app becomes a card.
    let (code, created) = world
        .crm(Method::POST, "people", Some(json!({"people": {"id": "crm-7", "first_name": "Cy", "last_name": "Doe", "email": "cy@example.com"}})))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let global = created["people"]["id"].as_str().unwrap().to_owned();
    let card_id = eventually("the new person to get a card", || async {
        world.outside_id_of("people", &global).await
    })
    .await;
    let card = radicale.card(&card_id).await.expect("the card exists");
    assert!(
        card.contains("FN:Cy Doe") && card.contains("EMAIL:cy@example.com"),
        "{card}"
    );

    // Its edit in Connec! reaches the card (If-Match on the card's ETag).
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("people/{global}"),
            Some(json!({"people": {"job_title": "Buyer"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually("the edit to reach the card", || async {
        radicale
            .card(&card_id)
            .await
            .filter(|c| c.contains("TITLE:Buyer"))
            .map(|_| ())
    })
    .await;
    // The card the runtime wrote is not pulled back as a change.
    let before = world
        .connec_by_outside_id("people", &card_id)
        .await
        .unwrap();
    world.sync().await;
    let after = world
        .connec_by_outside_id("people", &card_id)
        .await
        .unwrap();
    assert_eq!(before["version"], after["version"]);

    // A delete in Connec! deletes the card.
    let (code, _) = world
        .crm(Method::DELETE, &format!("people/{global}"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    eventually("the card to be deleted", || async {
        radicale.card(&card_id).await.is_none().then_some(())
    })
    .await;

    // A card deleted outside is deleted in Connec!.
    radicale.delete_card("bo.vcf").await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(world
        .connec_by_outside_id("people", "bo.vcf")
        .await
        .is_none());
    let status = world.status().await;
    assert!(status["last_error"].is_null(), "{status}");
    assert!(status["last_success_at"].is_string(), "{status}");
    assert_eq!(status["running"], false);
}

#[tokio::test]
async fn an_edit_on_both_sides_is_settled_by_the_newest() {
    let radicale = Radicale::start().await;
    radicale.make_book().await;
    radicale
        .put_card(
            "dee.vcf",
            &[
                "UID:dee",
                "FN:Dee Ray",
                "N:Ray;Dee;;;",
                "REV:20261101T090000Z",
            ],
        )
        .await;
    radicale
        .put_card(
            "eve.vcf",
            &[
                "UID:eve",
                "FN:Eve Park",
                "N:Park;Eve;;;",
                "REV:20261101T090000Z",
            ],
        )
        .await;
    let world = configured_world(&radicale).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let dee = world
        .connec_by_outside_id("people", "dee.vcf")
        .await
        .unwrap();
    let eve = world
        .connec_by_outside_id("people", "eve.vcf")
        .await
        .unwrap();

    // Dee: edited outside with a later REV than the Connec! edit that follows: the outside edit wins.
    radicale
        .put_card(
            "dee.vcf",
            &[
                "UID:dee",
                "FN:Dee Ray",
                "N:Ray;Dee;;;",
                "TITLE:Outside wins",
                "REV:20990101T000000Z",
            ],
        )
        .await;
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("people/{}", dee["id"].as_str().unwrap()),
            Some(json!({"people": {"job_title": "Connec! loses"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually(
        "the conflict on Dee to be settled for the outside edit",
        || async {
            let dee = world.connec_by_outside_id("people", "dee.vcf").await?;
            (dee["job_title"] == "Outside wins").then_some(())
        },
    )
    .await;
    assert!(radicale
        .card("dee.vcf")
        .await
        .unwrap()
        .contains("TITLE:Outside wins"));

    // Eve: edited outside with an earlier REV than the Connec! edit: Connec!'s wins.
    radicale
        .put_card(
            "eve.vcf",
            &[
                "UID:eve",
                "FN:Eve Park",
                "N:Park;Eve;;;",
                "TITLE:Outside loses",
                "REV:20260101T000000Z",
            ],
        )
        .await;
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("people/{}", eve["id"].as_str().unwrap()),
            Some(json!({"people": {"job_title": "Connec! wins"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually(
        "the conflict on Eve to be settled for the Connec! edit",
        || async {
            radicale
                .card("eve.vcf")
                .await
                .filter(|c| c.contains("TITLE:Connec! wins"))
                .map(|_| ())
        },
    )
    .await;
    // The next pull does not bring the losing outside edit back.
    world.sync().await;
    let eve = world
        .connec_by_outside_id("people", "eve.vcf")
        .await
        .unwrap();
    assert_eq!(eve["job_title"], "Connec! wins");

    // Both conflicts are recorded, with the side kept.
    let status = world.status().await;
    assert_eq!(entity_counts(&status)["people"]["conflicts"], 2, "{status}");
    let conflicts: Vec<&Value> = status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "conflict")
        .collect();
    assert_eq!(conflicts.len(), 2, "{status}");
    assert_eq!(conflicts[0]["record"], "dee.vcf");
    assert!(conflicts[0]["detail"]
        .as_str()
        .unwrap()
        .contains("the outside API kept"));
    assert_eq!(conflicts[1]["record"], "eve.vcf");
    assert!(conflicts[1]["detail"]
        .as_str()
        .unwrap()
        .contains("Connec! kept"));
}

#[tokio::test]
async fn a_pull_settles_an_edit_on_both_sides_by_the_rule() {
    let radicale = Radicale::start().await;
    radicale.make_book().await;
    radicale
        .put_card(
            "gus.vcf",
            &[
                "UID:gus",
                "FN:Gus Moe",
                "N:Moe;Gus;;;",
                "REV:20261101T090000Z",
            ],
        )
        .await;
    // People only flow into Connec!: Connec!'s edits wait for the pull to meet them.
    let world = World::start(&["people"]).await;
    let (status, body) = world
        .configure(json!({
            "connector": "carddav",
            "settings": {"url": radicale.book_url()},
            "credentials": {"username": support::USER, "password": PASSWORD},
            "app_credentials": world.app_credentials(),
            "interval_secs": 3600,
            "entities": {"people": {"direction": "to_connec"}}
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    world.sync().await;
    let gus = world
        .connec_by_outside_id("people", "gus.vcf")
        .await
        .unwrap();
    let path = format!("people/{}", gus["id"].as_str().unwrap());

    // Edited on both sides, the outside edit later: it wins.
    let gus = edit_gus_on_both_sides(
        &world,
        &radicale,
        &path,
        "Connec! edit",
        "Outside edit",
        "20990101T000000Z",
    )
    .await;
    assert_eq!(gus["job_title"], "Outside edit");

    // Edited on both sides, Connec!'s edit later: Connec! keeps it, and the card
    // is left alone (people do not flow out of Connec! in this install).
    let gus = edit_gus_on_both_sides(
        &world,
        &radicale,
        &path,
        "Connec! wins",
        "Old outside edit",
        "20260101T000000Z",
    )
    .await;
    assert_eq!(gus["job_title"], "Connec! wins");
    assert!(radicale
        .card("gus.vcf")
        .await
        .unwrap()
        .contains("TITLE:Old outside edit"));
    // The passed-over edit is not met again as a conflict.
    world.sync().await;
    let status = world.status().await;
    assert_eq!(entity_counts(&status)["people"]["conflicts"], 2, "{status}");
}

/// Gus's title edited in Connec!, then his card edited outside at `rev`; a pull;
/// Gus as Connec! has him then.
async fn edit_gus_on_both_sides(
    world: &World,
    radicale: &Radicale,
    path: &str,
    in_connec: &str,
    outside: &str,
    rev: &str,
) -> Value {
    let (code, body) = world
        .crm(
            Method::PUT,
            path,
            Some(json!({"people": {"job_title": in_connec}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let title = format!("TITLE:{outside}");
    let rev = format!("REV:{rev}");
    radicale
        .put_card(
            "gus.vcf",
            &["UID:gus", "FN:Gus Moe", "N:Moe;Gus;;;", &title, &rev],
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    world
        .connec_by_outside_id("people", "gus.vcf")
        .await
        .unwrap()
}

#[tokio::test]
async fn the_address_book_down_loses_nothing_either_way() {
    let mut radicale = Radicale::start().await;
    radicale.make_book().await;
    radicale
        .put_card("fay.vcf", &["UID:fay", "FN:Fay Wu", "N:Wu;Fay;;;"])
        .await;
    let world = configured_world(&radicale).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let fay = world
        .connec_by_outside_id("people", "fay.vcf")
        .await
        .unwrap();

    // The server goes down; Fay is edited in Connec! meanwhile, and a pull fails.
    radicale.stop();
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("people/{}", fay["id"].as_str().unwrap()),
            Some(json!({"people": {"job_title": "Edited while down"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    let status = world.status().await;
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{status}"
    );

    // Back up: the next pull succeeds, and the edit is pushed after the backoff.
    radicale.restart().await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually("the edit made while down to reach the card", || async {
        radicale
            .card("fay.vcf")
            .await
            .filter(|c| c.contains("TITLE:Edited while down"))
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_naming_each_field() {
    let radicale = Radicale::start().await;
    let world = World::start(&["people"]).await;
    let (status, body) = world
        .configure(json!({
            "connector": "carddav",
            "settings": {"url": radicale.book_url()},
            "credentials": {"username": support::USER},
            "app_credentials": {"key": world.crm.key, "secret": world.crm.secret},
            "entities": {"invoices": {"direction": "both"}, "people": {"direction": "sideways"}},
            "prefer": "loudest"
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let named = pointers(&body);
    assert!(named.contains(&"/credentials"), "{body}");
    assert!(named.contains(&"/prefer"), "{body}");
    // Nothing was stored: the install has no connector.
    assert_eq!(world.connector_code().await, StatusCode::NOT_FOUND);

    // Another app's key is refused; so is an unknown entity and direction.
    let (status, body) = world
        .configure(json!({
            "connector": "carddav",
            "settings": {"url": radicale.book_url()},
            "credentials": {"username": support::USER, "password": PASSWORD},
            "app_credentials": {"key": world.crm.key, "secret": world.crm.secret},
            "entities": {"invoices": {"direction": "both"}, "people": {"direction": "sideways"}, "organizations": {}}
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let named = pointers(&body);
    assert!(named.contains(&"/entities/invoices"), "{body}");
    assert!(named.contains(&"/entities/people/direction"), "{body}");
    assert!(named.contains(&"/app_credentials"), "{body}");

    // A cloud app is not a connector.
    let (code, body) = world
        .hub
        .call(
            Method::PUT,
            &format!("/hub/v1/orgs/{}/installs/{}/connector", world.org, world.crm.id),
            Some(&mno_e2e::hub_client::bearer(&world.token)),
            Some(json!({"connector": "carddav", "settings": {"url": radicale.book_url()},
                "credentials": {"username": "a", "password": "b"}, "app_credentials": {"key": "k", "secret": "s"}})),
        )
        .await
        .unwrap();
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["code"], "not_a_connector");

    // Apps may not manage connectors; users must be members.
    let (code, _) = world
        .hub
        .call(
            Method::GET,
            &world.install_path("connector"),
            Some(&mno_e2e::hub_client::basic_auth(
                &world.crm.key,
                &world.crm.secret,
            )),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (_, stranger) = world
        .hub
        .signup_and_login("stranger@example.com")
        .await
        .unwrap();
    let (code, _) = world
        .hub
        .call(
            Method::POST,
            &world.install_path("sync"),
            Some(&mno_e2e::hub_client::bearer(&stranger)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
}

/// The JSON pointers an error answer names.
fn pointers(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap())
        .collect()
}

/// `entities` of a status as a map by entity name.
fn entity_counts(status: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for entity in status["entities"].as_array().unwrap() {
        out.insert(
            entity["entity"].as_str().unwrap().to_owned(),
            entity.clone(),
        );
    }
    Value::Object(out)
}

/// An outside API's URL takes the platform's one URL check (the one webhook
/// URLs take): every address form that reaches the platform's own network is
/// refused when the connector is configured, and nothing is stored.
#[tokio::test]
async fn outside_urls_on_the_platforms_own_network_are_refused() {
    let platform = TestPlatform::spawn_with(|config| config.allow_private_webhooks = false).await;
    let world = World::start_on(platform, &["people"]).await;
    let refused = [
        "http://localhost:5232/ann/book/",
        "http://127.0.0.1:5232/ann/book/",
        "http://10.1.2.3/book/",
        "http://169.254.169.254/latest/",
        "http://100.64.0.1/book/",
        "http://198.18.0.1/book/",
        "http://240.0.0.1/book/",
        "http://192.0.0.8/book/",
        "http://[::1]/book/",
        "http://[::127.0.0.1]/book/",
        "http://[::ffff:10.0.0.1]/book/",
        "http://[64:ff9b::a00:1]/book/",
        "http://[2002:c0a8:101::]/book/",
        "http://[fe80::1]/book/",
        "http://[fd00::1]/book/",
        "http://user:pw@example.com/book/",
    ];
    for url in refused {
        let (status, body) = world
            .configure(json!({
                "connector": "carddav",
                "settings": {"url": url},
                "credentials": {"username": support::USER, "password": PASSWORD},
                "app_credentials": world.app_credentials(),
            }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(pointers(&body).contains(&"/settings/url"), "{url}: {body}");
        assert!(
            body.to_string().contains("outside API's URL"),
            "{url}: the error names what was wrong: {body}"
        );
    }
    assert_eq!(
        world.connector_code().await,
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
}
