//! What every portal answer tells the browser: no framing by another site (a
//! signed-in person's forms cannot be clickjacked), no stored copy of a page,
//! while the static assets stay cacheable; and a page of an organisation the
//! person is not in answers the Hub's refusal.

use anyhow::Result;
use mno_e2e::browser::Browser;
use mno_e2e::hub_client::{HubClient, TEST_PASSWORD};
use mno_e2e::TestPlatform;
use reqwest::StatusCode;

fn header<'a>(page: &'a mno_e2e::browser::Page, name: &str) -> &'a str {
    page.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn portal_pages_refuse_framing_and_caching_and_assets_stay_cacheable() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("frame@example.com", TEST_PASSWORD, "Fran")
        .await?;
    let mut browser = Browser::new();
    let form = browser.get(&platform.url("/signin")).await?;
    let signed_in = browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "frame@example.com",
            TEST_PASSWORD,
        )
        .await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );

    let signin = browser.get(&platform.url("/signin")).await?;
    let orgs = browser.get(&platform.url("/orgs")).await?;
    assert_eq!(orgs.status, StatusCode::OK, "{}", orgs.text);
    for page in [&form, &signin, &orgs] {
        assert_eq!(header(page, "x-frame-options"), "DENY");
        assert_eq!(
            header(page, "content-security-policy"),
            mno_portal::page_headers::PAGE_POLICY
        );
        assert_eq!(header(page, "cache-control"), "no-store");
        assert_eq!(header(page, "x-content-type-options"), "nosniff");
    }
    // Another's organisation: the Hub's refusal, not a word about a role there.
    let (_, other_token) = hub.signup_and_login("other@example.com").await?;
    let other_org = hub.create_org(&other_token, "Elsewhere", "USD").await?;
    let invoices = browser
        .get(&platform.url(&format!("/o/{other_org}/invoices")))
        .await?;
    assert!(
        invoices.status == StatusCode::FORBIDDEN || invoices.status == StatusCode::NOT_FOUND,
        "{}: {}",
        invoices.status,
        invoices.text
    );
    assert!(
        !invoices.text.contains("Your role here"),
        "{}",
        invoices.text
    );

    let asset = browser
        .get(&platform.url("/assets/htmx-2.0.11.min.js"))
        .await?;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(header(&asset, "cache-control"), "public, max-age=86400");
    Ok(())
}

/// Under an https public URL the portal's cookies are `Secure` (as the SSO
/// page's are), so a plain-http request an attacker provokes never carries the
/// session; and signing in again in a browser ends the session it held, which
/// replacing the cookie alone left working for a day (from an outside audit).
#[tokio::test]
async fn cookies_are_secure_under_https_and_a_new_sign_in_ends_the_browsers_last_session(
) -> Result<()> {
    let platform = TestPlatform::spawn_with(|config| {
        config.public_url = Some("https://mno.example.test".into());
    })
    .await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("secure@example.com", TEST_PASSWORD, "Sec")
        .await?;
    let mut browser = Browser::new();
    let form = browser.get(&platform.url("/signin")).await?;
    let anon = header(&form, "set-cookie").to_owned();
    assert!(
        anon.starts_with("mno_anon=") && anon.ends_with("; Secure"),
        "{anon}"
    );

    let signed_in = browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "secure@example.com",
            TEST_PASSWORD,
        )
        .await?;
    let cookie = header(&signed_in, "set-cookie").to_owned();
    assert!(
        cookie.starts_with("mno_session=")
            && cookie.contains("HttpOnly")
            && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    let first = browser.cookies["mno_session"].clone();
    let me = |token: String| {
        let platform = &platform;
        async move {
            platform
                .http
                .get(platform.url("/hub/v1/users/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(first.clone()).await, StatusCode::OK);

    // Signing in again here (another person, or the same) ends the first session.
    let form = browser.get(&platform.url("/signin")).await?;
    browser
        .sign_in_at_portal(
            &form,
            &platform.url("/signin"),
            "secure@example.com",
            TEST_PASSWORD,
        )
        .await?;
    let second = browser.cookies["mno_session"].clone();
    assert_ne!(first, second);
    assert_eq!(me(first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(second).await, StatusCode::OK);
    Ok(())
}

/// An address nobody serves: a browser gets the portal's "Page not found"
/// (with the pages' headers), an API client and every API path the JSON 404.
#[tokio::test]
async fn an_unknown_address_is_a_page_for_a_browser_and_json_for_the_api() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let get = |path: &'static str, accept: &'static str| {
        let platform = &platform;
        async move {
            platform
                .http
                .get(platform.url(path))
                .header("accept", accept)
                .send()
                .await
                .unwrap()
        }
    };
    let page = get("/settings", "text/html,application/xhtml+xml").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        page.headers()["content-security-policy"],
        mno_portal::page_headers::PAGE_POLICY
    );
    assert!(page.headers()["content-type"]
        .to_str()?
        .starts_with("text/html"));
    assert!(page.text().await?.contains("Page not found"));
    for (path, accept) in [
        ("/settings", "application/json"),
        ("/hub/v1/nothing", "text/html"),
        ("/connec/api/v2/nothing/at/all", "text/html"),
    ] {
        let answer = get(path, accept).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = answer.json().await?;
        assert_eq!(body["errors"][0]["status"], "404", "{path}: {body}");
    }
    Ok(())
}

/// A browser signed in at the portal as `email` (who has an account).
async fn signed_in_browser(platform: &TestPlatform, email: &str) -> Result<Browser> {
    let mut browser = Browser::new();
    let form = browser.get(&platform.url("/signin")).await?;
    let done = browser
        .sign_in_at_portal(&form, &platform.url("/signin"), email, TEST_PASSWORD)
        .await?;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    Ok(browser)
}

/// From an outside audit: the notice cookie was not signed, so whoever can
/// set the portal's cookies (a sibling subdomain) made it show their words.
/// A notice shows only when the portal signed it for this session: neither
/// a made-up one nor one the portal signed for someone else's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_shows_only_when_the_portal_signed_it_for_this_session() -> Result<()> {
    let platform = TestPlatform::spawn().await;
    let hub = HubClient::new(&platform.base_url);
    hub.signup("ann@example.com", TEST_PASSWORD, "Ann").await?;
    let (_, mallory_token) = hub.signup_and_login("mallory@example.com").await?;
    let org = hub.create_org(&mallory_token, "Mal Org", "USD").await?;

    // Mallory has the portal sign a notice of her words for her own session.
    let mut mallory = signed_in_browser(&platform, "mallory@example.com").await?;
    let members = platform.url(&format!("/o/{org}/members"));
    let page = mallory.get(&members).await?;
    let mut fields = mno_e2e::browser::hidden_fields(&page.text);
    fields.retain(|(name, _)| name == "csrf");
    fields.push(("email".into(), "call-555-0100@scam.example".into()));
    fields.push(("role".into(), "member".into()));
    let sent = mallory.post_form(&members, &fields).await?;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    let signed = mallory.cookies["mno_notice"].clone();
    let shown = mallory.get(&members).await?;
    assert!(
        shown
            .text
            .contains("An invitation was sent to call-555-0100@scam.example."),
        "{}",
        shown.text
    );

    let mut ann = signed_in_browser(&platform, "ann@example.com").await?;
    let planted = "Your account is locked: call +1 555 0100";
    let unsigned: String = planted
        .split(' ')
        .collect::<Vec<_>>()
        .join("+")
        .replace(':', "%3A");
    for value in [unsigned, signed] {
        ann.cookies.insert("mno_notice".into(), value.clone());
        let page = ann.get(&platform.url("/orgs")).await?;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.text.contains("555 0100") && !page.text.contains("555-0100"),
            "{value}: {}",
            page.text
        );
        // And it is forgotten.
        assert_eq!(ann.cookies.get("mno_notice").map(String::as_str), Some(""));
    }
    Ok(())
}
