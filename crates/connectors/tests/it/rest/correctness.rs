//! Data correctness of the REST connector (from an integrator's trial): a
//! value cleared in Connec! is cleared outside, an update keeps the outside
//! fields the mapping does not know, `last_error` goes once the sync works
//! again, a record waiting for a reference that never comes is parked
//! instead of holding its entity back, a create whose answer was lost is
//! not made twice, and values are mapped both ways.

use super::*;

/// The CRM's (global) id of the record of `entity` whose `field` is `value`.
async fn crm_id_of(world: &World, entity: &str, field: &str, value: &str) -> String {
    let (code, listed) = world.crm(Method::GET, entity, None).await;
    assert_eq!(code, StatusCode::OK, "{listed}");
    listed[entity]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == value)
        .and_then(|r| r["id"].as_str())
        .unwrap_or_else(|| panic!("no {entity} with {field} {value}: {listed}"))
        .to_owned()
}

const CLEARING: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"

[collections.fields]
transaction_number = "number"
public_note = "note"
title = { path = "title", clear = "" }
total_amount = { path = "amount", convert = "decimal" }
"#;

/// A field emptied in Connec! is emptied outside (null, or the mapping's
/// `clear` value), and the next pull leaves both sides as they are.
#[tokio::test]
async fn a_field_cleared_in_connec_is_cleared_outside() {
    let server = JsonServer::start(json!({"invoices": []})).await;
    let world = World::start(&["invoices"]).await;
    configure_mapping(&server, &world, CLEARING, Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let (code, created) = world
        .crm(
            Method::POST,
            "invoices",
            Some(
                json!({"invoices": {"transaction_number": "INV-1", "public_note": "call first",
                                     "title": "Repairs", "total_amount": "10"}}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let global = created["invoices"]["id"].as_str().unwrap().to_owned();
    let outside = eventually("INV-1 to reach the API", || async {
        world.outside_id_of("invoices", &global).await
    })
    .await;
    let path = format!("/invoices/{outside}");
    let (_, before) = server.call(Method::GET, &path, None).await;
    assert_eq!(
        (&before["note"], &before["title"], &before["amount"]),
        (&json!("call first"), &json!("Repairs"), &json!(10)),
        "{before}"
    );

    // Emptied in Connec!: null, and "" for the title (its mapping says so).
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("invoices/{global}"),
            Some(json!({"invoices": {"public_note": null, "title": null, "total_amount": null}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let after = eventually("the clearing to reach the API", || async {
        let (_, inv) = server.call(Method::GET, &path, None).await;
        (inv["title"] == "").then_some(inv)
    })
    .await;
    assert_eq!(after.get("note"), Some(&Value::Null), "{after}");
    assert_eq!(after.get("amount"), Some(&Value::Null), "{after}");
    assert_eq!(after["number"], "INV-1", "{after}");

    // Pulled again: nothing comes back, both sides agree.
    let (_, in_connec) = world
        .crm(Method::GET, &format!("invoices/{global}"), None)
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, now) = world
        .crm(Method::GET, &format!("invoices/{global}"), None)
        .await;
    assert_eq!(now["invoices"]["version"], in_connec["invoices"]["version"]);
    for field in ["public_note", "title", "total_amount"] {
        assert!(now["invoices"][field].is_null(), "{field}: {now}");
    }

    // Emptied outside ("" for the title is its clear value): emptied in Connec!.
    server
        .call(Method::PATCH, &path, Some(json!({"title": "Again"})))
        .await;
    world.sync().await;
    let (_, now) = world
        .crm(Method::GET, &format!("invoices/{global}"), None)
        .await;
    assert_eq!(now["invoices"]["title"], "Again", "{now}");
    server
        .call(Method::PATCH, &path, Some(json!({"title": ""})))
        .await;
    world.sync().await;
    let (_, now) = world
        .crm(Method::GET, &format!("invoices/{global}"), None)
        .await;
    assert!(now["invoices"]["title"].is_null(), "{now}");
}

const UNKNOWN_FIELDS: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
update_method = "PUT"

[collections.fields]
transaction_number = "number"
total_amount = { path = "totals.amount", convert = "decimal" }

[[collections]]
entity = "items"
path = "/items"

[collections.fields]
name = "name"
sale_price = { path = "price.amount", convert = "decimal" }
"#;

/// An update keeps the outside fields the mapping does not know: a PUT is
/// read, merged and written whole; a PATCH into a nested object keeps that
/// object's other keys.
#[tokio::test]
async fn an_update_keeps_the_outside_fields_the_mapping_does_not_know() {
    let server = JsonServer::start(json!({
        "invoices": [{"id": 1, "number": "INV-1", "totals": {"amount": 10, "currency": "EUR"},
                      "notes": "internal", "tags": ["a"]}],
        "items": [{"id": 1, "name": "Widget", "price": {"amount": 12.5, "unit": "each"}, "stock": 40}]
    }))
    .await;
    let world = World::start(&["invoices", "items"]).await;
    configure_mapping(&server, &world, UNKNOWN_FIELDS, Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let invoice = crm_id_of(&world, "invoices", "transaction_number", "INV-1").await;
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("invoices/{invoice}"),
            Some(json!({"invoices": {"transaction_number": "INV-1b", "total_amount": "20"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let item = crm_id_of(&world, "items", "name", "Widget").await;
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("items/{item}"),
            Some(json!({"items": {"name": "Widget 2", "sale_price": "13"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let inv = eventually("the PUT to reach the API", || async {
        let (_, inv) = server.call(Method::GET, "/invoices/1", None).await;
        (inv["number"] == "INV-1b").then_some(inv)
    })
    .await;
    assert_eq!(
        inv,
        json!({"id": 1, "number": "INV-1b", "totals": {"amount": 20, "currency": "EUR"},
               "notes": "internal", "tags": ["a"]})
    );
    let it = eventually("the PATCH to reach the API", || async {
        let (_, it) = server.call(Method::GET, "/items/1", None).await;
        (it["name"] == "Widget 2").then_some(it)
    })
    .await;
    assert_eq!(
        it,
        json!({"id": 1, "name": "Widget 2", "price": {"amount": 13, "unit": "each"}, "stock": 40})
    );
}

/// `last_error` says what is wrong now, not what once was: the next
/// successful pass of the failed one clears it, and `recent` keeps it as
/// `resolved`, for a pull's error as for a push's.
#[tokio::test]
async fn the_last_error_goes_once_the_sync_works_again() {
    let server = JsonServer::start(seed()).await;
    let world = configured(&server).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // A pull fails, then works again.
    server.fault(json!({"status": 500}));
    failing_sync(&world, "HTTP 500").await;
    server.fault(json!({}));
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let status = world.status().await;
    assert!(status["last_error"].is_null(), "{status}");
    assert!(status["last_error_at"].is_null(), "{status}");
    assert_eq!(status["failures"], 0, "{status}");
    let resolved = recent_of(&status, "resolved");
    assert!(
        resolved.iter().any(|e| {
            let detail = e["detail"].as_str().unwrap();
            // Ended by the pull of the entity that failed (items, pulled first).
            detail.starts_with("the pull of items works again") && detail.contains("HTTP 500")
        }),
        "{status}"
    );

    // A push fails (the API answers 500), then works again.
    server.fault(json!({"status": 500}));
    let (code, created) = world
        .crm(
            Method::POST,
            "invoices",
            Some(json!({"invoices": {"transaction_number": "INV-P"}})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    eventually("the push to fail", || async {
        let status = world.status().await;
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 500"))
            .then_some(())
    })
    .await;
    server.fault(json!({}));
    eventually("INV-P to reach the API", || async {
        (!server.find("invoices", "number", "INV-P").await.is_empty()).then_some(())
    })
    .await;
    let status = eventually("the push's error to go", || async {
        let status = world.status().await;
        status["last_error"].is_null().then_some(status)
    })
    .await;
    assert_eq!(status["failures"], 0, "{status}");
    assert!(
        recent_of(&status, "resolved")
            .iter()
            .any(|e| e["entity"] == "invoices"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("the push of invoices works again")),
        "{status}"
    );
}

/// An invoice naming a person the outside API never lists holds its
/// entity's cursor for a few syncs, then is parked (named in the status with
/// the reason) and the cursor moves on; it is tried again at each sync, and
/// comes in once its person does.
#[tokio::test]
async fn a_record_whose_reference_never_comes_is_parked_and_the_cursor_moves_on() {
    let server = JsonServer::start(json!({
        "people": [{"id": "p1", "first": "Ann", "last": "Lee"}],
        "invoices": [
            {"id": "i1", "number": "INV-1", "customerId": "p1", "updatedAt": "2026-11-01T10:00:00Z"},
            {"id": "i2", "number": "INV-2", "customerId": "p9", "updatedAt": "2026-11-01T09:00:00Z"},
            {"id": "i3", "number": "INV-3", "updatedAt": "2026-11-02T10:00:00Z"}
        ]
    }))
    .await;
    let world = World::start(&["invoices", "people"]).await;
    configure_mapping(&server, &world, WITH_REFERENCES, Value::Null).await;

    // Refused by the first syncs: the cursor waits before INV-2.
    for pass in 1..=2 {
        let (code, body) = world.sync().await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let status = world.status().await;
        assert_eq!(entity_row(&status, "invoices")["parked"], 0, "{status}");
        assert_eq!(
            entity_row(&status, "invoices")["rejected"],
            pass,
            "{status}"
        );
        assert!(
            status["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("tried again at the next sync"),
            "{status}"
        );
    }
    // The third refusal parks it: named with its reason, logged, and the sync clean.
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let status = world.status().await;
    assert_eq!(entity_row(&status, "invoices")["parked"], 1, "{status}");
    let parked = status["parked"].as_array().unwrap();
    assert_eq!(parked.len(), 1, "{status}");
    assert_eq!(
        (
            &parked[0]["entity"],
            &parked[0]["record"],
            &parked[0]["passes"]
        ),
        (&json!("invoices"), &json!("i2"), &json!(3)),
        "{status}"
    );
    assert!(
        parked[0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not name a people record"),
        "{status}"
    );
    assert!(
        recent_of(&status, "parked")
            .iter()
            .any(|e| e["record"] == "i2"),
        "{status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("parked after 3 syncs"),
        "{status}"
    );

    // The cursor moved past INV-2 (to INV-3's time): INV-1, changed outside
    // without a newer change time, is no longer read; a newer record is.
    server
        .call(
            Method::PATCH,
            "/invoices/i1",
            Some(json!({"number": "INV-1x"})),
        )
        .await;
    server
        .call(
            Method::POST,
            "/invoices",
            Some(json!({"id": "i4", "number": "INV-4", "updatedAt": "2026-11-03T10:00:00Z"})),
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(world.connec_by_outside_id("invoices", "i4").await.is_some());
    let inv1 = world.connec_by_outside_id("invoices", "i1").await.unwrap();
    assert_eq!(inv1["transaction_number"], "INV-1", "{inv1}");
    let status = world.status().await;
    assert!(status["last_error"].is_null(), "{status}");
    assert_eq!(
        entity_row(&status, "invoices")["rejected"],
        2,
        "a parked record tried again is not refused anew: {status}"
    );
    assert_eq!(status["parked"][0]["passes"], 4, "{status}");

    // Its person comes: the next sync brings INV-2 in and unparks it.
    server
        .call(
            Method::POST,
            "/people",
            Some(json!({"id": "p9", "first": "Bo", "last": "Ng"})),
        )
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let bo = world.connec_by_outside_id("people", "p9").await.unwrap();
    let inv2 = world
        .connec_by_outside_id("invoices", "i2")
        .await
        .expect("INV-2 synced once its person is");
    assert_eq!(inv2["person_id"], bo["id"], "{inv2}");
    let status = world.status().await;
    assert_eq!(status["parked"], json!([]), "{status}");
    assert_eq!(entity_row(&status, "invoices")["parked"], 0, "{status}");

    // Parked again; the entity configured anew (another direction) starts
    // afresh, its cursor and its parked records gone.
    server
        .call(
            Method::POST,
            "/invoices",
            Some(json!({"id": "i5", "number": "INV-5", "customerId": "p8", "updatedAt": "2026-11-04T10:00:00Z"})),
        )
        .await;
    for _ in 0..3 {
        let (code, body) = world.sync().await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    assert_eq!(world.status().await["parked"][0]["record"], "i5");
    configure_mapping(
        &server,
        &world,
        WITH_REFERENCES,
        json!({"people": {"direction": "both"}, "invoices": {"direction": "to_connec"}}),
    )
    .await;
    let status = world.status().await;
    assert_eq!(status["parked"], json!([]), "{status}");
}

const CREATES: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "invoices"
path = "/invoices"
idempotency_header = "Idempotency-Key"

[collections.fields]
transaction_number = "number"

[[collections]]
entity = "items"
path = "/items"
marker_field = "connecId"

[collections.fields]
name = "name"
"#;

/// The outside API makes a record but its answer is lost: the create tried
/// again makes no second record, by the idempotency key (invoices) or by
/// finding the record by its marker (items).
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_made_twice() {
    let server = JsonServer::start(json!({"invoices": [], "items": []})).await;
    let world = World::start(&["invoices", "items"]).await;
    configure_mapping(&server, &world, CREATES, Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");

    for (fault, entity, field, outside_field, value) in [
        (
            json!({"lose_create_once": true, "idempotency": true}),
            "invoices",
            "transaction_number",
            "number",
            "INV-L",
        ),
        (
            json!({"lose_create_once": true, "n": 2}),
            "items",
            "name",
            "name",
            "Lost",
        ),
    ] {
        server.fault(fault);
        let (code, created) = world
            .crm(
                Method::POST,
                entity,
                Some(json!({ entity: { field: value } })),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        let global = created[entity]["id"].as_str().unwrap().to_owned();
        let outside = eventually(&format!("{value} to be mapped"), || async {
            world.outside_id_of(entity, &global).await
        })
        .await;
        let made = server.find(entity, outside_field, value).await;
        assert_eq!(made.len(), 1, "{value} made once: {made:?}");
        assert_eq!(made[0]["id"].to_string().trim_matches('"'), outside);
        // The lost answer showed as a failure of the push, now over.
        let status = world.status().await;
        assert!(
            recent_of(&status, "resolved")
                .iter()
                .any(|e| e["entity"] == entity),
            "{status}"
        );
        assert!(recent_of(&status, "retried").is_empty(), "{status}");
        if entity == "items" {
            assert_eq!(made[0]["connecId"], global.as_str(), "{made:?}");
        }
    }
}

const VALUES: &str = r#"
[auth]
header = "Authorization"
value = "Bearer {token}"

[[collections]]
entity = "tax_rates"
path = "/rates"

[collections.fields]
name = "name"
status = { path = "active", values = { ACTIVE = "1", INACTIVE = "0" } }
"#;

/// Values mapped both ways by the mapping's `values`; an outside value it
/// does not name is refused by name in the status, not written.
#[tokio::test]
async fn values_are_mapped_both_ways_and_unknown_ones_refused_by_name() {
    let server = JsonServer::start(json!({"rates": [
        {"id": 1, "name": "VAT", "active": "1"},
        {"id": 2, "name": "Old VAT", "active": "0"},
        {"id": 3, "name": "Odd", "active": "7"}
    ]}))
    .await;
    let world = World::start(&["tax_rates"]).await;
    configure_mapping(&server, &world, VALUES, Value::Null).await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let vat = world.connec_by_outside_id("tax_rates", "1").await.unwrap();
    assert_eq!(vat["status"], "ACTIVE", "{vat}");
    let old = world.connec_by_outside_id("tax_rates", "2").await.unwrap();
    assert_eq!(old["status"], "INACTIVE", "{old}");
    assert!(world.connec_by_outside_id("tax_rates", "3").await.is_none());
    let status = world.status().await;
    let refused = recent_of(&status, "rejected");
    assert!(
        refused.iter().any(|e| e["record"] == "3"
            && e["detail"].as_str().unwrap().contains(
                "status: the outside value \"7\" at \"active\" is none of the mapping's values (\"1\", \"0\")"
            )),
        "{status}"
    );
    assert_eq!(entity_row(&status, "tax_rates")["rejected"], 1, "{status}");

    // Connec! → outside.
    let global = crm_id_of(&world, "tax_rates", "name", "VAT").await;
    let (code, body) = world
        .crm(
            Method::PUT,
            &format!("tax_rates/{global}"),
            Some(json!({"tax_rates": {"status": "INACTIVE"}})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually("INACTIVE to reach the API as \"0\"", || async {
        let (_, rate) = server.call(Method::GET, "/rates/1", None).await;
        (rate["active"] == "0").then_some(())
    })
    .await;

    // Corrected outside, the record comes in.
    server
        .call(Method::PATCH, "/rates/3", Some(json!({"active": "1"})))
        .await;
    let (code, body) = world.sync().await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let odd = world.connec_by_outside_id("tax_rates", "3").await.unwrap();
    assert_eq!(odd["status"], "ACTIVE", "{odd}");
}
