//! Bad input to the Hub: each rejection has the documented status, code and
//! field, and leaves the Hub's data exactly as it was.

use anyhow::Result;
use mno_e2e::hub_client::{basic_auth, bearer, hub_fingerprint, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mno_harness::on_both_databases!(
    TestPlatform;
    sign_up_and_sign_in_refuse_bad_input_and_change_nothing,
    org_member_and_install_rules_refuse_and_change_nothing,
    app_rules_refuse_and_change_nothing,
);

/// A request that must be refused with `status`/`code` (and `pointer`, if
/// given) and must change nothing.
struct Reject<'a> {
    platform: &'a TestPlatform,
    hub: &'a HubClient,
}

impl Reject<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        status: StatusCode,
        code: &str,
        pointer: Option<&str>,
    ) -> Result<Value> {
        let db = &self.platform.running().db;
        let before = hub_fingerprint(db).await?;
        let (got, answer) = self.hub.call(method.clone(), path, auth, body).await?;
        assert_eq!(got, status, "{method} {path}: {answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["code"], code, "{method} {path}: {answer}");
        assert_eq!(error["status"], status.as_u16().to_string());
        assert!(
            error["detail"].as_str().is_some_and(|d| d.len() > 10),
            "the detail says what to do: {answer}"
        );
        if let Some(pointer) = pointer {
            assert_eq!(
                error["source"]["pointer"], pointer,
                "{method} {path}: {answer}"
            );
        }
        let after = hub_fingerprint(db).await?;
        assert_eq!(before, after, "{method} {path} changed something");
        Ok(answer)
    }
}

async fn sign_up_and_sign_in_refuse_bad_input_and_change_nothing(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let reject = Reject {
        platform,
        hub: &hub,
    };
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;
    let signup = |email: &str, password: &str, name: &str| {
        Some(json!({"email": email, "password": password, "name": name}))
    };
    let post = |body| {
        reject.check(
            Method::POST,
            "/hub/v1/users",
            None,
            body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        )
    };

    reject
        .check(
            Method::POST,
            "/hub/v1/users",
            None,
            signup("ANN@example.com", TEST_PASSWORD, "Ann 2"),
            StatusCode::CONFLICT,
            "email_taken",
            Some("/email"),
        )
        .await?;
    let answer = post(signup("not-an-email", TEST_PASSWORD, "X")).await?;
    assert_eq!(answer["errors"][0]["source"]["pointer"], "/email");
    let answer = post(signup("bo@example.com", "short", "Bo")).await?;
    assert_eq!(answer["errors"][0]["source"]["pointer"], "/password");
    assert!(answer["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("at least 10"));
    // Every bad field at once.
    let answer = post(Some(json!({"email": "x", "password": "y"}))).await?;
    let pointers: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/email", "/password", "/name"]);
    // Not JSON, not even an object.
    let (status, body) = {
        let response = platform
            .http
            .post(platform.url("/hub/v1/users"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await?;
        (response.status(), response.json::<Value>().await?)
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "malformed_json");
    // The parser's words and what to do, not the framework's.
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("line 1 column 2")
            && detail.ends_with("fix it there and send it again")
            && !detail.contains("Failed to parse"),
        "{detail}"
    );
    reject
        .check(
            Method::POST,
            "/hub/v1/users",
            None,
            Some(json!(["a list"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        )
        .await?;

    // A wrong password and an unknown user get the very same answer.
    let wrong = reject
        .check(
            Method::POST,
            "/hub/v1/sessions",
            None,
            Some(json!({"email": "ann@example.com", "password": "wrong password!"})),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        )
        .await?;
    let unknown = reject
        .check(
            Method::POST,
            "/hub/v1/sessions",
            None,
            Some(json!({"email": "nobody@example.com", "password": "wrong password!"})),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        )
        .await?;
    assert_eq!(wrong, unknown);
    Ok(())
}

async fn org_member_and_install_rules_refuse_and_change_nothing(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let reject = Reject {
        platform,
        hub: &hub,
    };
    let (owner, token) = hub.signup_and_login("owner@example.com").await?;
    let (bob, bob_token) = hub.signup_and_login("bob@example.com").await?;
    let (_, eve_token) = hub.signup_and_login("eve@example.com").await?;
    let org = hub.create_org(&token, "Acme", "USD").await?;
    let owner_auth = bearer(&token);
    let bob_auth = bearer(&bob_token);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // Orgs.
    reject
        .check(
            Method::POST,
            "/hub/v1/orgs",
            None,
            Some(json!({"name": "X", "currency": "USD"})),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        )
        .await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/orgs",
            Some(&owner_auth),
            Some(json!({"name": "X", "currency": "dollars"})),
            unprocessable,
            "invalid_field",
            Some("/currency"),
        )
        .await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/orgs",
            Some(&owner_auth),
            Some(json!({"name": "X", "currency": "USD", "country": "France"})),
            unprocessable,
            "invalid_field",
            Some("/country"),
        )
        .await?;
    reject
        .check(
            Method::GET,
            "/hub/v1/orgs/no-such-org",
            Some(&owner_auth),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            "/hub/v1/orgs/no-such-org",
            Some(&owner_auth),
            Some(json!({"name": "Y"})),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await?;
    reject
        .check(
            Method::GET,
            &format!("/hub/v1/orgs/{org}"),
            Some(&bearer(&eve_token)),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            &format!("/hub/v1/orgs/{org}"),
            Some(&owner_auth),
            Some(json!({"timezone": "Not a zone!"})),
            unprocessable,
            "invalid_field",
            Some("/timezone"),
        )
        .await?;

    // Members.
    let members = format!("/hub/v1/orgs/{org}/members");
    reject
        .check(
            Method::POST,
            &members,
            Some(&owner_auth),
            Some(json!({"email": "bob@example.com", "role": "owner"})),
            unprocessable,
            "invalid_field",
            Some("/role"),
        )
        .await?;
    hub.add_member(&token, &org, "bob@example.com", "admin", &bob_token)
        .await?;
    reject
        .check(
            Method::POST,
            &members,
            Some(&owner_auth),
            Some(json!({"email": "bob@example.com", "role": "member"})),
            StatusCode::CONFLICT,
            "already_member",
            None,
        )
        .await?;
    // An admin may not make a super_admin, nor touch one.
    reject
        .check(
            Method::POST,
            &members,
            Some(&bob_auth),
            Some(json!({"email": "eve@example.com", "role": "super_admin"})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    reject
        .check(
            Method::DELETE,
            &format!("{members}/{}", owner.id),
            Some(&bob_auth),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    // The last super_admin can be neither removed nor demoted, even by themselves.
    reject
        .check(
            Method::DELETE,
            &format!("{members}/{}", owner.id),
            Some(&owner_auth),
            None,
            StatusCode::CONFLICT,
            "last_super_admin",
            None,
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            &format!("{members}/{}", owner.id),
            Some(&owner_auth),
            Some(json!({"role": "admin"})),
            StatusCode::CONFLICT,
            "last_super_admin",
            None,
        )
        .await?;
    reject
        .check(
            Method::DELETE,
            &format!("{members}/no-such-user"),
            Some(&owner_auth),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await?;
    // With a second super_admin, the first may step down.
    hub.expect(
        StatusCode::OK,
        Method::PATCH,
        &format!("{members}/{}", bob.id),
        Some(&owner_auth),
        Some(json!({"role": "super_admin"})),
    )
    .await?;
    hub.expect(
        StatusCode::OK,
        Method::PATCH,
        &format!("{members}/{}", owner.id),
        Some(&owner_auth),
        Some(json!({"role": "admin"})),
    )
    .await?;

    // Installs.
    let app = hub
        .create_app(&token, "Books", None, &[("invoices", true, false)])
        .await?;
    let installs = format!("/hub/v1/orgs/{org}/installs");
    reject
        .check(
            Method::POST,
            &installs,
            Some(&owner_auth),
            Some(json!({"app_id": "no-such-app"})),
            unprocessable,
            "unknown_app",
            Some("/app_id"),
        )
        .await?;
    reject
        .check(
            Method::POST,
            &installs,
            Some(&owner_auth),
            Some(json!({})),
            unprocessable,
            "invalid_field",
            Some("/app_id"),
        )
        .await?;
    hub.add_member(
        &bob_token,
        &org,
        "eve@example.com",
        "power_user",
        &eve_token,
    )
    .await?;
    reject
        .check(
            Method::POST,
            &installs,
            Some(&bearer(&eve_token)),
            Some(json!({"app_id": app.id})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    hub.install(&token, &org, &app.id).await?;
    reject
        .check(
            Method::POST,
            &installs,
            Some(&owner_auth),
            Some(json!({"app_id": app.id})),
            StatusCode::CONFLICT,
            "already_installed",
            None,
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            &format!("{installs}/{}", app.id),
            Some(&owner_auth),
            Some(json!({})),
            unprocessable,
            "invalid_field",
            Some("/data_sharing"),
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            &format!("{installs}/{}", app.id),
            Some(&owner_auth),
            Some(json!({"data_sharing": "yes"})),
            unprocessable,
            "invalid_field",
            Some("/data_sharing"),
        )
        .await?;
    // Entities: a list of the app's shared entities, never empty, never a string.
    for (body, pointer) in [
        (json!({"entities": []}), "/entities"),
        (json!({"entities": "people"}), "/entities"),
        (json!({"entities": ["invoices", "nope"]}), "/entities/1"),
    ] {
        reject
            .check(
                Method::PATCH,
                &format!("{installs}/{}", app.id),
                Some(&owner_auth),
                Some(body),
                unprocessable,
                "invalid_field",
                Some(pointer),
            )
            .await?;
    }
    // null for a field that cannot be cleared is refused, not read as "absent".
    reject
        .check(
            Method::PATCH,
            &format!("/hub/v1/orgs/{org}"),
            Some(&owner_auth),
            Some(json!({"currency": null})),
            unprocessable,
            "invalid_field",
            Some("/currency"),
        )
        .await?;
    // A misspelled field is refused, not ignored (it would leave data sharing on).
    reject
        .check(
            Method::PATCH,
            &format!("{installs}/{}", app.id),
            Some(&owner_auth),
            Some(json!({"datasharing": false})),
            unprocessable,
            "invalid_field",
            Some("/datasharing"),
        )
        .await?;
    reject
        .check(
            Method::DELETE,
            &format!("{installs}/no-such-app"),
            Some(&owner_auth),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await?;
    Ok(())
}

async fn app_rules_refuse_and_change_nothing(platform: &TestPlatform) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let reject = Reject {
        platform,
        hub: &hub,
    };
    let (_, token) = hub.signup_and_login("owner@example.com").await?;
    let (_, eve_token) = hub.signup_and_login("eve@example.com").await?;
    let auth = bearer(&token);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let app_body = |extra: Value| {
        let mut body = json!({"name": "Books", "stack": "cloud", "shared_entities": []});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        Some(body)
    };
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            app_body(json!({"stack": "desktop"})),
            unprocessable,
            "invalid_field",
            Some("/stack"),
        )
        .await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            app_body(json!({"webhook_url": "ftp://example.com"})),
            unprocessable,
            "invalid_field",
            Some("/webhook_url"),
        )
        .await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            app_body(json!({"account_webhook_url": "not a url"})),
            unprocessable,
            "invalid_field",
            Some("/account_webhook_url"),
        )
        .await?;
    reject.check(Method::POST, "/hub/v1/apps", Some(&auth),
        app_body(json!({"shared_entities": [{"entity": "invoices", "read": true}, {"entity": "invoices", "write": true}]})),
        unprocessable, "invalid_field", Some("/shared_entities/1/entity")).await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            app_body(json!({"shared_entities": [{"entity": "rec.>", "read": true}]})),
            unprocessable,
            "invalid_field",
            Some("/shared_entities/0/entity"),
        )
        .await?;
    // A well-formed name that is no collection (a typo of `invoices`).
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            app_body(json!({"shared_entities": [
                {"entity": "people", "read": true},
                {"entity": "invoice", "read": true}
            ]})),
            unprocessable,
            "invalid_field",
            Some("/shared_entities/1/entity"),
        )
        .await?;
    reject
        .check(
            Method::POST,
            "/hub/v1/apps",
            None,
            app_body(json!({})),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        )
        .await?;

    let app = hub
        .create_app(&token, "Books", None, &[("invoices", true, false)])
        .await?;
    let path = format!("/hub/v1/apps/{}", app.id);
    reject
        .check(
            Method::PATCH,
            &path,
            Some(&bearer(&eve_token)),
            Some(json!({"name": "Mine"})),
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    reject
        .check(
            Method::GET,
            &path,
            Some(&bearer(&eve_token)),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    reject
        .check(
            Method::POST,
            &format!("{path}/credentials/rotate"),
            Some(&bearer(&eve_token)),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
            None,
        )
        .await?;
    reject
        .check(
            Method::PATCH,
            &path,
            Some(&auth),
            Some(json!({"webhook_url": "nope"})),
            unprocessable,
            "invalid_field",
            Some("/webhook_url"),
        )
        .await?;
    reject
        .check(
            Method::GET,
            "/hub/v1/apps/no-such-app",
            Some(&auth),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        )
        .await?;
    reject
        .check(
            Method::GET,
            &path,
            Some(&basic_auth(&app.key, "ms_wrong")),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
        )
        .await?;

    // The IDM check refuses a malformed question.
    reject.check(Method::POST, "/idm/v1/check", None,
        Some(json!({"credential": {"type": "session", "token": "x"}, "org": "o", "action": "delete"})),
        unprocessable, "invalid_field", Some("/action")).await?;
    reject
        .check(
            Method::POST,
            "/idm/v1/check",
            None,
            Some(json!({"credential": {"type": "password"}, "org": "o", "action": "read"})),
            unprocessable,
            "invalid_field",
            Some("/credential/type"),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn webhook_urls_delivery_would_refuse_are_refused_when_the_app_is_registered() -> Result<()> {
    // As `mno up` runs by default: private webhooks not allowed.
    let platform = TestPlatform::spawn_with(|c| c.allow_private_webhooks = false).await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login("owner@example.com").await?;
    let auth = bearer(&token);
    let reject = Reject {
        platform: &platform,
        hub: &hub,
    };
    for (field, url) in [
        ("webhook_url", "http://169.254.169.254/latest/meta-data"),
        ("webhook_url", "http://localhost:9/x"),
        ("account_webhook_url", "http://[::1]/x"),
        ("webhook_url", "https://user:pass@books.example.com/x"),
        ("webhook_url", "http://198.18.0.1/x"),
        ("webhook_url", "http://240.0.0.1/x"),
        ("webhook_url", "http://192.0.0.8/x"),
        ("webhook_url", "http://[::10.0.0.1]/x"),
        ("webhook_url", "http://[64:ff9b::127.0.0.1]/x"),
        ("account_webhook_url", "http://[2002:c0a8:101::1]/x"),
    ] {
        reject
            .check(
                Method::POST,
                "/hub/v1/apps",
                Some(&auth),
                Some(json!({"name": "Books", field: url})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                Some(&format!("/{field}")),
            )
            .await?;
    }
    let (status, app) = hub
        .call(
            Method::POST,
            "/hub/v1/apps",
            Some(&auth),
            Some(json!({"name": "Books", "webhook_url": "https://books.example.com/mno"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    Ok(())
}
