//! A browser for tests that walk HTML pages: plain HTTP requests that follow
//! no redirects and keep cookies (per host, as browsers do: ports share them).

use std::collections::BTreeMap;

use anyhow::Result;
use reqwest::StatusCode;

/// One answer: its status, `Location` and body.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookies: BTreeMap::new(),
        }
    }

    /// `GET url`.
    pub async fn get(&mut self, url: &str) -> Result<Page> {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// `POST url` of a form.
    pub async fn post_form(&mut self, url: &str, fields: &[(String, String)]) -> Result<Page> {
        let request = self.http.post(url).form(fields);
        self.send(request).await
    }

    /// Sends `request` with the cookies held, and keeps those it sets.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<Page> {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let response = request.header("cookie", cookie.join("; ")).send().await?;
        for line in response.headers().get_all("set-cookie") {
            let pair = line.to_str()?.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Page {
            status: response.status(),
            location,
            headers: response.headers().clone(),
            text: response.text().await?,
        })
    }

    /// At the Hub's sign-in form (`page`, from `GET /sso/v1/authorize`): fills
    /// it in and posts it to `authorize_url`; returns the Hub's answer (a 303
    /// back to the app when the user has one org with the app).
    pub async fn sign_in_at_hub(
        &mut self,
        page: &Page,
        authorize_url: &str,
        email: &str,
        password: &str,
    ) -> Result<Page> {
        let mut fields = hidden_fields(&page.text);
        anyhow::ensure!(
            fields.iter().any(|(n, v)| n == "action" && v == "signin"),
            "not the Hub's sign-in form: {}",
            page.text
        );
        fields.push(("email".into(), email.into()));
        fields.push(("password".into(), password.into()));
        self.post_form(authorize_url, &fields).await
    }

    /// At the portal's sign-in form (`page`, from `GET /signin`): fills it in
    /// and posts it to `signin_url`; returns the portal's answer (a 303 when
    /// signed in).
    pub async fn sign_in_at_portal(
        &mut self,
        page: &Page,
        signin_url: &str,
        email: &str,
        password: &str,
    ) -> Result<Page> {
        let mut fields = hidden_fields(&page.text);
        fields.push(("email".into(), email.into()));
        fields.push(("password".into(), password.into()));
        self.post_form(signin_url, &fields).await
    }
}

/// The hidden inputs of a page, unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"")?;
            let (value, _) = rest.split_once('"')?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}
