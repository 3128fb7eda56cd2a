//! Single billing end to end: apps submit bills over HTTP (their own
//! credentials), `mno billing run` (parsed as the CLI parses it) issues one
//! invoice per (org, period, currency) that can be rebuilt from stream HUB
//! byte for byte, and org admins read invoices as JSON and HTML.

use anyhow::Result;
use chrono::Datelike;
use clap::Parser;
use mno_e2e::hub_client::{basic_auth, bearer, hub_fingerprint, App, HubClient};
use mno_e2e::TestPlatform;
use mno_gateway::cli::Cli;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mno_harness::on_both_databases!(
    TestPlatform;
    bills_are_idempotent_checked_and_only_for_orgs_that_installed_the_app,
    the_billing_run_issues_one_invoice_per_org_period_and_currency_and_rebuilds_it_from_the_stream,
    recurring_bills_bill_each_cycle_once_with_the_initial_charge_once,
);

async fn mno(args: &[&str]) -> Result<()> {
    let mut argv = vec!["mno"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)?.run().await
}

/// `mno billing <args>` against the platform's bus and database.
async fn billing_cli(platform: &TestPlatform, args: &[&str]) -> Result<()> {
    let url = platform.nats.url();
    let dir = platform.data_dir.path().to_str().unwrap().to_owned();
    let mut argv = vec!["billing"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--nats-url", &url, "--data-dir", &dir]);
    if let Some(database) = &platform.config.database_url {
        argv.extend_from_slice(&["--database-url", database]);
    }
    mno(&argv).await
}

/// POST with the app's credentials and an optional Idempotency-Key.
async fn app_post(
    platform: &TestPlatform,
    app: &App,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> Result<(StatusCode, Value)> {
    let mut request = platform
        .http
        .post(platform.url(path))
        .header("Authorization", basic_auth(&app.key, &app.secret))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

fn bill(org: &str, cents: i64, currency: &str, ended: &str) -> Value {
    json!({
        "org": org,
        "price_cents": cents,
        "currency": currency,
        "description": "Seats <b>& more</b>",
        "units": 3,
        "period_started_at": "2026-11-01T00:00:00Z",
        "period_ended_at": ended,
        "third_party": false,
    })
}

async fn count(platform: &TestPlatform, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&platform.running().db)
        .await
        .unwrap()
}

/// The pointers of a 422's errors.
fn pointers(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"]["pointer"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn bills_are_idempotent_checked_and_only_for_orgs_that_installed_the_app(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub.org_with_app("owner@example.com", None, &[]).await?;
    let other_org = hub.create_org(&token, "Not a customer", "USD").await?;

    let body = bill(&org, 1050, "usd", "2026-11-30T23:59:59Z");
    let (status, first) =
        app_post(platform, &app, "/hub/v1/bills", Some("k-1"), body.clone()).await?;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "submitted");
    assert_eq!(first["currency"], "USD");
    assert_eq!(first["due_period"], "2026-11");
    // The same key and body: the same bill, nothing new.
    let (status, again) =
        app_post(platform, &app, "/hub/v1/bills", Some("k-1"), body.clone()).await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(count(platform, "SELECT COUNT(*) FROM hub_bills").await, 1);
    // The same key, another body: 422, as in Connec!.
    let (status, conflict) = app_post(
        platform,
        &app,
        "/hub/v1/bills",
        Some("k-1"),
        bill(&org, 999, "USD", "2026-11-30T23:59:59Z"),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{conflict}");
    assert_eq!(conflict["errors"][0]["code"], "idempotency_key_reused");

    // Bad input: 422 naming each field, and nothing changes.
    let before = hub_fingerprint(&platform.running().db).await?;
    let cases = [
        (json!({"price_cents": -1}), "/price_cents"),
        (json!({"price_cents": 10.5}), "/price_cents"),
        (json!({"price_cents": "1050"}), "/price_cents"),
        (json!({"currency": "XYZ"}), "/currency"),
        (json!({"currency": "EURO"}), "/currency"),
        (
            json!({"period_started_at": "2026-11-30T00:00:00Z", "period_ended_at": "2026-11-01T00:00:00Z"}),
            "/period_ended_at",
        ),
        (json!({"description": " "}), "/description"),
        (json!({"units": 0}), "/units"),
    ];
    for (change, pointer) in cases {
        let mut body = bill(&org, 100, "USD", "2026-11-30T23:59:59Z");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, error) = app_post(platform, &app, "/hub/v1/bills", None, body.clone()).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(
            pointers(&error),
            vec![pointer.to_owned()],
            "{body}: {error}"
        );
        assert!(!error["errors"][0]["detail"].as_str().unwrap().is_empty());
    }
    // Every bad field at once.
    let (status, error) = app_post(
        platform,
        &app,
        "/hub/v1/bills",
        None,
        json!({"org": org, "price_cents": -5, "currency": "ZZZ", "description": "x"}),
    )
    .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pointers(&error), vec!["/price_cents", "/currency"]);
    // An org that did not install the app: 403; an org that does not exist: the same.
    for target in [other_org.as_str(), "no-such-org"] {
        let (status, error) = app_post(
            platform,
            &app,
            "/hub/v1/bills",
            None,
            bill(target, 100, "USD", "2026-11-30T23:59:59Z"),
        )
        .await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    }
    assert_eq!(hub_fingerprint(&platform.running().db).await?, before);
    assert_eq!(count(platform, "SELECT COUNT(*) FROM hub_bills").await, 1);

    // No credentials, or a user's session: 401/403 (the route is the app's).
    let (status, _) = hub
        .call(Method::GET, "/hub/v1/bills", Some(&bearer(&token)), None)
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another app sees none of these bills and cannot cancel them.
    let other = hub.create_app(&token, "Other", None, &[]).await?;
    let id = first["id"].as_str().unwrap();
    let other_auth = basic_auth(&other.key, &other.secret);
    let listed = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/bills",
            Some(&other_auth),
            None,
        )
        .await?;
    assert_eq!(listed["bills"], json!([]));
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = hub
            .call(
                method,
                &format!("/hub/v1/bills/{id}"),
                Some(&other_auth),
                None,
            )
            .await?;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Its own app cancels it; an invoiced bill could not be.
    let auth = basic_auth(&app.key, &app.secret);
    let cancelled = hub
        .expect(
            StatusCode::OK,
            Method::DELETE,
            &format!("/hub/v1/bills/{id}"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(cancelled["status"], "cancelled");
    let listed = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/bills",
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(listed["bills"][0]["status"], "cancelled");
    let filtered = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/bills?org={other_org}"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(filtered["bills"], json!([]));
    let (status, error) = hub
        .call(Method::GET, "/hub/v1/bills?orgs=x", Some(&auth), None)
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errors"][0]["source"]["parameter"], "orgs");
    Ok(())
}

async fn the_billing_run_issues_one_invoice_per_org_period_and_currency_and_rebuilds_it_from_the_stream(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (token, org, books) = hub.org_with_app("owner@example.com", None, &[]).await?;
    let crm = hub.create_app(&token, "CRM <script>", None, &[]).await?;
    hub.install(&token, &org, &crm.id).await?;
    let (token_b, org_b, _) = hub.org_with_app("other@example.com", None, &[]).await?;
    hub.install(&token_b, &org_b, &books.id).await?;
    let nov = "2026-11-30T23:59:59Z";

    for (app, target, cents, currency) in [
        (&books, &org, 1000, "USD"),
        (&books, &org, 250, "USD"),
        (&crm, &org, 4000, "USD"),
        (&crm, &org, 700, "EUR"),
        (&books, &org_b, 1, "USD"),
    ] {
        let (status, body) = app_post(
            platform,
            app,
            "/hub/v1/bills",
            None,
            bill(target, cents, currency, nov),
        )
        .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Due in December: not on November's invoice.
    app_post(
        platform,
        &books,
        "/hub/v1/bills",
        None,
        bill(&org, 5, "USD", "2026-12-15T00:00:00Z"),
    )
    .await?;
    // Cancelled: on no invoice.
    let (_, cancelled) = app_post(
        platform,
        &books,
        "/hub/v1/bills",
        None,
        bill(&org, 77, "USD", nov),
    )
    .await?;
    hub.expect(
        StatusCode::OK,
        Method::DELETE,
        &format!("/hub/v1/bills/{}", cancelled["id"].as_str().unwrap()),
        Some(&basic_auth(&books.key, &books.secret)),
        None,
    )
    .await?;

    billing_cli(platform, &["run", "--period", "2026-11"]).await?;
    let auth = bearer(&token);
    let list = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/invoices"),
            Some(&auth),
            None,
        )
        .await?;
    let invoices = list["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 2, "{list}");
    let usd = invoices.iter().find(|i| i["currency"] == "USD").unwrap();
    let eur = invoices.iter().find(|i| i["currency"] == "EUR").unwrap();
    assert_eq!(usd["total_cents"], 5250);
    assert_eq!(eur["total_cents"], 700);
    assert_eq!(usd["id"], format!("inv-{org}-2026-11-USD"));
    let usd_id = usd["id"].as_str().unwrap().to_owned();
    let invoice = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/invoices/{usd_id}"),
            Some(&auth),
            None,
        )
        .await?;
    let lines = invoice["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "one line per app: {invoice}");
    let totals: Vec<i64> = lines
        .iter()
        .map(|l| l["total_cents"].as_i64().unwrap())
        .collect();
    let mut sorted = totals.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1250, 4000]);
    assert!(invoice["cut_at_seq"].as_u64().unwrap() > 0);

    // The app sees which of its bills went on an invoice, and which did not.
    let books_bills = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/bills?org={org}"),
            Some(&basic_auth(&books.key, &books.secret)),
            None,
        )
        .await?;
    let mut statuses: Vec<(i64, String)> = books_bills["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["price_cents"].as_i64().unwrap_or(-1),
                b["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            (5, "submitted".to_owned()),
            (77, "cancelled".to_owned()),
            (250, "invoiced".to_owned()),
            (1000, "invoiced".to_owned()),
        ],
        "{books_bills}"
    );

    // Twice: nothing new.
    let events_before = count(
        platform,
        "SELECT COUNT(*) FROM hub_outbox WHERE kind = 'invoice_issued'",
    )
    .await;
    assert_eq!(events_before, 3, "USD and EUR of one org, USD of the other");
    billing_cli(platform, &["run", "--period", "2026-11"]).await?;
    assert_eq!(
        count(
            platform,
            "SELECT COUNT(*) FROM hub_outbox WHERE kind = 'invoice_issued'"
        )
        .await,
        3
    );
    assert_eq!(
        count(platform, "SELECT COUNT(*) FROM hub_invoices").await,
        3
    );

    // Rebuilt from the stream up to its cut: the same bytes (the CLI fails otherwise).
    billing_cli(platform, &["rebuild", &usd_id]).await?;
    let store = mno_hub::store::Store::open(platform.running().db.clone()).await?;
    for id in [usd_id.as_str(), eur["id"].as_str().unwrap()] {
        let (stored, rebuilt) = mno_hub::billing::rebuild(&store, &platform.running().bus, id)
            .await?
            .unwrap();
        assert_eq!(String::from_utf8(stored)?, String::from_utf8(rebuilt)?);
    }
    assert!(billing_cli(platform, &["rebuild", "inv-nothing"])
        .await
        .is_err());

    // A late November bill, submitted after November's invoice: on December's.
    let (_, late) = app_post(
        platform,
        &books,
        "/hub/v1/bills",
        None,
        bill(&org, 33, "USD", nov),
    )
    .await?;
    billing_cli(platform, &["run", "--period", "2026-11"]).await?;
    assert_eq!(
        count(platform, "SELECT COUNT(*) FROM hub_invoices").await,
        3
    );
    billing_cli(platform, &["run", "--period", "2026-12"]).await?;
    let december = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/invoices/inv-{org}-2026-12-USD"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(
        december["total_cents"], 38,
        "the late bill and December's: {december}"
    );
    let december_ids: Vec<&str> = december["lines"][0]["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert!(december_ids.contains(&late["id"].as_str().unwrap()));
    // An invoiced bill can no longer be cancelled.
    let (status, _) = hub
        .call(
            Method::DELETE,
            &format!("/hub/v1/bills/{}", late["id"].as_str().unwrap()),
            Some(&basic_auth(&books.key, &books.secret)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT);

    // The printable page escapes what apps wrote.
    let page = platform
        .http
        .get(platform.url(&format!("/hub/v1/orgs/{org}/invoices/{usd_id}/html")))
        .header("Authorization", &auth)
        .send()
        .await?;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()?
        .starts_with("text/html"));
    let html = page.text().await?;
    assert!(
        html.contains("CRM &lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
    assert!(html.contains("Seats &lt;b&gt;&amp; more&lt;/b&gt;"));
    assert!(html.contains("52.50 USD"));
    // The portal's copy keeps the page's own policy (no script at all) and
    // adds that no other site may frame it (from an outside audit: the
    // portal's headers replaced the policy).
    let mut browser = mno_e2e::browser::Browser::new();
    let form = browser.get(&platform.url("/signin")).await?;
    browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "owner@example.com",
            mno_e2e::hub_client::TEST_PASSWORD,
        )
        .await?;
    let printable = browser
        .get(&platform.url(&format!("/o/{org}/invoices/{usd_id}")))
        .await?;
    assert_eq!(printable.status, StatusCode::OK, "{}", printable.text);
    assert_eq!(
        printable.headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    );

    // The org's bills, every app's and whatever their status; org B's bill
    // is not among them. (Bills made in one millisecond may list either way.)
    let bills = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/bills"),
            Some(&auth),
            None,
        )
        .await?;
    let mut listed: Vec<(&str, i64, &str, &str)> = bills["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["app_name"].as_str().unwrap(),
                b["price_cents"].as_i64().unwrap(),
                b["currency"].as_str().unwrap(),
                b["status"].as_str().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("CRM <script>", 700, "EUR", "invoiced"),
            ("CRM <script>", 4000, "USD", "invoiced"),
            ("Test App", 5, "USD", "invoiced"),
            ("Test App", 33, "USD", "invoiced"),
            ("Test App", 77, "USD", "cancelled"),
            ("Test App", 250, "USD", "invoiced"),
            ("Test App", 1000, "USD", "invoiced"),
        ],
        "{bills}"
    );
    assert_eq!(bills["recurring_bills"], serde_json::json!([]));

    // Who reads bills and invoices: the org's admins; not a plain member, not another org's owner.
    let (_, member_token) = hub.signup_and_login("member@example.com").await?;
    hub.add_member(&token, &org, "member@example.com", "member", &member_token)
        .await?;
    for (who, expected) in [
        (&member_token, StatusCode::FORBIDDEN),
        (&token_b, StatusCode::FORBIDDEN),
    ] {
        for path in [
            format!("/hub/v1/orgs/{org}/bills"),
            format!("/hub/v1/orgs/{org}/invoices"),
            format!("/hub/v1/orgs/{org}/invoices/{usd_id}"),
        ] {
            let (status, _) = hub
                .call(Method::GET, &path, Some(&bearer(who)), None)
                .await?;
            assert_eq!(status, expected, "{path}");
        }
    }
    // Org B's owner asking for org A's invoice under org B: not found.
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/orgs/{org_b}/invoices/{usd_id}"),
            Some(&bearer(&token_b)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub
        .call(Method::GET, "/hub/v1/orgs/x/invoices", None, None)
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(billing_cli(platform, &["run", "--period", "2026-13"])
        .await
        .is_err());
    Ok(())
}

async fn recurring_bills_bill_each_cycle_once_with_the_initial_charge_once(
    platform: &TestPlatform,
) -> Result<()> {
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub.org_with_app("owner@example.com", None, &[]).await?;
    let body = json!({
        "org": org, "price_cents": 2000, "currency": "AUD", "description": "Plan",
        "period": "month", "frequency": 1, "cycles": 3, "start_date": "2026-10-01",
        "initial_cents": 500,
    });
    let (status, recurring) = app_post(
        platform,
        &app,
        "/hub/v1/recurring_bills",
        Some("r-1"),
        body.clone(),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{recurring}");
    assert_eq!(recurring["status"], "submitted");
    let (_, again) = app_post(platform, &app, "/hub/v1/recurring_bills", Some("r-1"), body).await?;
    assert_eq!(again["id"], recurring["id"]);
    let rid = recurring["id"].as_str().unwrap();
    for (change, pointer) in [
        (json!({"period": "fortnight"}), "/period"),
        (json!({"frequency": 0}), "/frequency"),
        (json!({"cycles": 1.5}), "/cycles"),
        (json!({"start_date": "2026-02-30"}), "/start_date"),
        // Its first run would bill every day since 1970.
        (
            json!({"start_date": "1970-01-01", "period": "day"}),
            "/start_date",
        ),
        (json!({"initial_cents": -1}), "/initial_cents"),
        (
            json!({"period": "semimonth", "start_date": "2026-10-05"}),
            "/start_date",
        ),
    ] {
        let mut bad = json!({"org": org, "price_cents": 1, "currency": "AUD", "description": "x", "period": "month"});
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, error) =
            app_post(platform, &app, "/hub/v1/recurring_bills", None, bad).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(pointers(&error), vec![pointer.to_owned()]);
    }

    billing_cli(platform, &["run", "--period", "2026-11"]).await?;
    billing_cli(platform, &["run", "--period", "2026-11"]).await?;
    let auth = basic_auth(&app.key, &app.secret);
    let bills = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            "/hub/v1/bills",
            Some(&auth),
            None,
        )
        .await?;
    let mut ids: Vec<&str> = bills["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let expected = |suffixes: &[&str]| {
        let mut all: Vec<String> = suffixes.iter().map(|s| format!("{rid}-{s}")).collect();
        all.sort();
        all
    };
    assert_eq!(ids, expected(&["c1", "c2", "initial"]));
    let recurring_path = format!("/hub/v1/recurring_bills/{rid}");
    let show_recurring = || {
        hub.expect(
            StatusCode::OK,
            Method::GET,
            &recurring_path,
            Some(&auth),
            None,
        )
    };
    let shown = show_recurring().await?;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["cycles_billed"], 2);
    let invoice = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/invoices/inv-{org}-2026-11-AUD"),
            Some(&bearer(&token)),
            None,
        )
        .await?;
    assert_eq!(invoice["total_cents"], 4500);

    billing_cli(platform, &["run", "--period", "2027-01"]).await?;
    let shown = show_recurring().await?;
    assert_eq!(shown["status"], "expired");
    assert_eq!(shown["cycles_billed"], 3);
    assert_eq!(count(platform, "SELECT COUNT(*) FROM hub_bills").await, 4);
    // Each step of the schedule is a HUB event: made once (the retried
    // request too), active after the first run, expired after the last; the
    // run that billed nothing new told nothing.
    let events = |kind: &'static str, status: &'static str| {
        let sql = format!(
            "SELECT COUNT(*) FROM hub_outbox WHERE kind = '{kind}' AND payload LIKE '%\"status\":\"{status}\"%'"
        );
        async move { count(platform, &sql).await }
    };
    assert_eq!(events("recurring_bill_created", "submitted").await, 1);
    assert_eq!(events("recurring_bill_updated", "active").await, 1);
    assert_eq!(events("recurring_bill_updated", "expired").await, 1);
    // An expired schedule cannot be cancelled; another app cannot see it.
    let (status, _) = hub
        .call(
            Method::DELETE,
            &format!("/hub/v1/recurring_bills/{rid}"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = hub.create_app(&token, "Other", None, &[]).await?;
    let (status, _) = hub
        .call(
            Method::GET,
            &format!("/hub/v1/recurring_bills/{rid}"),
            Some(&basic_auth(&other.key, &other.secret)),
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Cancelled: no further cycle.
    let (_, weekly) = app_post(
        platform,
        &app,
        "/hub/v1/recurring_bills",
        None,
        json!({"org": org, "price_cents": 100, "currency": "AUD", "description": "Weekly",
               "period": "week", "start_date": "2027-02-01"}),
    )
    .await?;
    let wid = weekly["id"].as_str().unwrap();
    let cancelled = hub
        .expect(
            StatusCode::OK,
            Method::DELETE,
            &format!("/hub/v1/recurring_bills/{wid}"),
            Some(&auth),
            None,
        )
        .await?;
    assert_eq!(cancelled["status"], "cancelled");
    billing_cli(platform, &["run", "--period", "2027-02"]).await?;
    assert_eq!(count(platform, "SELECT COUNT(*) FROM hub_bills").await, 4);
    Ok(())
}

#[tokio::test]
async fn the_scheduled_run_inside_the_platform_bills_last_month() -> Result<()> {
    let platform = TestPlatform::spawn_with(|config| config.billing_interval_secs = 1).await;
    let hub = HubClient::new(&platform.base_url);
    let (token, org, app) = hub.org_with_app("owner@example.com", None, &[]).await?;
    let now = chrono::Utc::now().date_naive();
    let first_of_month = now.with_day(1).unwrap();
    let last_month_end = first_of_month.pred_opt().unwrap();
    let ended = format!("{last_month_end}T12:00:00Z");
    let (status, _) = app_post(
        &platform,
        &app,
        "/hub/v1/bills",
        None,
        bill(&org, 123, "USD", &ended),
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    let period = format!("{:04}-{:02}", last_month_end.year(), last_month_end.month());
    let path = format!("/hub/v1/orgs/{org}/invoices/inv-{org}-{period}-USD");
    let invoice = mno_harness::wait_for(
        "the scheduled run's invoice",
        std::time::Duration::from_secs(30),
        || {
            let hub = &hub;
            let path = &path;
            let auth = bearer(&token);
            async move {
                let (status, body) = hub.call(Method::GET, path, Some(&auth), None).await.ok()?;
                (status == StatusCode::OK).then_some(body)
            }
        },
    )
    .await;
    assert_eq!(invoice["total_cents"], 123);
    Ok(())
}
