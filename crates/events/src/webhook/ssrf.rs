//! Keeping webhooks away from the platform's own network (SSRF).
//!
//! A webhook URL must be http(s) with a host. Unless private webhooks are
//! allowed, an IP-literal host is checked here, and a named host is checked
//! after DNS resolution by [`SafeResolver`], which is the resolver the HTTP
//! client connects through: the address checked is the address used, so a
//! DNS answer cannot swap in a private address after the check.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("webhook URL {0:?} is not a valid URL; set an http(s) URL in the app's settings")]
    Malformed(String),
    #[error("webhook URL {0:?} is not http or https")]
    Scheme(String),
    #[error("webhook URL {url:?} points at {ip}, a loopback, private or link-local address; use a public address (or start the platform with MNO_ALLOW_PRIVATE_WEBHOOKS=true for local tests)")]
    Private { url: String, ip: IpAddr },
}

/// Check the shape of a webhook URL and, when private addresses are denied, an IP-literal host.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, UrlRefused> {
    let parsed = reqwest::Url::parse(url).map_err(|_| UrlRefused::Malformed(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.to_owned()));
    }
    let ip = match parsed.host() {
        None => return Err(UrlRefused::Malformed(url.to_owned())),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip {
        if !allow_private && is_denied(ip) {
            return Err(UrlRefused::Private {
                url: url.to_owned(),
                ip,
            });
        }
    }
    Ok(parsed)
}

/// Loopback, private (RFC 1918, unique-local), link-local, CGNAT, unspecified, multicast, documentation.
pub fn is_denied(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_denied(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link local fe80::/10
        }
    }
}

/// The resolver webhooks connect through: drops denied addresses, fails when none is left.
pub struct SafeResolver;

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| !is_denied(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback, private or link-local addresses; webhooks must reach a public address"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_private_literals_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(UrlRefused::Private { .. })),
                "{url}"
            );
            check_url(url, true).unwrap();
        }
        check_url("https://93.184.216.34/hook", false).unwrap();
        check_url("https://example.com/hook", false).unwrap();
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(matches!(
            check_url("ftp://example.com/", true),
            Err(UrlRefused::Scheme(_))
        ));
        assert!(matches!(
            check_url("not a url", true),
            Err(UrlRefused::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let err = match SafeResolver.resolve(name).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("localhost must be refused"),
        };
        assert!(err.contains("public address"), "{err}");
    }
}
