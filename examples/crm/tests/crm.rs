//! The example CRM against a real platform, driven only through its HTTP
//! pages (a browser with cookies) and the platform's API: signing in through
//! the Hub, a person added in the CRM reaching Connec! under the CRM's id, a
//! person written by another app arriving by webhook under a new CRM id, an
//! organization and its opportunity added in the CRM and another app's
//! opportunity of that organization arriving under CRM ids, and signing out
//! of the Hub signing out of the CRM.

use std::time::Duration;

use anyhow::{Context, Result};
use mno_e2e::browser::Browser;
use mno_e2e::hub_client::{bearer, HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use mno_sdk::{Config, Mno};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OWNER: &str = "crm-owner@example.com";

#[tokio::test]
async fn the_crm_signs_in_through_the_hub_and_syncs_people_both_ways() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    let (_, token) = hub.signup_and_login(OWNER).await?;
    let org = hub.create_org(&token, "Acme", "USD").await?;

    // The CRM's address is known before it runs: its app is registered with it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let crm_url = format!("http://{}", listener.local_addr()?);
    let shared: Vec<Value> = ["people", "organizations", "opportunities"]
        .iter()
        .map(|e| json!({"entity": e, "read": true, "write": true}))
        .collect();
    let created = hub
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/hub/v1/apps",
            Some(&bearer(&token)),
            Some(
                json!({"name": "CRM", "stack": "cloud", "shared_entities": shared,
                "webhook_url": format!("{crm_url}/mno"),
                "redirect_uris": [format!("{crm_url}/auth/callback")],
                "post_logout_redirect_uris": [format!("{crm_url}/")],
                "backchannel_logout_uri": format!("{crm_url}/backchannel-logout")}),
            ),
        )
        .await?;
    let s = |v: &Value| v.as_str().map(str::to_owned).context("a string");
    let crm_app = s(&created["id"])?;
    let config = Config::new(
        &platform.base_url,
        &s(&created["credentials"]["key"])?,
        &s(&created["credentials"]["secret"])?,
    )?
    .with_app_id(&crm_app)
    .with_webhook_secret(&s(&created["webhook_secret"])?);
    hub.install(&token, &org, &crm_app).await?;
    let books = hub
        .create_app(
            &token,
            "Books",
            None,
            &[
                ("people", true, true),
                ("organizations", true, true),
                ("opportunities", true, true),
            ],
        )
        .await?;
    hub.install(&token, &org, &books.id).await?;
    let settings = mno_example_crm::Settings {
        mno: config.clone(),
        public_url: crm_url.clone(),
        database: ":memory:".into(),
    };
    tokio::spawn(mno_example_crm::serve(listener, settings));

    // Signed out, then in through the Hub's form.
    let mut browser = Browser::new();
    let home = browser.get(&format!("{crm_url}/")).await?;
    assert!(home.text.contains("Signed out"), "{}", home.text);
    let login = browser.get(&format!("{crm_url}/login")).await?;
    let authorize = login.location.context("to the Hub")?;
    assert!(authorize.starts_with(&platform.url("/sso/v1/authorize?")));
    let form = browser.get(&authorize).await?;
    let back = browser
        .sign_in_at_hub(
            &form,
            &platform.url("/sso/v1/authorize"),
            OWNER,
            TEST_PASSWORD,
        )
        .await?;
    let callback = back.location.context("back to the CRM")?;
    assert!(
        callback.starts_with(&format!("{crm_url}/auth/callback?")),
        "{callback}"
    );
    let signed_in = browser.get(&callback).await?;
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/"),
        "{}",
        signed_in.text
    );
    let home = browser.get(&format!("{crm_url}/")).await?;
    assert!(
        home.text.contains("Signed in as crm-owner (Acme)"),
        "{}",
        home.text
    );

    // A person added in the CRM is in Connec! under the CRM's id.
    let added = browser
        .post_form(
            &format!("{crm_url}/people"),
            &[
                ("first_name".into(), "Ann".into()),
                ("last_name".into(), "Lee".into()),
            ],
        )
        .await?;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    let home = browser.get(&format!("{crm_url}/")).await?;
    assert!(
        home.text.contains("<span id=\"crm-1\">Ann Lee</span>"),
        "{}",
        home.text
    );
    let as_crm = Mno::new(config)?;
    let ann = as_crm
        .connec()
        .collection::<Value>(&org, "people")
        .get("crm-1")
        .await?;
    assert_eq!(ann.fields["first_name"], "Ann");

    // Books writes a person: the CRM stores it under a new id of its own and
    // tells the platform, so Books sees the CRM's id on the record.
    let books_sdk = Mno::new(Config::new(&platform.base_url, &books.key, &books.secret)?)?;
    let bob = books_sdk
        .connec()
        .collection::<Value>(&org, "people")
        .create("books-7", &json!({"first_name": "Bob", "last_name": "Ray"}))
        .await?;
    let bob_global = bob.id.connec_id().context("a global id")?.to_owned();
    let page = crm_page_with(&browser, &crm_url, "Bob Ray").await;
    assert!(page.contains("<span id=\"crm-2\">Bob Ray</span>"), "{page}");
    let mapped = mno_harness::wait_for("the CRM's id of Bob", Duration::from_secs(20), || async {
        let record = books_sdk
            .connec()
            .collection::<Value>(&org, "people")
            .get(&bob_global)
            .await
            .ok()?;
        record.id.local_id(&crm_app).map(str::to_owned)
    })
    .await;
    assert_eq!(mapped, "crm-2");

    // Books edits Bob, then deletes him: the CRM follows.
    let books_people = books_sdk.connec().collection::<Value>(&org, "people");
    books_people
        .update(
            "books-7",
            &json!({"last_name": "Raymond"}),
            &Default::default(),
        )
        .await?;
    let page = crm_page_with(&browser, &crm_url, "Bob Raymond").await;
    assert!(
        page.contains("<span id=\"crm-2\">Bob Raymond</span>"),
        "{page}"
    );
    books_people.delete("books-7", &Default::default()).await?;
    mno_harness::wait_for("Bob gone from the CRM", Duration::from_secs(30), || async {
        let page = crm_home(&browser, &crm_url).await?;
        (!page.contains("Bob")).then_some(())
    })
    .await;

    // An organization and an opportunity with it, added in the CRM: in
    // Connec! under the CRM's ids, the opportunity pointing at the organization.
    let added = browser
        .post_form(
            &format!("{crm_url}/organizations"),
            &[("name".into(), "Globex".into())],
        )
        .await?;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    let added = browser
        .post_form(
            &format!("{crm_url}/opportunities"),
            &[
                ("name".into(), "Globex renewal".into()),
                ("amount".into(), "900.00".into()),
                ("sales_stage".into(), "Proposal".into()),
                ("organization_id".into(), "crm-org-1".into()),
            ],
        )
        .await?;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    // An amount that is not one is refused with the platform's word, and nothing is kept.
    let refused = browser
        .post_form(
            &format!("{crm_url}/opportunities"),
            &[
                ("name".into(), "Bad deal".into()),
                ("amount".into(), "lots".into()),
            ],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.text.contains("amount"), "{}", refused.text);
    let home = browser.get(&format!("{crm_url}/")).await?;
    assert!(!home.text.contains("Bad deal"), "{}", home.text);
    assert!(
        home.text.contains(
            "<span id=\"crm-opp-1\">Globex renewal: 900.00 USD, Proposal, with Globex</span>"
        ),
        "{}",
        home.text
    );
    let globex = as_crm
        .connec()
        .collection::<Value>(&org, "organizations")
        .get("crm-org-1")
        .await?;
    let globex_global = globex
        .id
        .connec_id()
        .context("Globex's global id")?
        .to_owned();
    let deal = as_crm
        .connec()
        .collection::<Value>(&org, "opportunities")
        .get("crm-opp-1")
        .await?;
    assert_eq!(
        (
            &deal.fields["amount"],
            &deal.fields["currency"],
            &deal.fields["sales_stage"]
        ),
        (&json!("900.00"), &json!("USD"), &json!("Proposal")),
        "{deal:?}"
    );
    let points_at: mno_sdk::connec::Ids =
        serde_json::from_value(deal.fields["organization_id"].clone())?;
    assert_eq!(points_at.connec_id(), Some(globex_global.as_str()));
    assert_eq!(points_at.local_id(&crm_app), Some("crm-org-1"));

    // Another app's opportunity with Globex arrives under a new CRM id (the
    // refused one used crm-opp-2: ids are never given twice), its
    // organization named by the CRM's id of Globex.
    books_sdk
        .connec()
        .collection::<Value>(&org, "opportunities")
        .create(
            "books-deal-1",
            &json!({"name": "Globex support", "amount": "120", "currency": "USD",
                    "sales_stage": "Won", "organization_id": globex_global}),
        )
        .await?;
    let page = crm_page_with(&browser, &crm_url, "Globex support").await;
    assert!(
        page.contains("<span id=\"crm-opp-3\">Globex support: 120 USD, Won, with Globex</span>"),
        "{page}"
    );
    // The CRM answered its id and wrote nothing back (no echo).
    let books_deals = books_sdk
        .connec()
        .collection::<Value>(&org, "opportunities");
    let support = mno_harness::wait_for(
        "the CRM's id of the deal",
        Duration::from_secs(20),
        || async {
            let record = books_deals.get("books-deal-1").await.ok()?;
            record.id.local_id(&crm_app).is_some().then_some(record)
        },
    )
    .await;
    assert_eq!(
        (support.id.local_id(&crm_app), support.version),
        (Some("crm-opp-3"), 1),
        "{support:?}"
    );

    // The renewal's stage edited on the CRM's page (the form sends the
    // version and the values shown), then the support deal deleted there.
    let edited = browser
        .post_form(
            &format!("{crm_url}/opportunities/crm-opp-1"),
            &[
                ("version".into(), "1".into()),
                ("seen_name".into(), "Globex renewal".into()),
                ("name".into(), "Globex renewal".into()),
                ("seen_sales_stage".into(), "Proposal".into()),
                ("sales_stage".into(), "Negotiation".into()),
            ],
        )
        .await?;
    assert_eq!(edited.location.as_deref(), Some("/"), "{}", edited.text);
    let deal = as_crm
        .connec()
        .collection::<Value>(&org, "opportunities")
        .get("crm-opp-1")
        .await?;
    assert_eq!(
        (&deal.fields["sales_stage"], deal.version),
        (&json!("Negotiation"), 2),
        "{deal:?}"
    );
    let deleted = browser
        .post_form(&format!("{crm_url}/opportunities/crm-opp-3/delete"), &[])
        .await?;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.text);
    let gone = books_deals.get("books-deal-1").await;
    assert_eq!(
        gone.as_ref().err().and_then(|e| e.api()).map(|a| a.status),
        Some(404),
        "{gone:?}"
    );
    let home = browser.get(&format!("{crm_url}/")).await?;
    assert!(
        home.text
            .contains("Globex renewal: 900.00 USD, Negotiation, with Globex")
            && !home.text.contains("Globex support"),
        "{}",
        home.text
    );
    let unknown = browser
        .post_form(&format!("{crm_url}/invoices/crm-opp-1/delete"), &[])
        .await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);

    // Signing out of the Hub signs the user out of the CRM: the Hub's
    // back-channel logout ends the CRM's session (its re-check would at
    // the session's `recheck_at`).
    let hub_session = browser
        .cookies
        .get("mno_session")
        .context("the Hub session")?
        .clone();
    hub.logout(&hub_session).await?;
    crm_page_with(&browser, &crm_url, "Signed out").await;
    Ok(())
}

/// The CRM's home page as the signed-in browser sees it (a copy of its cookies).
async fn crm_home(browser: &Browser, crm_url: &str) -> Option<String> {
    let mut copy = Browser {
        http: browser.http.clone(),
        cookies: browser.cookies.clone(),
    };
    Some(copy.get(&format!("{crm_url}/")).await.ok()?.text)
}

/// Waits until the CRM's home page shows `text`.
async fn crm_page_with(browser: &Browser, crm_url: &str, text: &str) -> String {
    mno_harness::wait_for(
        &format!("{text} in the CRM"),
        Duration::from_secs(30),
        || async {
            let page = crm_home(browser, crm_url).await?;
            page.contains(text).then_some(page)
        },
    )
    .await
}
