//! Keeping webhooks away from the platform's own network (SSRF).
//!
//! A webhook URL must be http(s) with a host. Unless private webhooks are
//! allowed, an IP-literal host is checked here, and a named host is checked
//! after DNS resolution by [`SafeResolver`], which is the resolver the HTTP
//! client connects through: the address checked is the address used, so a
//! DNS answer cannot swap in a private address after the check.
//!
//! [`check_registration`] is the one check for every place a URL is
//! registered (an app's webhooks, a KPI alert's webhook): it adds to
//! [`check_url`] what can be judged before any DNS answer (no credentials in
//! the URL, no `localhost` name). Send-time checks stay as they are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("webhook URL {0:?} is not a valid URL; set an http(s) URL in the app's settings")]
    Malformed(String),
    #[error("webhook URL {0:?} is not http or https")]
    Scheme(String),
    #[error("webhook URL {url:?} points at {ip}, a loopback, private, link-local or reserved address; use a public address (or start the platform with MNO_ALLOW_PRIVATE_WEBHOOKS=true for local tests)")]
    Private { url: String, ip: IpAddr },
    #[error("webhook URL {0:?} names this machine (localhost); use a public address (or start the platform with MNO_ALLOW_PRIVATE_WEBHOOKS=true for local tests)")]
    LocalName(String),
    #[error("webhook URL {0:?} carries a user or password; authenticate the webhook by its Standard Webhooks signature instead")]
    Credentials(String),
}

/// The check for registering a webhook URL: [`check_url`], no user or
/// password in it (every GET of the settings would show them), and, unless
/// private webhooks are allowed, no `localhost` name (a name is otherwise
/// judged by the address it resolves to, at each send).
pub fn check_registration(url: &str, allow_private: bool) -> Result<reqwest::Url, UrlRefused> {
    let parsed = check_url(url.trim(), allow_private)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefused::Credentials(url.to_owned()));
    }
    if !allow_private {
        if let Some(url::Host::Domain(name)) = parsed.host() {
            // `localhost.` (a fully qualified name) is the same name.
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(UrlRefused::LocalName(url.to_owned()));
            }
        }
    }
    Ok(parsed)
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

/// Loopback, private (RFC 1918, unique-local), link-local, CGNAT, unspecified,
/// multicast, documentation, benchmarking, reserved, IETF protocol assignments;
/// and IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4,
/// Teredo) are judged by the address they embed.
pub fn is_denied(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
                || a == 0
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
                || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast 192.88.99/24
                || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15
                || a >= 240 // reserved 240/4 (and broadcast)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_denied(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site local fec0::/10 (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
                || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local NAT64 64:ff9b:1::/48
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        }
    }
}

/// The IPv4 address an IPv6 address carries to an IPv4 host, if it is one of
/// the forms that do: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`
/// (deprecated, but routed by some stacks), NAT64 `64:ff9b::a.b.c.d`, 6to4
/// `2002:aabb:ccdd::` and Teredo `2001:0::` (the client, stored inverted).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // `::` and `::1` are judged as IPv6 (unspecified, loopback).
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(last);
    }
    if s[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]));
    }
    None
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
    fn denies_reserved_ranges_and_ipv6_forms_that_embed_private_addresses() {
        for url in [
            "http://198.18.0.1/",                             // benchmarking 198.18/15
            "http://198.19.255.254/",                         // benchmarking, upper half
            "http://240.0.0.1/",                              // reserved 240/4
            "http://255.255.255.255/",                        // broadcast
            "http://192.0.0.8/",                              // IETF protocol assignments
            "http://192.88.99.1/",                            // 6to4 relay anycast
            "http://[::127.0.0.1]/",                          // IPv4-compatible
            "http://[::10.0.0.1]/",                           // IPv4-compatible, private
            "http://[64:ff9b::127.0.0.1]/",                   // NAT64 of loopback
            "http://[64:ff9b::a9fe:a9fe]/",                   // NAT64 of 169.254.169.254
            "http://[64:ff9b:1::1]/",                         // local-use NAT64
            "http://[2002:7f00:1::]/",                        // 6to4 of 127.0.0.1
            "http://[2002:c0a8:101::1]/",                     // 6to4 of 192.168.1.1
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", // Teredo client 10.0.0.1
            "http://[fec0::1]/",                              // site local
            "http://[2001:db8::1]/",                          // documentation
            "http://[100::1]/",                               // discard-only
        ] {
            assert!(
                matches!(check_url(url, false), Err(UrlRefused::Private { .. })),
                "{url} must be refused"
            );
            check_url(url, true).unwrap();
        }
        // The same forms embedding a public address stay allowed.
        for url in [
            "http://198.20.0.1/",
            "http://[64:ff9b::5db8:d822]/", // NAT64 of 93.184.216.34
            "http://[2002:5db8:d822::1]/",  // 6to4 of 93.184.216.34
            "http://[2606:4700::1111]/",
        ] {
            check_url(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn registration_refuses_localhost_names_and_credentials() {
        for url in [
            "http://localhost/x",
            "http://LocalHost./x",
            "https://api.localhost:8443/x",
        ] {
            assert!(
                matches!(
                    check_registration(url, false),
                    Err(UrlRefused::LocalName(_))
                ),
                "{url}"
            );
            check_registration(url, true).unwrap();
        }
        assert!(matches!(
            check_registration("https://user:pass@example.com/x", true),
            Err(UrlRefused::Credentials(_))
        ));
        assert!(matches!(
            check_registration("http://[64:ff9b::10.0.0.1]/", false),
            Err(UrlRefused::Private { .. })
        ));
        check_registration("https://books.example.com/mno", false).unwrap();
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
