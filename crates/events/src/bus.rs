//! Connecting to the bus, and refusing a server that cannot do what we need.
//!
//! Mno relies on nats-server 2.10 or newer: multi-filter consumers (older
//! servers silently ignore all filters but one), KV, and per-message TTLs.

use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream;

/// The oldest nats-server we accept.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 0);

/// What to tell an operator whose server is missing or too old.
pub const INSTALL_HINT: &str = "install a good one with `bash deploy/nats/install.sh` (nats-server 2.15.1 into .tools/nats/bin) and point MNO_NATS_URL at it, or unset MNO_NATS_URL and let `mno up` start it";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("MNO_NATS_URL {url:?} is not a NATS URL ({reason}); use the form nats://host:port, e.g. nats://127.0.0.1:4222")]
    BadUrl { url: String, reason: String },
    #[error("no nats-server answers at {url} ({reason}); start one, or {INSTALL_HINT}")]
    Unreachable { url: String, reason: String },
    #[error("nats-server at {url} is version {found}; Mno needs {min_major}.{min_minor} or newer (multi-filter consumers, KV, message TTLs); {INSTALL_HINT}", min_major = MIN_SERVER_VERSION.0, min_minor = MIN_SERVER_VERSION.1)]
    TooOld { url: String, found: String },
    #[error("nats-server at {url} has JetStream disabled ({reason}); start it with -js (deploy/nats/dev.conf does)")]
    NoJetStream { url: String, reason: String },
}

/// A connection to the bus: the core client and its JetStream context.
#[derive(Clone, Debug)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub server_version: String,
}

/// Check a server version string ("2.15.1", "v2.9.10", "2.11.0-beta.1") against [`MIN_SERVER_VERSION`].
pub fn check_server_version(url: &str, found: &str) -> Result<(), BusError> {
    let too_old = || BusError::TooOld {
        url: url.to_owned(),
        found: found.to_owned(),
    };
    if !version_at_least(found, MIN_SERVER_VERSION) {
        return Err(too_old());
    }
    Ok(())
}

/// Whether a server version string is at least `min` (false when it cannot be read).
pub fn version_at_least(found: &str, min: (u64, u64, u64)) -> bool {
    let core = found.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u64>());
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return false;
    };
    let patch = parts.next().and_then(Result::ok).unwrap_or(0);
    (major, minor, patch) >= min
}

/// Validate a NATS URL, or a comma-separated list of them (a cluster), without connecting.
pub fn parse_url(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    let bad = |reason: String| BusError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    if url.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    url.split(',')
        .map(|one| {
            let addr =
                async_nats::ServerAddr::from_str(one.trim()).map_err(|e| bad(e.to_string()))?;
            if addr.host().is_empty() {
                return Err(bad("it names no host".into()));
            }
            Ok(addr)
        })
        .collect()
}

/// Connect, check the server version and that JetStream answers.
pub async fn connect(url: &str) -> Result<Bus, BusError> {
    connect_named(url, "mno").await
}

/// As [`connect`], with a client name that shows in the server's monitoring.
pub async fn connect_named(url: &str, name: &str) -> Result<Bus, BusError> {
    let addrs = parse_url(url)?;
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .connect(addrs)
        .await
        .map_err(|e| BusError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let server_version = client.server_info().version;
    check_server_version(url, &server_version)?;
    let js = jetstream::new(client.clone());
    js.query_account()
        .await
        .map_err(|e| BusError::NoJetStream {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Bus {
        client,
        js,
        server_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_2_10_and_newer() {
        for v in ["2.10.0", "2.10.22", "2.11.0-beta.1", "v2.15.1", "3.0.0"] {
            check_server_version("nats://x", v).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn refuses_older_servers_naming_the_version_and_the_fix() {
        for v in ["2.9.10", "2.2.0", "1.4.1", "garbage", ""] {
            let err = check_server_version("nats://x:4222", v)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("version {v};")), "{err}");
            assert!(err.contains("2.10 or newer"), "{err}");
            assert!(err.contains("deploy/nats/install.sh"), "{err}");
        }
    }

    #[test]
    fn atomic_batches_are_known_from_2_12_on() {
        let atomic = crate::publish::ATOMIC_BATCH_SERVER_VERSION;
        for v in ["2.12.0", "v2.15.1", "2.12.1-RC.1"] {
            assert!(version_at_least(v, atomic), "{v}");
        }
        for v in ["2.11.9", "2.10.22", "garbage"] {
            assert!(!version_at_least(v, atomic), "{v}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_before_connecting() {
        for url in ["", "http://[::1", "nats://"] {
            let err = parse_url(url).unwrap_err();
            assert!(matches!(err, BusError::BadUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains("nats://host:port"));
        }
        parse_url("nats://127.0.0.1:4222").unwrap();
        parse_url("127.0.0.1:4222").unwrap();
        assert_eq!(
            parse_url("nats://a:1,nats://b:2, nats://c:3")
                .unwrap()
                .len(),
            3
        );
        assert!(parse_url("nats://a:1,nats://b:x").is_err());
    }
}
