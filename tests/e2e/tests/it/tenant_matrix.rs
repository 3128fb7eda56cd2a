//! Every org-scoped route of `/openapi.json` × every principal that must not
//! reach org A's data: each gets a denial the document lists (401 with no
//! credentials; 401, 403 or 404 otherwise), no byte of org A's data it did
//! not send itself, and nothing changes. The route list is the document's, so
//! a new route is covered as soon as it is documented.

use std::collections::BTreeMap;
use std::time::Duration;

use mno_e2e::hub_client::{basic_auth, bearer, hub_fingerprint, HubClient};
use mno_e2e::org_fixture::{json_answer, OrgFixture};
use mno_e2e::TestPlatform;
use reqwest::Method;
use serde_json::{json, Value};

/// A path of the document with org A's values in its parameters.
fn fill(a: &OrgFixture, path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        let name = &rest[open + 1..close];
        // The collection an id is of: the segment before it.
        let collection = rest[..open]
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        out.push_str(match (name, collection) {
            ("org", _) => &a.org,
            ("app", _) => &a.app.id,
            ("user", _) => &a.owner_id,
            ("invitation", _) => &a.invitation,
            ("invoice", _) => &a.invoice,
            ("id", "kpis") => &a.kpi,
            ("id", "dashboards") => &a.dashboard,
            ("id", "bills") => &a.bill,
            ("id", "recurring_bills") => &a.recurring_bill,
            ("id", _) => &a.record,
            ("entity", _) => "people",
            ("seq", _) => "1",
            ("category", _) => "accounts",
            ("name", _) => "balance",
            (other, _) => panic!("no value for path parameter {other} of {path}"),
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Query and body that aim a request at org A where the route takes them there.
fn query_and_body(
    a: &OrgFixture,
    path: &str,
    method: &Method,
    writes_only: bool,
) -> (String, Option<Value>) {
    // Only where the route reads its orgs from the query: a KPI's delete
    // must not learn the org from the caller.
    let query = if path.starts_with("/impac") && method == Method::GET {
        format!("?org_ids[]={}", a.org)
    } else if path == "/connec/api/v2/deliveries" {
        format!("?app={}", a.app.id)
    } else {
        String::new()
    };
    let body = match (path, method.as_str()) {
        (_, "GET" | "DELETE") => None,
        ("/connec/batch", _) => {
            let read = json!({"method": "get",
                    "url": format!("/api/v2/{}/people/{}", a.org, a.record)});
            let write = json!({"method": "post", "url": format!("/api/v2/{}/people", a.org),
                    "params": {"people": {"first_name": "Mallory"}}});
            Some(json!({"ops": if writes_only { vec![write] } else { vec![read, write] }}))
        }
        ("/impac/api/v2/kpis", _) => Some(json!({"org_ids": [a.org],
                "widget": "accounts/profit_and_loss", "element": "totals.revenue",
                "target": {"max": "1"}, "alert": {"inapp": true}})),
        ("/impac/api/v2/dashboards", _) => Some(json!({"org_ids": [a.org], "name": "Mallory's"})),
        ("/impac/api/v2/dashboards/{id}", _) => Some(json!({"name": "Mallory's now"})),
        // Valid bills, so that only the caller can be what is refused.
        ("/hub/v1/bills", _) => Some(json!({"org": a.org, "price_cents": 1,
                "currency": "USD", "description": "Mallory's"})),
        ("/hub/v1/recurring_bills", _) => Some(json!({"org": a.org, "price_cents": 1,
                "currency": "USD", "description": "Mallory's", "period": "month"})),
        (p, _) if p.ends_with("/id_map") => Some(json!({"local_id": "M-1"})),
        (p, _) if p.starts_with("/connec/api/v2/{org}/company") => {
            Some(json!({"company": {"name": "Mallory Ltd"}}))
        }
        (p, _) if p.starts_with("/connec/api/v2/{org}/") => {
            Some(json!({"people": {"first_name": "Mallory"}}))
        }
        (p, _) if p.ends_with("/recover") => Some(json!({"since": 1})),
        (p, _) if p.ends_with("/members") || p.ends_with("/invitations") => {
            Some(json!({"email": "mallory@example.com", "role": "admin"}))
        }
        (p, _) if p.contains("/members/") => Some(json!({"role": "super_admin"})),
        (p, _) if p.ends_with("/installs") => Some(json!({"app_id": a.app.id})),
        (p, _) if p.contains("/installs/") => Some(json!({"data_sharing": false})),
        ("/hub/v1/orgs/{org}", _) => Some(json!({"name": "Mallory's now"})),
        ("/hub/v1/apps/{app}", _) => Some(json!({"name": "Mallory's now"})),
        _ => Some(json!({})),
    };
    (query, body)
}

/// Routes that are not about one org's data: public ones, the caller's own
/// (sign-in, `me`, its password and sessions, the orgs and apps it creates or belongs to, an app's own
/// bills and customers), the app catalogue (public to anyone signed in), the
/// platform-wide rates, and single sign-on, whose endpoints answer about the
/// caller's own code, token or session (tests/e2e/tests/it/sso.rs covers them).
/// Bills aimed at org A in the body (POST) are org-scoped.
fn org_scoped(path: &str, method: &str, op: &Value) -> bool {
    let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
    let own = [
        "/hub/v1/users/me",
        "/hub/v1/users/me/password",
        "/hub/v1/sessions/current",
        // Signing out everywhere ends the caller's own sessions.
        "/hub/v1/sessions",
        "/hub/v1/orgs",
        "/hub/v1/invitations",
        "/hub/v1/apps",
        "/impac/api/v2/rates",
        "/hub/v1/app/orgs",
    ];
    let own_lists = ["/hub/v1/bills", "/hub/v1/recurring_bills"];
    let own_list = method == "get" && own_lists.contains(&path);
    secured && !own.contains(&path) && !own_list && !path.starts_with("/sso/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_principal_outside_org_a_reaches_its_data() {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let http = &platform.http;

    // Org A: its owner, an app installed with read and write, a record, a KPI.
    let marker = format!("SecretAnn{}", uuid_like());
    let a = OrgFixture::create(
        &platform,
        "owner-a@example.com",
        &[("people", true, true), ("invoices", true, true)],
        json!({"id": "P-A", "first_name": marker, "last_name": "Aside"}),
    )
    .await;
    let (owner_a, org_a) = (a.owner_token.clone(), a.org.clone());

    // Org B, its owner and its app; an app installed nowhere; an app of org A
    // that may read but not write; a member of org A who was removed.
    let (owner_b, _org_b, app_b) = hub
        .org_with_app("owner-b@example.com", None, &[("people", true, true)])
        .await
        .unwrap();
    let loose = hub
        .create_app(&owner_b, "Loose", None, &[("people", true, true)])
        .await
        .unwrap();
    let reader = hub
        .create_app(
            &owner_a,
            "Reader",
            None,
            &[("people", true, false), ("invoices", true, false)],
        )
        .await
        .unwrap();
    hub.install(&owner_a, &org_a, &reader.id).await.unwrap();
    let (gone, gone_token) = hub.signup_and_login("removed@example.com").await.unwrap();
    hub.add_member(&owner_a, &org_a, &gone.email, "admin", &gone_token)
        .await
        .unwrap();
    hub.remove_member(&owner_a, &org_a, &gone.id).await.unwrap();

    // What org A holds that no one outside may read back (unless they sent it).
    let secrets = [
        a.org.clone(),
        a.owner_id.clone(),
        "owner-a@example.com".to_owned(),
        a.app.id.clone(),
        a.app.key.clone(),
        a.record.clone(),
        marker.clone(),
        "Aside".to_owned(),
        a.kpi.clone(),
        a.dashboard.clone(),
        a.bill.clone(),
        a.recurring_bill.clone(),
        a.invoice.clone(),
        "3 seats".to_owned(),
    ];

    // (name, Authorization, writes only: a principal allowed to read org A)
    let principals: Vec<(&str, Option<String>, bool)> = vec![
        ("no credentials", None, false),
        ("another org's user", Some(bearer(&owner_b)), false),
        (
            "another org's app",
            Some(basic_auth(&app_b.key, &app_b.secret)),
            false,
        ),
        (
            "an app not installed",
            Some(basic_auth(&loose.key, &loose.secret)),
            false,
        ),
        ("a removed member", Some(bearer(&gone_token)), false),
        (
            "an app that may read, not write",
            Some(basic_auth(&reader.key, &reader.secret)),
            true,
        ),
    ];

    let doc = json_answer(http.get(platform.url("/openapi.json"))).await;
    let hub_before = hub_fingerprint(&platform.running().db).await.unwrap();
    let records_before = records_count(&platform).await;

    let mut failures = Vec::new();
    let mut cells = 0;
    let mut per_principal: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !org_scoped(path, method, op) {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.parse().ok())
                .collect();
            let url = fill(&a, path);
            for (who, auth, writes_only) in &principals {
                // A reader of org A may read; KPIs need only read on their widget
                // (impac.md); an app installed in org A may bill it (billing.md);
                // an app maps its own id of a record it reads (connec.md).
                let bills_org_a = method == Method::POST && path.ends_with("bills");
                let maps_own_id = path.ends_with("/id_map");
                if *writes_only
                    && (method == Method::GET
                        || path.starts_with("/impac")
                        || bills_org_a
                        || maps_own_id)
                {
                    continue;
                }
                let (query, body) = query_and_body(&a, path, &method, *writes_only);
                cells += 1;
                *per_principal.entry(who).or_default() += 1;
                let mut request =
                    http.request(method.clone(), platform.url(&format!("{url}{query}")));
                if let Some(auth) = auth {
                    request = request.header("authorization", auth);
                }
                let sent = format!("{url}{query} {}", body.clone().unwrap_or_default());
                if let Some(body) = &body {
                    request = request.json(body);
                }
                // A stream (`/stream`) that were wrongly let through would never end.
                let response = match request.timeout(Duration::from_secs(10)).send().await {
                    Ok(response) => response,
                    Err(e) => {
                        failures.push(format!("{method} {path} as {who}: no answer: {e}"));
                        continue;
                    }
                };
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                let cell = format!("{method} {path} as {who}");
                let denied = if path == "/connec/batch" && status == 200 {
                    // A batch answers per op: each op must be denied.
                    let answer: Value = serde_json::from_str(&text).unwrap_or_default();
                    answer["results"].as_array().is_some_and(|results| {
                        results.iter().all(|r| {
                            r["status"]
                                .as_u64()
                                .is_some_and(|s| [401, 403, 404].contains(&s))
                        })
                    })
                } else if auth.is_none() {
                    status == 401
                } else {
                    [401, 403, 404].contains(&status)
                };
                if !denied {
                    failures.push(format!("{cell}: not denied: {status} {text}"));
                } else if !documented.contains(&status) {
                    failures.push(format!(
                        "{cell}: {status} is not in the document's answers {documented:?}"
                    ));
                }
                for secret in &secrets {
                    if text.contains(secret.as_str()) && !sent.contains(secret.as_str()) {
                        failures.push(format!(
                            "{cell}: the answer holds org A's {secret:?}: {text}"
                        ));
                    }
                }
            }
        }
    }
    assert!(cells > 100, "only {cells} cells: {per_principal:?}");
    assert_eq!(per_principal.len(), principals.len(), "{per_principal:?}");
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        hub_fingerprint(&platform.running().db).await.unwrap(),
        hub_before,
        "a denied request changed the Hub"
    );
    assert_eq!(
        records_count(&platform).await,
        records_before,
        "a denied request wrote a record event"
    );
    // Nor did any remove org A's KPI (Impac! keeps it outside the Hub's tables).
    let kpis = json_answer(
        http.get(platform.url(&format!("/impac/api/v2/kpis?org_ids[]={org_a}")))
            .header("authorization", bearer(&owner_a)),
    )
    .await;
    assert_eq!(
        kpis["kpis"][0]["id"],
        a.kpi.as_str(),
        "org A's KPI is gone: {kpis}"
    );
}

async fn records_count(platform: &TestPlatform) -> u64 {
    let js = &platform.running().bus.js;
    let mut stream = js.get_stream(mno_events::streams::RECORDS).await.unwrap();
    stream.info().await.unwrap().state.messages
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
