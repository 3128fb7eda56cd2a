//! What every page's `<head>` holds (the shipped assets), and the bare page:
//! no top bar, for sign-in, sign-up and errors (which may have no session).

use maud::{html, Markup, DOCTYPE};

/// The `<head>`: the shipped assets, and no favicon request.
pub fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Mno" }
            // No favicon request (its 404 would be a console error).
            link rel="icon" href="data:,";
            link rel="stylesheet" href="/assets/uPlot-1.6.32.min.css";
            link rel="stylesheet" href="/assets/portal.css";
            script defer src="/assets/htmx-2.0.11.min.js" {}
            script defer src="/assets/htmx-ext-sse-2.2.4.min.js" {}
            script defer src="/assets/uPlot-1.6.32.iife.min.js" {}
            script defer src="/assets/portal.js" {}
        }
    }
}

/// A page without the top bar: sign-in, sign-up, errors.
pub fn bare(title: &str, message: &str) -> Markup {
    bare_with(
        title,
        html! { p.notice { (message) } p { a href="/" { "Back to the portal" } } },
    )
}

pub fn bare_with(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.narrow {
                header.top { a.brand href="/" { "Mno" } }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}
