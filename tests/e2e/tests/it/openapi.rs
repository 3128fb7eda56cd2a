//! `/openapi.json` documents every route the gateway serves, and only those:
//! the router's paths and each path's methods are compared with the document's.

use std::collections::{BTreeMap, BTreeSet};

use mno_e2e::TestPlatform;
use serde_json::Value;

/// The paths the composed router holds, read from its `Debug` form (axum
/// prints each registered path; there is no other public listing).
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let mut paths = BTreeSet::new();
    let mut rest = debug.as_str();
    while let Some(start) = rest.find("RouteId(") {
        rest = &rest[start..];
        // `RouteId(3): "/hub/v1/orgs/{org}"`
        let Some(colon) = rest.find("): \"") else {
            break;
        };
        let after = &rest[colon + 4..];
        let end = after.find('"').expect("a closing quote");
        if after[..end].starts_with('/') {
            paths.insert(after[..end].to_owned());
        }
        rest = &after[end..];
    }
    paths
}

/// `GET /openapi.json`, checked to be served as JSON.
pub(crate) async fn document(platform: &TestPlatform) -> Value {
    let response = platform
        .http
        .get(platform.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.unwrap()
}

/// A concrete URL for a templated path (the values need not exist).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(match &rest[open + 1..close] {
            "seq" => "1",
            "entity" => "invoices",
            "category" => "accounts",
            "name" => "balance",
            _ => "x0",
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_route_is_in_the_document_with_its_methods() {
    let platform = TestPlatform::spawn().await;
    let doc = document(&platform).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(|k| k.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect();

    let served = router_paths(&platform.running().router);
    assert!(
        served.len() > 40,
        "the router's paths were not read: {served:?}"
    );
    // The portal's HTML pages are web pages, not API: exactly the paths its
    // own router serves are left out, so any other new route must be documented.
    let portal = router_paths(&mno_portal::router(mno_portal::PortalConfig {
        secure_cookies: false,
        api_base: platform.base_url.clone(),
        frontend_key: None,
    }));
    assert!(
        portal.contains("/signin") && portal.contains("/o/{org}/dashboards/{id}"),
        "the portal's paths were not read: {portal:?}"
    );
    let not_in_router: Vec<_> = portal.difference(&served).collect();
    assert!(
        not_in_router.is_empty(),
        "the platform does not serve these portal pages: {not_in_router:?}"
    );
    // `/connec/api/v2/` answers as `/connec/api/v2` (a trailing-slash alias);
    // `/{*__private__axum_fallback}` is where axum keeps the fallback.
    let served: BTreeSet<String> = served
        .into_iter()
        .filter(|p| {
            p != "/connec/api/v2/" && !p.contains("__private__axum_fallback") && !portal.contains(p)
        })
        .collect();
    let in_doc: BTreeSet<String> = documented.keys().cloned().collect();
    let undocumented: Vec<_> = served.difference(&in_doc).collect();
    let not_served: Vec<_> = in_doc.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "/openapi.json documents paths the router does not serve: {not_served:?}"
    );

    // Each path's methods: a method it does not serve answers 405 with the
    // router's own list in `Allow` (HEAD comes with GET).
    for (path, methods) in &documented {
        let response = platform
            .http
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                platform.url(&concrete(path)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "PROPFIND {path}");
        let allow: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(&allow, methods, "methods of {path}: router vs document");
    }
}

#[tokio::test]
async fn the_document_describes_security_and_the_error_shape() {
    let platform = TestPlatform::spawn().await;
    let doc = document(&platform).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["app"]["scheme"], "basic");
    assert_eq!(schemes["user"]["scheme"], "bearer");
    let error = &doc["components"]["schemas"]["ErrorObject"];
    for field in ["status", "code", "title", "detail"] {
        assert!(
            error["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from(field)),
            "ErrorObject requires {field}: {error}"
        );
    }
    // The OAuth error shape ({"error","error_description"}), described apart.
    let oauth_error = &doc["components"]["schemas"]["OAuthErrorBody"];
    assert_eq!(
        oauth_error["required"],
        serde_json::json!(["error", "error_description"]),
        "{oauth_error}"
    );
    // Every 4xx/5xx answer of every operation has the JSON error shape (the
    // batch's may also be its results), and every operation says who may call it.
    // Exceptions, by the standards they follow: OpenID Connect's token and
    // userinfo endpoints answer OAuth's error shape (RFC 6749 §5.2, RFC 6750);
    // its browser endpoints answer HTML pages.
    let oauth = ["/sso/v1/token", "/sso/v1/userinfo"];
    let browser_pages = ["/sso/v1/authorize", "/sso/v1/end_session"];
    let public = [
        "/.well-known/openid-configuration",
        "/sso/v1/jwks",
        "/sso/v1/authorize",
        "/sso/v1/end_session",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/hub/v1/users",
        "/hub/v1/sessions",
        // A reset link's token is its own credential, in the body.
        "/hub/v1/password_resets/lookup",
        "/hub/v1/password_resets/redeem",
        "/idm/v1/check",
        "/connec/api/v2",
        "/connec/api/v2/json_schema/{entity}",
        "/impac/api/v2/widgets",
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, answer) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    if browser_pages.contains(&path.as_str()) {
                        let content = answer["content"].as_object().unwrap();
                        assert!(
                            content.keys().eq(["text/html"]),
                            "{method} {path} {status}: a page is described: {content:?}"
                        );
                        continue;
                    }
                    let schema = answer["content"]["application/json"]["schema"].to_string();
                    let expected = if oauth.contains(&path.as_str()) {
                        "#/components/schemas/OAuthErrorBody"
                    } else {
                        "#/components/schemas/ErrorBody"
                    };
                    assert!(
                        schema.contains(expected)
                            || (path == "/connec/batch" && schema.contains("BatchRefusal")),
                        "{method} {path} {status}: {schema}"
                    );
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            // Signing in is public; signing out everywhere, on the same path, is a user's.
            let user_only = method == "delete" && path == "/hub/v1/sessions";
            assert_eq!(
                secured,
                user_only || !public.contains(&path.as_str()),
                "{method} {path}: security {}",
                op["security"]
            );
        }
    }
}
