//! The two HTTP clients of the runtime: one to the outside APIs, kept away
//! from the platform's own network like webhooks are, and one to this
//! platform's record API (on loopback, which the first one must refuse).

use std::sync::Arc;
use std::time::Duration;

use mno_events::webhook::ssrf::{self, SafeResolver};
use reqwest::redirect;

/// Redirects followed at most, each checked like the URL it came from.
const MAX_REDIRECTS: usize = 5;

#[derive(Clone)]
pub struct HttpClients {
    /// To outside APIs: every address it connects to is checked after DNS
    /// resolution, and every redirect before it is followed.
    pub outside: reqwest::Client,
    /// To this platform's record API.
    pub platform: reqwest::Client,
}

impl HttpClients {
    /// `allow_private`: the operator's `MNO_ALLOW_PRIVATE_WEBHOOKS`, for local tests.
    pub fn new(allow_private: bool) -> reqwest::Result<HttpClients> {
        let platform = base().build()?;
        let mut outside = base();
        if !allow_private {
            outside =
                outside
                    .dns_resolver(Arc::new(SafeResolver))
                    .redirect(redirect::Policy::custom(|attempt| {
                        if attempt.previous().len() >= MAX_REDIRECTS {
                            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                        } else if let Err(refused) = ssrf::check_url(attempt.url().as_str(), false)
                        {
                            attempt.error(refused)
                        } else {
                            attempt.follow()
                        }
                    }));
        }
        Ok(HttpClients {
            outside: outside.build()?,
            platform,
        })
    }
}

fn base() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
}

/// The registration check of an outside API's URL: the platform's one URL
/// check (`ssrf::check_registration`), in words that fit a connector.
pub fn check_outside_url(url: &str, allow_private: bool) -> Result<(), String> {
    ssrf::check_registration(url, allow_private)
        .map(|_| ())
        .map_err(|refused| {
            refused
                .to_string()
                .replacen("webhook URL", "the outside API's URL", 1)
                .replace("in the app's settings", "in settings.url")
                .replace(
                    "authenticate the webhook by its Standard Webhooks signature instead",
                    "send the user and password in credentials instead",
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_speaks_of_the_outside_api_and_says_what_to_do() {
        let private = check_outside_url("http://10.0.0.1/book/", false).unwrap_err();
        assert!(private.starts_with("the outside API's URL"), "{private}");
        assert!(private.contains("MNO_ALLOW_PRIVATE_WEBHOOKS"), "{private}");
        let with_password = check_outside_url("https://a:b@example.com/", false).unwrap_err();
        assert!(
            with_password.contains("in credentials instead"),
            "{with_password}"
        );
        assert!(check_outside_url("https://dav.example.com/book/", false).is_ok());
        assert!(check_outside_url("http://127.0.0.1:5232/book/", true).is_ok());
    }
}
