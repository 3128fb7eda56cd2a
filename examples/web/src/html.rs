//! Pages: escaping, the frame of a page, and a failure shown as a page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A whole page titled `title` (already safe) around `body` (HTML).
pub fn page(title: &str, body: &str) -> String {
    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
}

/// Any failure of a page, shown naming it: a 400 when the platform refused
/// what the user sent (its 4xx says what to send instead), else a 500.
#[derive(Debug)]
pub struct PageError(pub anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for PageError {
    fn from(e: E) -> PageError {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = format!(
            "<p>Something went wrong: {}</p>",
            escape(&self.0.to_string())
        );
        let refused = self
            .0
            .downcast_ref::<mno_sdk::Error>()
            .and_then(|e| e.api());
        let status = match refused {
            Some(api) if (400..500).contains(&api.status) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Html(page("Error", &body))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">Tom & 'Jo'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jo&#x27;&lt;/a&gt;"
        );
    }
}
