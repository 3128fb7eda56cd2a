//! The HTML pages of sign-in: plain forms that work without script. Every
//! value shown is escaped; pages are never cached nor framed (clickjacking).

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::de::DeserializeOwned;

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page with `title` and already-escaped `body`.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}\
         label,input,button{{display:block;margin:.4rem 0}}input{{width:100%}}.error{{color:#a00}}</style>\
         </head><body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

/// A page that explains a problem; `detail` is plain text.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    page(
        status,
        title,
        &format!("<p class=\"error\">{}</p>", escape(detail)),
    )
}

/// Hidden inputs carrying `fields` (name, value) through a form.
pub fn hidden(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A failure of ours (the database): logged, and a page asking to try again.
pub fn server_error(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The platform could not answer. Try again shortly.",
    )
}

/// A query or form that could not be read (a parameter given twice, a body
/// that is not a form): a page, as every other answer of these routes, not
/// the framework's plain text.
fn unreadable(why: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "This request could not be read",
        &format!("{why}. Go back to the app and sign in or out again from there."),
    )
}

/// The query string, read as `Query` does; refused with a page.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(PageQuery(value)),
            Err(rejection) => Err(unreadable(&rejection.body_text())),
        }
    }
}

/// A posted form, read as `Form` does; refused with a page.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(PageForm(value)),
            Err(rejection) => Err(unreadable(&rejection.body_text())),
        }
    }
}

/// A form posted without this browser's CSRF token; `then` says what to do.
pub fn form_expired(then: &str) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "This form has expired",
        &format!("The form was not sent from this browser's Hub page (its security token is missing or wrong). {then}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(
            hidden(&[("state", "\"><script>")]),
            r#"<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;">"#
        );
    }
}
