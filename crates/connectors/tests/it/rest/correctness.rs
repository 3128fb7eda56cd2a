//! Data correctness of the REST connector (from an integrator's trial): a
//! value cleared in Connec! is cleared outside, an update keeps the outside
//! fields the mapping does not know, `last_error` goes once the sync works
//! again, a record waiting for a reference that never comes is parked
//! instead of holding its entity back, and a create whose answer was lost
//! is not made twice.

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
