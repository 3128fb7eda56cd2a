//! The confirmation of a destructive action, without script: its button is a
//! link to the action's own URL, where a page asks ("Remove Ali from
//! Pâtisserie?") with the button that posts, and **Cancel** back where the
//! person was. A GET of the action therefore never acts.

use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::forms;
use crate::layout::{self, Chrome};

pub struct Confirm<'a> {
    /// The question, as the page's title: "Uninstall Demo Books?".
    pub question: String,
    /// What happens then, in a sentence.
    pub consequence: String,
    /// Where the form posts (the page's own path).
    pub action: &'a str,
    /// The button that does it: "Uninstall Demo Books".
    pub button: String,
    /// Where Cancel goes.
    pub back: &'a str,
    /// Hidden fields the action needs besides the CSRF token.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The page that asks.
pub fn page(chrome: &Chrome, confirm: &Confirm) -> Response {
    let body = html! {
        p { (confirm.consequence) }
        form.inline.confirm method="post" action=(confirm.action) {
            (forms::csrf(&chrome.csrf))
            @for (name, value) in &confirm.fields { input type="hidden" name=(name) value=(value); }
            button.danger type="submit" { (confirm.button) }
            a.button.secondary href=(confirm.back) { "Cancel" }
        }
    };
    layout::page(&confirm.question, chrome, body).into_response()
}

/// The link that opens the confirmation, drawn as a danger button.
pub fn link(href: &str, label: &str, aria_label: Option<&str>) -> Markup {
    html! { a.button.danger href=(href) aria-label=[aria_label] { (label) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> Chrome {
        Chrome {
            csrf: "tok".into(),
            orgs: vec![serde_json::json!({"id": "o1", "name": "Pâtisserie", "role": "admin"})],
            invitations: Ok(vec![]),
            org: Some("o1".into()),
            section: "members",
            notice: None,
        }
    }

    #[tokio::test]
    async fn the_page_asks_and_only_its_button_posts() {
        let response = page(
            &chrome(),
            &Confirm {
                question: "Remove <b>Ali</b> from Pâtisserie?".into(),
                consequence: "Ali no longer sees the organisation.".into(),
                action: "/o/o1/members/u1/remove",
                button: "Remove Ali".into(),
                back: "/o/o1/members",
                fields: vec![("widget", "hr/payroll")],
            },
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&body);
        assert!(
            html.contains("<h1>Remove &lt;b&gt;Ali&lt;/b&gt; from Pâtisserie?</h1>"),
            "{html}"
        );
        assert!(
            html.contains(r#"method="post" action="/o/o1/members/u1/remove""#),
            "{html}"
        );
        assert!(html.contains(r#"name="csrf" value="tok""#), "{html}");
        assert!(
            html.contains(r#"name="widget" value="hr/payroll""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<button class="danger" type="submit">Remove Ali</button>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a class="button secondary" href="/o/o1/members">Cancel</a>"#),
            "{html}"
        );
    }

    #[test]
    fn the_button_that_asks_is_a_link_not_a_form() {
        let html = link("/o/o1/installs/7/uninstall", "Uninstall Books", None).into_string();
        assert_eq!(
            html,
            r#"<a class="button danger" href="/o/o1/installs/7/uninstall">Uninstall Books</a>"#
        );
    }
}
