//! Headers on every portal answer that protect a signed-in person: pages may
//! not be framed by another site (its forms clickjacked), the browser keeps
//! no copy of a signed-in page (a shared computer's back button or cache),
//! and sends no more of the URL than the origin to other sites.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::session;

/// The portal's pages: its own scripts (htmx, uPlot, portal.js under
/// /assets), inline styles (htmx's indicator style, uPlot's), nothing framed.
pub const PAGE_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn add(request: Request, next: Next) -> Response {
    // A notice is shown by the first full page after the post that set it
    // (not by the fragments htmx loads into it), then forgotten.
    let had_notice = session::cookie(request.headers(), session::NOTICE_COOKIE).is_some()
        && !request.headers().contains_key("hx-request");
    let mut response = next.run(request).await;
    let shown = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if had_notice && shown {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(session::NOTICE_COOKIE, "", 0),
        );
    }
    protect(&mut response);
    response
}

/// Under an https public URL: every cookie the portal sets is `Secure`, the
/// notice's too (a plain-http request an attacker provokes carries none, and
/// none can be planted over plain http to be shown as the portal's).
pub async fn secure_cookies(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return response;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let text = cookie.to_str().unwrap_or_default();
        let secured = if text.is_empty() || text.ends_with("; Secure") {
            cookie
        } else {
            HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
        };
        headers.append(header::SET_COOKIE, secured);
    }
    response
}

/// The headers every portal answer carries (also the edge's "Page not found").
pub fn protect(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Scripts only from the portal's own assets: were some text ever to slip
    // past escaping, a browser still runs none of it. A page that set its own,
    // stricter policy (the printable invoice: no script at all) keeps it.
    let policy = match headers.get(header::CONTENT_SECURITY_POLICY) {
        Some(own) => HeaderValue::from_str(&format!(
            "{}; frame-ancestors 'none'",
            own.to_str().unwrap_or("default-src 'none'")
        ))
        .unwrap_or(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        )),
        None => HeaderValue::from_static(PAGE_POLICY),
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    // The static assets say how long they may be kept; nothing else is kept.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request};
    use axum::response::{Html, Redirect};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use crate::session::{notice, set_notice, Session, NOTICE_COOKIE};

    fn carrying(cookie: &str) -> header::HeaderMap {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::COOKIE, cookie.parse().unwrap());
        headers
    }

    fn cookie_of(set: &header::HeaderValue) -> String {
        set.to_str().unwrap().split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_notice_survives_its_cookie() {
        let key = [3u8; 32];
        let text = "Zoë & Ali: removed; 100% <done>";
        let headers = carrying(&cookie_of(&set_notice(&key, text)));
        assert_eq!(notice(&key, &headers).as_deref(), Some(text));
    }

    /// From an outside audit: the notice cookie was not signed, so whoever
    /// could set the portal's cookies made it show their words.
    #[test]
    fn a_notice_not_signed_for_this_session_is_not_shown() {
        let (key, others) = ([3u8; 32], [4u8; 32]);
        let planted = "Your account is locked: call +1 555 0100";
        let encoded: String = url::form_urlencoded::byte_serialize(planted.as_bytes()).collect();
        // Unsigned, as the portal wrote it before.
        assert_eq!(
            notice(&key, &carrying(&format!("{NOTICE_COOKIE}={encoded}"))),
            None
        );
        // Signed for another session (someone's own, replayed).
        let theirs = cookie_of(&set_notice(&others, planted));
        assert_eq!(notice(&key, &carrying(&theirs)), None);
        // A signature of other words.
        let real = cookie_of(&set_notice(&key, "Done."));
        let (signature, _) = real.split_once('.').unwrap();
        let swapped = format!("{signature}.{encoded}");
        assert_eq!(notice(&key, &carrying(&swapped)), None);
        assert_eq!(notice(&key, &carrying(&real)).as_deref(), Some("Done."));
    }

    async fn clears(request: Request<Body>) -> bool {
        let app = Router::new()
            .route("/page", get(|| async { Html("<p>page</p>") }))
            .route("/moved", get(|| async { Redirect::to("/page") }))
            .layer(axum::middleware::from_fn(super::add));
        let response = app.oneshot(request).await.unwrap();
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| {
                c.to_str()
                    .unwrap()
                    .starts_with(&format!("{NOTICE_COOKIE}=;"))
            })
    }

    #[tokio::test]
    async fn the_first_full_page_shown_forgets_the_notice() {
        let with =
            |uri: &str| Request::get(uri).header(header::COOKIE, format!("{NOTICE_COOKIE}=Done."));
        assert!(clears(with("/page").body(Body::empty()).unwrap()).await);
        // A redirect on the way, or a fragment htmx loads into the page, shows no notice.
        assert!(!clears(with("/moved").body(Body::empty()).unwrap()).await);
        let fragment = with("/page").header("hx-request", "true");
        assert!(!clears(fragment.body(Body::empty()).unwrap()).await);
        let without = Request::get("/page").body(Body::empty()).unwrap();
        assert!(!clears(without).await);
    }

    /// Under https every cookie the portal sets is `Secure`, the notice's
    /// too (from an outside re-audit: the notice cookie was not).
    #[tokio::test]
    async fn under_https_every_cookie_is_secure() {
        let app = Router::new()
            .route(
                "/done",
                get(|| async {
                    let session = Session {
                        token: "mst_test".into(),
                        csrf: String::new(),
                        here: "/".into(),
                        notice: None,
                        notice_key: [5u8; 32],
                    };
                    crate::pages::done(&session, "/page", "Demo Books was uninstalled.")
                }),
            )
            .layer(axum::middleware::from_fn(super::secure_cookies));
        let request = Request::get("/done").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let cookies: Vec<&str> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(
            cookies[0].starts_with(NOTICE_COOKIE) && cookies[0].ends_with("; Secure"),
            "{cookies:?}"
        );
    }
}
