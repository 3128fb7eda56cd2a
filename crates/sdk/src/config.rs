//! The app's settings: where the platform is, the app's credentials and its
//! webhook signing secrets, from code or from `MNO_*` environment variables.

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// What the SDK needs to know about the platform and the app.
///
/// ```
/// let config = mno_sdk::Config::new("http://127.0.0.1:8080", "mk_key", "ms_secret")
///     .unwrap()
///     .with_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
/// assert_eq!(config.platform_url.as_str(), "http://127.0.0.1:8080/");
/// ```
#[derive(Clone)]
pub struct Config {
    /// The platform's public URL (the gateway), e.g. `https://mno.example.com`.
    pub platform_url: Url,
    /// The app's API key (`mk_...`): HTTP Basic user and OpenID `client_id`.
    pub app_key: String,
    /// The app's API secret (`ms_...`).
    pub app_secret: String,
    /// The app's id in the Hub, when known: it names the app's own entry in
    /// external-id arrays and lets the change feed skip the app's own writes.
    pub app_id: Option<String>,
    /// `whsec_...` secrets webhooks may be signed with (several during a rotation).
    pub webhook_secrets: Vec<String>,
    /// How long one HTTP attempt may take.
    pub timeout: Duration,
    /// How many times a failed attempt is retried (5xx, 429, timeouts, refused connections).
    pub max_retries: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("Config")
            .field("platform_url", &self.platform_url.as_str())
            .field("app_key", &self.app_key)
            .field("app_id", &self.app_id)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration from the platform URL and the app's key and secret.
    pub fn new(platform_url: &str, app_key: &str, app_secret: &str) -> Result<Config> {
        let mut platform_url = Url::parse(platform_url)
            .map_err(|e| Error::Config(format!("platform URL {platform_url:?}: {e}")))?;
        // Paths are joined onto it: a base path must end in a slash to be kept.
        if !platform_url.path().ends_with('/') {
            let path = format!("{}/", platform_url.path());
            platform_url.set_path(&path);
        }
        if !matches!(platform_url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "platform URL {platform_url}: use http:// or https://"
            )));
        }
        if app_key.is_empty() || app_secret.is_empty() {
            return Err(Error::Config(
                "the app key and secret are required (from POST /hub/v1/apps)".into(),
            ));
        }
        Ok(Config {
            platform_url,
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            app_id: None,
            webhook_secrets: Vec::new(),
            timeout: Duration::from_secs(30),
            max_retries: 4,
        })
    }

    /// Reads `MNO_URL`, `MNO_APP_KEY`, `MNO_APP_SECRET` (required), `MNO_APP_ID`,
    /// `MNO_WEBHOOK_SECRETS` (comma-separated `whsec_...`), `MNO_TIMEOUT_SECS` and
    /// `MNO_MAX_RETRIES`.
    ///
    /// ```no_run
    /// let config = mno_sdk::Config::from_env()?;
    /// # Ok::<(), mno_sdk::Error>(())
    /// ```
    pub fn from_env() -> Result<Config> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Config::from_env`], from any source of variables (tests, a file).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let mut config = Config::new(
            &required("MNO_URL")?,
            &required("MNO_APP_KEY")?,
            &required("MNO_APP_SECRET")?,
        )?;
        config.app_id = lookup("MNO_APP_ID").filter(|v| !v.is_empty());
        if let Some(secrets) = lookup("MNO_WEBHOOK_SECRETS") {
            config.webhook_secrets = secrets
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(secs) = lookup("MNO_TIMEOUT_SECS") {
            let secs: u64 = secs.parse().map_err(|_| {
                Error::Config(format!("MNO_TIMEOUT_SECS={secs:?}: give whole seconds"))
            })?;
            config.timeout = Duration::from_secs(secs);
        }
        if let Some(n) = lookup("MNO_MAX_RETRIES") {
            config.max_retries = n.parse().map_err(|_| {
                Error::Config(format!("MNO_MAX_RETRIES={n:?}: give a whole number"))
            })?;
        }
        Ok(config)
    }

    /// Adds a webhook signing secret (`whsec_...`).
    pub fn with_webhook_secret(mut self, secret: &str) -> Config {
        self.webhook_secrets.push(secret.to_owned());
        self
    }

    /// Sets the app's id in the Hub.
    pub fn with_app_id(mut self, app_id: &str) -> Config {
        self.app_id = Some(app_id.to_owned());
        self
    }

    /// The absolute URL of a platform path (`/connec/api/v2`).
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        self.platform_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Config(format!("path {path:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_gives_every_setting() {
        let vars = [
            ("MNO_URL", "https://mno.example.com/base/"),
            ("MNO_APP_KEY", "mk_1"),
            ("MNO_APP_SECRET", "ms_1"),
            ("MNO_WEBHOOK_SECRETS", "whsec_a, whsec_b"),
            ("MNO_MAX_RETRIES", "2"),
        ];
        let config = Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert_eq!(config.webhook_secrets, ["whsec_a", "whsec_b"]);
        assert_eq!(config.max_retries, 2);
        assert_eq!(
            config.url("/connec/api/v2").unwrap().as_str(),
            "https://mno.example.com/base/connec/api/v2"
        );
    }

    #[test]
    fn a_missing_setting_is_named() {
        let err = Config::from_lookup(|_| None).unwrap_err();
        assert!(err.to_string().contains("MNO_URL"), "{err}");
        let err = Config::new("ftp://x", "k", "s").unwrap_err();
        assert!(err.to_string().contains("http"), "{err}");
    }
}
