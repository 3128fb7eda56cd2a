//! The CRM and Books example apps as real processes (their binaries) beside a
//! real platform, driven only through their HTTP pages (a browser with
//! cookies) and the platform's public API: people synced both ways under each
//! app's own ids without echoes, a stale edit resolved by re-reading, deletes
//! both ways, Books' monthly bill on the org's invoice after the billing run,
//! Impac!'s reports reflecting both apps (Books' invoice in the P&L, the CRM's
//! opportunity in the sales pipeline), data sharing switched off and on and an
//! uninstall (no deliveries) and reinstall caught up from the change feed, and
//! signing out of Mno signing the user out of both apps.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mno_e2e::browser::Browser;
use mno_e2e::hub_client::{basic_auth, bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use mno_sdk::connec::WriteOptions;
use mno_sdk::{Config, Error, Mno};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const OWNER: &str = "owner@example.com";
const MONTHLY_CENTS: u64 = 4200;
const WAIT: Duration = Duration::from_secs(30);

/// One example app running as a process, and its registration.
struct RunningApp {
    url: String,
    id: String,
    sdk: Mno,
    key: String,
    secret: String,
    _process: Child,
    _database: tempfile::TempDir,
}

/// Registers an app named `name` with its sign-in and webhook URLs on a free
/// port, then starts `binary` there with `MNO_*` and `<prefix>_*` settings.
async fn start_app(
    platform: &TestPlatform,
    hub: &HubClient,
    token: &str,
    name: &str,
    binary: &str,
    prefix: &str,
    entities: &[&str],
) -> Result<RunningApp> {
    let addr = format!("127.0.0.1:{}", mno_harness::free_port());
    let url = format!("http://{addr}");
    let shared: Vec<Value> = entities
        .iter()
        .map(|e| json!({"entity": e, "read": true, "write": true}))
        .collect();
    let created = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/hub/v1/apps",
            Some(&bearer(token)),
            Some(
                json!({"name": name, "stack": "cloud", "shared_entities": shared,
                "webhook_url": format!("{url}/mno"),
                "redirect_uris": [format!("{url}/auth/callback")],
                "post_logout_redirect_uris": [format!("{url}/")],
                "backchannel_logout_uri": format!("{url}/backchannel-logout")}),
            ),
        )
        .await?;
    let s = |v: &Value| v.as_str().map(str::to_owned).context("a string");
    let (id, key, secret) = (
        s(&created["id"])?,
        s(&created["credentials"]["key"])?,
        s(&created["credentials"]["secret"])?,
    );
    let webhook_secret = s(&created["webhook_secret"])?;
    let database = tempfile::tempdir()?;
    let process = Command::new(binary)
        .env("MNO_URL", &platform.base_url)
        .env("MNO_APP_ID", &id)
        .env("MNO_APP_KEY", &key)
        .env("MNO_APP_SECRET", &secret)
        .env("MNO_WEBHOOK_SECRETS", &webhook_secret)
        .env(format!("{prefix}_ADDR"), &addr)
        .env(format!("{prefix}_PUBLIC_URL"), &url)
        .env(
            format!("{prefix}_DATABASE"),
            database.path().join("app.sqlite"),
        )
        .env("BOOKS_MONTHLY_PRICE_CENTS", MONTHLY_CENTS.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {binary}"))?;
    let http = reqwest::Client::new();
    mno_harness::wait_for(&format!("{name} listening"), WAIT, || async {
        http.get(format!("{url}/")).send().await.ok().map(|_| ())
    })
    .await;
    let sdk = Mno::new(Config::new(&platform.base_url, &key, &secret)?.with_app_id(&id))?;
    Ok(RunningApp {
        url,
        id,
        sdk,
        key,
        secret,
        _process: process,
        _database: database,
    })
}

/// Signs the browser's user in to `app` through the Hub (its form the first
/// time, the Hub session after).
async fn sign_in(browser: &mut Browser, platform: &TestPlatform, app: &RunningApp) -> Result<()> {
    let login = browser.get(&format!("{}/login", app.url)).await?;
    let authorize = login.location.context("to the Hub")?;
    let mut answer = browser.get(&authorize).await?;
    if answer.location.is_none() {
        answer = browser
            .sign_in_at_hub(
                &answer,
                &platform.url("/sso/v1/authorize"),
                OWNER,
                TEST_PASSWORD,
            )
            .await?;
    }
    let callback = answer.location.context("back to the app")?;
    assert!(
        callback.starts_with(&format!("{}/auth/callback?", app.url)),
        "{callback}"
    );
    let signed_in = browser.get(&callback).await?;
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/"),
        "{}",
        signed_in.text
    );
    let home = browser.get(&format!("{}/", app.url)).await?;
    assert!(home.text.contains("Signed in as owner"), "{}", home.text);
    Ok(())
}

/// An app's home page as the signed-in browser sees it.
async fn home(browser: &Browser, app: &RunningApp) -> Result<String> {
    let mut copy = Browser {
        http: browser.http.clone(),
        cookies: browser.cookies.clone(),
    };
    Ok(copy.get(&format!("{}/", app.url)).await?.text)
}

/// Waits until the app's home page satisfies `check`, named `what`.
async fn page_until(
    browser: &Browser,
    app: &RunningApp,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    mno_harness::wait_for(what, WAIT, || async {
        let page = home(browser, app).await.ok()?;
        check(&page).then_some(page)
    })
    .await
}

/// A record's shown name, as both apps render it: `<span id="ID">NAME</span>`.
fn shown(id: &str, name: &str) -> String {
    format!("<span id=\"{id}\">{name}</span>")
}

/// The edit form of record `id` on `page` (posted at `action`): its fields as shown.
fn edit_form(page: &str, action: &str) -> Result<Vec<(String, String)>> {
    let start = page
        .find(&format!("action=\"{action}\""))
        .with_context(|| format!("the form of {action} in {page}"))?;
    let form = &page[start..start + page[start..].find("</form>").context("its end")?];
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let attribute = |name: &str| {
            let marker = format!("{name}=\"");
            input
                .find(&marker)
                .map(|i| &input[i + marker.len()..])
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        };
        if let (Some(name), Some(value)) = (attribute("name"), attribute("value")) {
            fields.push((name, value));
        }
    }
    Ok(fields)
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| {
            let v = if n == name { value } else { v.as_str() };
            (n.clone(), v.to_owned())
        })
        .collect()
}

/// Posts a form of the browser's user to `url`; expects a redirect, answers its target.
async fn post(browser: &mut Browser, url: &str, fields: &[(String, String)]) -> Result<String> {
    let answer = browser.post_form(url, fields).await?;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "{url}: {}",
        answer.text
    );
    answer.location.context("a redirect")
}

fn form(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// `mno billing <args>` (parsed as the CLI parses it) against the platform's bus and database.
async fn billing_cli(platform: &TestPlatform, args: &[&str]) -> Result<()> {
    let url = platform.nats.url();
    let dir = platform
        .data_dir
        .path()
        .to_str()
        .context("a UTF-8 path")?
        .to_owned();
    let mut argv = vec!["mno", "billing"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--nats-url", &url, "--data-dir", &dir]);
    if let Some(database) = &platform.config.database_url {
        argv.extend_from_slice(&["--database-url", database]);
    }
    mno_gateway::cli::Cli::try_parse_from(argv)?.run().await
}

#[tokio::test]
async fn the_crm_and_books_sync_sign_in_and_bill_through_the_platform() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login(OWNER).await?;
    let org = hub.create_org(&token, "Acme", "USD").await?;
    let crm = start_app(
        &platform,
        &hub,
        &token,
        "CRM",
        env!("CARGO_BIN_EXE_example-crm"),
        "CRM",
        &["people", "organizations", "opportunities"],
    )
    .await?;
    let books = start_app(
        &platform,
        &hub,
        &token,
        "Books",
        env!("CARGO_BIN_EXE_example-books"),
        "BOOKS",
        &["people", "invoices", "payments"],
    )
    .await?;
    hub.install(&token, &org, &crm.id).await?;
    hub.install(&token, &org, &books.id).await?;
    let mut browser = Browser::new();
    sign_in(&mut browser, &platform, &crm).await?;
    sign_in(&mut browser, &platform, &books).await?;
    let crm_people = crm.sdk.connec().collection::<Value>(&org, "people");

    // A person created in the CRM appears in Books under Books' own id, which
    // Books' webhook answer told the platform.
    post(
        &mut browser,
        &format!("{}/people", crm.url),
        &form(&[("first_name", "Ann"), ("last_name", "Lee")]),
    )
    .await?;
    page_until(&browser, &books, "Ann in Books", |p| {
        p.contains(&shown("books-1", "Ann Lee"))
    })
    .await;
    let books_id = mno_harness::wait_for("Books' id of Ann", WAIT, || async {
        let ann = crm_people.get("crm-1").await.ok()?;
        ann.id.local_id(&books.id).map(str::to_owned)
    })
    .await;
    assert_eq!(books_id, "books-1");

    // An edit in Books comes back to the CRM.
    let page = home(&browser, &books).await?;
    let ann_in_books = edit_form(&page, "/customers/books-1")?;
    let to = post(
        &mut browser,
        &format!("{}/customers/books-1", books.url),
        &with(&ann_in_books, "last_name", "Lee-Smith"),
    )
    .await?;
    assert_eq!(to, "/");
    page_until(&browser, &crm, "Ann's new name in the CRM", |p| {
        p.contains(&shown("crm-1", "Ann Lee-Smith"))
    })
    .await;

    // A stale edit: the CRM's form was read at version 2, then Books changes
    // Ann's first name. The CRM's save gets 409 on the platform, re-reads Ann
    // and applies its own change (the last name) to her latest version.
    let page = home(&browser, &crm).await?;
    let stale_form = edit_form(&page, "/people/crm-1")?;
    assert!(
        stale_form.contains(&("version".to_owned(), "2".to_owned())),
        "{stale_form:?}"
    );
    let page = home(&browser, &books).await?;
    let ann_in_books = edit_form(&page, "/customers/books-1")?;
    post(
        &mut browser,
        &format!("{}/customers/books-1", books.url),
        &with(&ann_in_books, "first_name", "Anne"),
    )
    .await?;
    let stale = crm_people
        .update(
            "crm-1",
            &json!({"last_name": "X"}),
            &WriteOptions::if_match(2),
        )
        .await;
    assert!(
        matches!(stale, Err(Error::StaleVersion { .. })),
        "the platform refuses version 2 now: {stale:?}"
    );
    let to = post(
        &mut browser,
        &format!("{}/people/crm-1", crm.url),
        &with(&stale_form, "last_name", "Lee-Jones"),
    )
    .await?;
    assert_eq!(to, "/?resolved=crm-1");
    let ann = crm_people.get("crm-1").await?;
    assert_eq!(
        (&ann.fields["first_name"], &ann.fields["last_name"]),
        (&json!("Anne"), &json!("Lee-Jones")),
        "both edits kept: {:?}",
        ann.fields
    );
    assert_eq!(ann.version, 4, "one write per edit: {ann:?}");
    page_until(&browser, &books, "the merged Ann in Books", |p| {
        p.contains(&shown("books-1", "Anne Lee-Jones"))
    })
    .await;
    page_until(&browser, &crm, "the merged Ann in the CRM", |p| {
        p.contains(&shown("crm-1", "Anne Lee-Jones"))
    })
    .await;

    // Nothing echoes: after a later change made in Books has reached the CRM
    // (a barrier), Ann's record still has exactly the three edits the users
    // made, each from the app it was made in.
    post(
        &mut browser,
        &format!("{}/customers", books.url),
        &form(&[("first_name", "Zed"), ("last_name", "Ox")]),
    )
    .await?;
    let page = page_until(&browser, &crm, "Zed in the CRM", |p| p.contains("Zed Ox")).await;
    assert!(page.contains(&shown("crm-2", "Zed Ox")), "{page}");
    let ann = crm_people.get("crm-1").await?;
    assert_eq!(ann.version, 4, "no app wrote Ann again: {ann:?}");
    let ann_global = ann.id.connec_id().context("Ann's global id")?.to_owned();
    let (changes, _) = crm
        .sdk
        .connec()
        .changes(&org, Default::default())
        .entities(&["people"])
        .fetch(Default::default())
        .await?;
    let writers: Vec<(String, String)> = changes
        .iter()
        .filter(|c| c.id == ann_global && c.op != "id_mapped")
        .map(|c| (c.op.clone(), c.source.app_id.clone()))
        .collect();
    let by = |op: &str, app: &RunningApp| (op.to_owned(), app.id.clone());
    assert_eq!(
        writers,
        [
            by("created", &crm),
            by("updated", &books),
            by("updated", &books),
            by("updated", &crm)
        ],
        "{changes:?}"
    );

    // A delete in the CRM leaves Books; one in Books leaves the CRM.
    post(
        &mut browser,
        &format!("{}/people/crm-1/delete", crm.url),
        &[],
    )
    .await?;
    page_until(&browser, &books, "Ann gone from Books", |p| {
        p.contains("Zed Ox") && !p.contains("Anne")
    })
    .await;

    // Books' invoice and a payment reach Impac!'s P&L.
    let to = post(
        &mut browser,
        &format!("{}/invoices", books.url),
        &form(&[("customer", "books-2"), ("amount", "150.00")]),
    )
    .await?;
    assert_eq!(to, "/");
    let page = home(&browser, &books).await?;
    let invoice_id = page
        .split("<li id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the invoice on Books' page")?
        .to_owned();
    assert!(
        page.contains(&format!(
            "{invoice_id} to books-2: 150.00 USD, balance 150.00"
        )),
        "{page}"
    );
    post(
        &mut browser,
        &format!("{}/invoices/{invoice_id}/payments", books.url),
        &form(&[("amount", "50")]),
    )
    .await?;
    let page = home(&browser, &books).await?;
    assert!(page.contains("balance 100.00"), "{page}");
    let invoice = books
        .sdk
        .connec()
        .collection::<Value>(&org, "invoices")
        .get(&invoice_id)
        .await?;
    assert_eq!(invoice.fields["balance"], json!("100.00"), "{invoice:?}");
    let payments = books
        .sdk
        .connec()
        .collection::<Value>(&org, "payments")
        .page(&Default::default())
        .await?;
    let [payment] = &payments.records[..] else {
        panic!("one payment in Connec!: {payments:?}");
    };
    assert_eq!(
        (
            &payment.fields["amount"],
            &payment.fields["lines"][0]["amount"]
        ),
        (&json!("50.00"), &json!("50.00")),
        "{payment:?}"
    );
    let paid: mno_sdk::connec::Ids =
        serde_json::from_value(payment.fields["lines"][0]["invoice_id"].clone())?;
    assert_eq!(
        paid.local_id(&books.id),
        Some(invoice_id.as_str()),
        "{payment:?}"
    );
    // Issued today, due in 30 days: today's P&L counts its total, the aged
    // receivables its open balance as current.
    let today = chrono::Utc::now().date_naive().to_string();
    let http = reqwest::Client::new();
    // A widget as `app` reads it (Impac! lets an app read what it may read in Connec!).
    let widget = |app: &RunningApp, name: &'static str| {
        let url = platform.url(&format!(
            "/impac/api/v2/widgets/{name}?org_ids[]={org}&currency=USD&to={today}"
        ));
        let request = http
            .get(url)
            .header("Authorization", basic_auth(&app.key, &app.secret));
        async move { request.send().await.ok()?.json::<Value>().await.ok() }
    };
    let number = |value: &Value| {
        value
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| value.as_f64())
    };
    let (revenue, receivable) =
        mno_harness::wait_for("Books' invoice and payment in Impac!", WAIT, || async {
            let pnl = widget(&books, "accounts/profit_and_loss").await?;
            let aged = widget(&books, "invoices/aged_payables_receivables").await?;
            let revenue = number(&pnl["content"]["totals"]["revenue"])?;
            let receivable = number(&aged["content"]["receivables"]["current"])?;
            (revenue > 0.0 && receivable < 150.0).then_some((revenue, receivable))
        })
        .await;
    assert_eq!((revenue, receivable), (150.0, 100.0));

    // An opportunity added in the CRM, with an organization added there too,
    // reaches Impac!'s sales pipeline: its amount under its stage.
    post(
        &mut browser,
        &format!("{}/organizations", crm.url),
        &form(&[("name", "Globex")]),
    )
    .await?;
    post(
        &mut browser,
        &format!("{}/opportunities", crm.url),
        &form(&[
            ("name", "Globex renewal"),
            ("amount", "900.00"),
            ("sales_stage", "Proposal"),
            ("organization_id", "crm-org-1"),
        ]),
    )
    .await?;
    let page = home(&browser, &crm).await?;
    assert!(
        page.contains(&shown(
            "crm-opp-1",
            "Globex renewal: 900.00 USD, Proposal, with Globex"
        )),
        "{page}"
    );
    let stage = mno_harness::wait_for("the CRM's opportunity in Impac!", WAIT, || async {
        let funnel = widget(&crm, "sales/opportunities_funnel").await?;
        let stages = funnel["content"]["stages"].as_array()?.clone();
        stages.into_iter().find(|s| s["sales_stage"] == "Proposal")
    })
    .await;
    assert_eq!(
        (&stage["count"], number(&stage["amount"])),
        (&json!(1), Some(900.0)),
        "{stage}"
    );

    // Books' monthly bill (submitted twice, billed once) is on the org's
    // invoice after the billing run of this month.
    for _ in 0..2 {
        let to = post(&mut browser, &format!("{}/monthly-bill", books.url), &[]).await?;
        assert!(to.starts_with("/?billed="), "{to}");
    }
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    billing_cli(&platform, &["run", "--period", &month]).await?;
    let invoices = hub
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/hub/v1/orgs/{org}/invoices"),
            Some(&bearer(&token)),
            None,
        )
        .await?;
    let list = invoices["invoices"].as_array().context("invoices")?;
    assert_eq!(list.len(), 1, "{invoices}");
    assert_eq!(list[0]["total_cents"], json!(MONTHLY_CENTS), "{invoices}");
    assert_eq!(list[0]["currency"], "USD");

    // Data sharing off: Books is refused and not sent the CRM's changes;
    // back on, it gets new ones at once and catches up with the rest from
    // the change feed.
    hub.set_data_sharing(&token, &org, &books.id, false).await?;
    let books_people = books.sdk.connec().collection::<Value>(&org, "people");
    let refused = books_people.get("books-2").await;
    assert_eq!(
        refused
            .as_ref()
            .err()
            .and_then(|e| e.api())
            .map(|a| a.status),
        Some(403),
        "{refused:?}"
    );
    post(
        &mut browser,
        &format!("{}/people", crm.url),
        &form(&[("first_name", "Cy"), ("last_name", "Dee")]),
    )
    .await?;
    let page = home(&browser, &crm).await?;
    let zed_in_crm = edit_form(&page, "/people/crm-2")?;
    post(
        &mut browser,
        &format!("{}/people/crm-2", crm.url),
        &with(&zed_in_crm, "last_name", "Oxford"),
    )
    .await?;
    hub.set_data_sharing(&token, &org, &books.id, true).await?;
    post(
        &mut browser,
        &format!("{}/people", crm.url),
        &form(&[("first_name", "Dot"), ("last_name", "Eve")]),
    )
    .await?;
    let page = page_until(&browser, &books, "Dot in Books", |p| p.contains("Dot Eve")).await;
    assert!(
        !page.contains("Cy Dee") && page.contains("Zed Ox<"),
        "changes made while sharing was off were not sent: {page}"
    );
    let to = post(&mut browser, &format!("{}/catch-up", books.url), &[]).await?;
    assert!(to.starts_with("/?caught_up="), "{to}");
    let page = home(&browser, &books).await?;
    for name in ["Zed Oxford", "Cy Dee", "Dot Eve"] {
        assert!(
            page.contains(name),
            "{name} in Books after catching up: {page}"
        );
    }
    let cy = crm_people.get("crm-3").await?;
    let cy_in_books = cy
        .id
        .local_id(&books.id)
        .context("Books told its id of Cy")?
        .to_owned();
    assert!(page.contains(&shown(&cy_in_books, "Cy Dee")), "{page}");

    // Uninstalled, Books is sent nothing: the CRM's delete of Cy made then
    // is not delivered, not even after the reinstall (a change made after it
    // arrives, and Cy is still in Books); the change feed brings the delete.
    hub.uninstall(&token, &org, &books.id).await?;
    post(
        &mut browser,
        &format!("{}/people/crm-3/delete", crm.url),
        &[],
    )
    .await?;
    hub.install(&token, &org, &books.id).await?;
    sign_in(&mut browser, &platform, &books).await?;
    post(
        &mut browser,
        &format!("{}/people", crm.url),
        &form(&[("first_name", "Fay"), ("last_name", "Gus")]),
    )
    .await?;
    let page = page_until(&browser, &books, "Fay in Books", |p| p.contains("Fay Gus")).await;
    assert!(
        page.contains("Cy Dee"),
        "the delete made while uninstalled was not sent: {page}"
    );
    post(&mut browser, &format!("{}/catch-up", books.url), &[]).await?;
    let page = home(&browser, &books).await?;
    assert!(
        !page.contains("Cy Dee") && page.contains("Zed Oxford") && page.contains("Dot Eve"),
        "{page}"
    );
    let crm_page = home(&browser, &crm).await?;
    for name in ["Zed Oxford", "Dot Eve"] {
        assert!(crm_page.contains(name), "{crm_page}");
    }
    assert!(!crm_page.contains("Cy Dee"), "{crm_page}");

    // A customer deleted in Books through its page leaves the CRM.
    let dot = crm_people.get("crm-4").await?;
    let dot_in_books = dot
        .id
        .local_id(&books.id)
        .context("Books told its id of Dot")?
        .to_owned();
    assert!(page.contains(&shown(&dot_in_books, "Dot Eve")), "{page}");
    post(
        &mut browser,
        &format!("{}/customers/{dot_in_books}/delete", books.url),
        &[],
    )
    .await?;
    page_until(&browser, &crm, "Dot gone from the CRM", |p| {
        p.contains("Fay Gus") && !p.contains("Dot Eve")
    })
    .await;
    assert!(
        crm_people.get("crm-4").await.is_err(),
        "Dot deleted in Connec!"
    );

    // Signing out of Mno signs the user out of both apps: the Hub's
    // back-channel logout ends their sessions (each app's re-check would at
    // the session's `recheck_at`).
    let hub_session = browser
        .cookies
        .get("mno_session")
        .context("the Hub session")?
        .clone();
    hub.logout(&hub_session).await?;
    for app in [&crm, &books] {
        page_until(&browser, app, "signed out", |p| p.contains("Signed out")).await;
    }
    Ok(())
}
