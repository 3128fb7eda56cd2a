//! What a browser is shown at a portal address that is no page: "Page not
//! found", and for a GET of a form's post address (a reload or the address
//! bar after a refused form shows one) the page the form is on. The edge
//! asks these for requests that want HTML outside the API's paths; API
//! clients keep their JSON 404 and 405.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::page_headers;

/// Whether the request is a browser's for a page (`Accept: text/html`).
pub fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// "Page not found" (404), with ways back into the portal.
pub fn not_found(path: &str) -> Response {
    let page = crate::bare::bare_with(
        "Page not found",
        html! {
            p.notice { "There is no page at " code { (path) } "." }
            p { a href="/orgs" { "Your organisations" } " · " a href="/" { "Back to the portal" } }
        },
    );
    let mut response = (StatusCode::NOT_FOUND, page).into_response();
    page_headers::protect(&mut response);
    response
}

/// A GET of an address only forms post to: the page that form is on, or
/// "Page not found" when the address is none of the portal's forms.
pub fn post_only(path: &str) -> Response {
    match form_page(path) {
        Some(page) => {
            let mut response = Redirect::to(&page).into_response();
            page_headers::protect(&mut response);
            response
        }
        None => not_found(path),
    }
}

/// The page whose form posts to `path` (the routes of [`crate::router`]).
pub fn form_page(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["o", org, section, rest @ ..] if !org.is_empty() => {
            let page = match (*section, rest) {
                ("installs", _) => "marketplace".to_owned(),
                ("members" | "invitations", _) => "members".to_owned(),
                ("sync", _) => "sync".to_owned(),
                // The KPI form is on a dashboard, and a new dashboard's on the first one.
                ("kpis", _) | ("dashboards", []) => "dashboard".to_owned(),
                ("dashboards", [id, ..]) => format!("dashboards/{id}"),
                _ => return None,
            };
            Some(format!("/o/{org}/{page}"))
        }
        ["invitations", ..] => Some("/orgs".to_owned()),
        ["signout"] => Some("/".to_owned()),
        ["account", _] => Some("/account".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_address_leads_to_the_page_its_form_is_on() {
        let cases = [
            ("/o/A/installs/7/entities", "/o/A/marketplace"),
            ("/o/A/installs", "/o/A/marketplace"),
            ("/o/A/members/u1/role", "/o/A/members"),
            ("/o/A/invitations/i1/revoke", "/o/A/members"),
            ("/o/A/kpis", "/o/A/dashboard"),
            ("/o/A/kpis/k1/delete", "/o/A/dashboard"),
            ("/o/A/dashboards", "/o/A/dashboard"),
            ("/o/A/dashboards/d1/widgets/2/move", "/o/A/dashboards/d1"),
            ("/o/A/sync/7/dlq/3/redrive", "/o/A/sync"),
            ("/invitations/i1/accept", "/orgs"),
            ("/signout", "/"),
            ("/account/password", "/account"),
            ("/account/name", "/account"),
        ];
        for (path, page) in cases {
            assert_eq!(form_page(path).as_deref(), Some(page), "{path}");
        }
        for unknown in ["/nope", "/settings", "/o/A/nothing", "/o//installs"] {
            assert_eq!(form_page(unknown), None, "{unknown}");
        }
    }

    #[tokio::test]
    async fn not_found_is_a_page_that_names_the_address_as_text() {
        let response = not_found("/<b>nope</b>");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("<h1>Page not found</h1>"), "{html}");
        assert!(html.contains("&lt;b&gt;nope&lt;/b&gt;"), "{html}");
        assert!(html.contains(r#"href="/orgs""#), "{html}");
    }

    #[test]
    fn only_a_request_for_html_wants_a_page() {
        let mut headers = HeaderMap::new();
        assert!(!wants_page(&headers));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wants_page(&headers));
        headers.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap(),
        );
        assert!(wants_page(&headers));
    }
}
