//! Settings of `mno up`, from flags and `MNO_*` environment variables, with
//! defaults that work on a fresh machine. Every check here runs before
//! anything starts, so a bad setting costs one clear line and a non-zero exit.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::nats_child::NatsSync;

/// The default address of the HTTP edge.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The default address of the operator's metrics listener (loopback only).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

#[derive(Debug, Clone, clap::Args)]
pub struct PlatformConfig {
    /// A nats-server to use (several URLs, comma-separated, for a cluster);
    /// when unset, `mno up` starts the installed nats-server as its child (on
    /// 4222 when free), never joining a server it did not start; `mno serve`
    /// requires it.
    #[arg(long, env = "MNO_NATS_URL")]
    pub nats_url: Option<String>,

    /// Where SQLite, the child nats-server's store and other state live.
    #[arg(long, env = "MNO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address of the HTTP edge (port 0 picks a free port).
    #[arg(long, env = "MNO_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: String,

    /// Address of the operator's metrics listener (`GET /metrics`, Prometheus
    /// text, no credentials: keep it on loopback or an operator network).
    #[arg(long, env = "MNO_METRICS_ADDR", default_value = DEFAULT_METRICS_ADDR)]
    pub metrics_addr: String,

    /// SQL database; SQLite under the data dir when unset, or a postgres:// URL.
    #[arg(long, env = "MNO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// The nats-server binary to start as a child (default: .tools/nats/bin/nats-server).
    #[arg(long, env = "MNO_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,

    /// How the child nats-server syncs its store: `always` (each write is on
    /// disk before it is acknowledged) or `default` (nats-server's, every 2 minutes).
    #[arg(long, env = "MNO_NATS_SYNC", value_enum, default_value_t = NatsSync::Always)]
    pub nats_sync: NatsSync,

    /// Stream replicas: 1 for a single node, 3 for the cluster configuration.
    #[arg(long, env = "MNO_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// Allow webhook URLs on loopback and private ranges (tests and local demos).
    #[arg(long, env = "MNO_ALLOW_PRIVATE_WEBHOOKS", default_value_t = false)]
    pub allow_private_webhooks: bool,

    /// Delays between webhook retries, e.g. "5s,5m,30m,2h,5h,10h,10h" (the default); then the DLQ.
    #[arg(long, env = "MNO_WEBHOOK_RETRY_SCHEDULE")]
    pub webhook_retry_schedule: Option<String>,

    /// Most record changes in one webhook POST.
    #[arg(long, env = "MNO_WEBHOOK_BATCH_MAX", default_value_t = 50)]
    pub webhook_batch_max: usize,

    /// Milliseconds a change may wait for others to share its webhook POST (0: send at once).
    #[arg(long, env = "MNO_WEBHOOK_LINGER_MS", default_value_t = 0)]
    pub webhook_linger_ms: u64,

    /// Addresses of proxies in front of the edge (comma-separated IPs) whose
    /// `X-Forwarded-For` is believed; from anyone else the header is ignored and
    /// the connection's peer is the client (sign-in limits count per client).
    #[arg(long, env = "MNO_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Failed sign-ins one email may have within 5 minutes before every
    /// attempt for it waits (429 with Retry-After).
    #[arg(long, env = "MNO_SIGNIN_FAILURES_PER_EMAIL", default_value_t = 5)]
    pub signin_failures_per_email: usize,

    /// Failed sign-ins one client address may have within 5 minutes before
    /// every attempt from it waits. Raise it for many users behind one NAT.
    #[arg(long, env = "MNO_SIGNIN_FAILURES_PER_ADDRESS", default_value_t = 20)]
    pub signin_failures_per_address: usize,

    /// Accounts one client address may make within 5 minutes before a
    /// sign-up from it waits. Raise it for many users behind one NAT.
    #[arg(long, env = "MNO_SIGNUPS_PER_ADDRESS", default_value_t = 20)]
    pub signups_per_address: usize,

    /// Most HTTP connections open at once; past it new ones wait for a free
    /// slot. Default: half the process's open-file limit, at most 10 000.
    #[arg(long, env = "MNO_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,

    /// Seconds a client may take to send a request's headers before it is closed.
    #[arg(long, env = "MNO_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,

    /// Most HTTP connections one client address may hold open at once; past
    /// it a new one gets a 429. Trusted proxies (MNO_TRUSTED_PROXIES) are not held to it.
    #[arg(long, env = "MNO_HTTP_MAX_CONNECTIONS_PER_CLIENT", default_value_t = crate::edge_server::EdgeLimits::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    pub http_max_connections_per_client: usize,

    /// Seconds a client may take to send a request's body, from its headers;
    /// past it the request gets a 400 and the connection is closed.
    #[arg(long, env = "MNO_HTTP_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub http_body_timeout_secs: u64,

    /// Seconds a connection may stay open without moving a byte before it is closed.
    #[arg(long, env = "MNO_HTTP_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub http_idle_timeout_secs: u64,

    /// SSE change streams one caller (an app or a user) may hold open at once.
    #[arg(long, env = "MNO_SSE_MAX_STREAMS", default_value_t = 10)]
    pub sse_max_streams: usize,

    /// Seconds an SSE client may leave its stream's buffer full before it is cut off.
    #[arg(long, env = "MNO_SSE_SLOW_CONSUMER_SECS", default_value_t = 30)]
    pub sse_slow_consumer_secs: u64,

    /// The platform's public URL, the OpenID Connect issuer apps sign users in
    /// with (e.g. https://mno.example.com); default: http:// and the HTTP address.
    #[arg(long, env = "MNO_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds a sign-in's authorization code may wait to be exchanged.
    #[arg(long, env = "MNO_SSO_CODE_TTL_SECS", default_value_t = 60)]
    pub sso_code_ttl_secs: u64,

    /// Seconds between billing runs for the last complete month (0: no
    /// scheduled run; `mno billing run` still works).
    #[arg(long, env = "MNO_BILLING_INTERVAL_SECS", default_value_t = 3600)]
    pub billing_interval_secs: u64,

    /// This process's name in the bus's leases (which process folds, delivers,
    /// runs the jobs); default: the host name and the data dir. A process
    /// restarted under the same name takes its own leases back at once.
    #[arg(long, env = "MNO_INSTANCE")]
    pub instance: Option<String>,

    /// Emails of the platform's operators (comma-separated): the users who may
    /// read `GET /operator/v1/bus` (streams, consumers, lag) and the portal's operator page.
    #[arg(long, env = "MNO_OPERATORS", value_delimiter = ',')]
    pub operators: Vec<String>,

    /// Whether `MNO_OPERATORS` is bound once the platform is up (`mno up
    /// --demo`, whose demo user is signed up then) instead of before the
    /// edge takes its first request, when a listed address with no account
    /// could otherwise be signed up by anyone in between.
    #[arg(skip)]
    pub bind_operators_once_up: bool,

    /// The platform key that seals connector credentials at rest (at least 32
    /// characters); when unset, one is generated into the data dir (`secret.key`).
    #[arg(long, env = "MNO_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretKey>,
}

/// A secret setting: shown as `<redacted>` wherever the configuration is printed.
#[derive(Clone)]
pub struct SecretKey(pub String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for SecretKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretKey(s.to_owned()))
    }
}

impl PlatformConfig {
    /// Settings for tests and embedding: a data dir, HTTP on a free port, the given bus.
    pub fn for_tests(data_dir: PathBuf, nats_url: Option<String>) -> Self {
        Self {
            nats_url,
            data_dir,
            http_addr: "127.0.0.1:0".into(),
            metrics_addr: "127.0.0.1:0".into(),
            database_url: None,
            nats_server_bin: None,
            nats_sync: NatsSync::Always,
            stream_replicas: 1,
            allow_private_webhooks: true,
            webhook_retry_schedule: Some("200ms,400ms,800ms".into()),
            webhook_batch_max: 50,
            webhook_linger_ms: 0,
            // Tests act as the proxy to name client addresses.
            trusted_proxies: vec![IpAddr::from([127, 0, 0, 1])],
            signin_failures_per_email: 5,
            signin_failures_per_address: 20,
            signups_per_address: 20,
            http_max_connections: None,
            http_max_connections_per_client: 256,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 30,
            http_idle_timeout_secs: 60,
            sse_max_streams: 10,
            sse_slow_consumer_secs: 30,
            public_url: None,
            sso_code_ttl_secs: 60,
            // Tests run billing when they mean to.
            billing_interval_secs: 0,
            instance: None,
            operators: Vec::new(),
            bind_operators_once_up: false,
            secret_key: None,
        }
    }

    /// This process's name in the bus's leases.
    pub fn instance_name(&self) -> String {
        if let Some(name) = self.instance.as_deref().filter(|n| !n.trim().is_empty()) {
            return name.trim().to_owned();
        }
        // One process at a time per data dir (its lock), so the pair names one process.
        let dir = std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}:{}", dir.display())
    }

    /// The edge's connection bounds in force.
    pub fn edge_limits(&self) -> crate::edge_server::EdgeLimits {
        crate::edge_server::EdgeLimits {
            max_connections: self
                .http_max_connections
                .unwrap_or_else(crate::edge_server::EdgeLimits::default_max_connections),
            max_connections_per_client: self.http_max_connections_per_client,
            uncapped_clients: self.trusted_proxies.clone(),
            header_read_timeout: std::time::Duration::from_secs(self.http_header_timeout_secs),
            body_read_timeout: std::time::Duration::from_secs(self.http_body_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.http_idle_timeout_secs),
        }
    }

    pub fn http_socket_addr(&self) -> Result<SocketAddr> {
        listen_address("MNO_HTTP_ADDR", &self.http_addr, DEFAULT_HTTP_ADDR)
    }

    pub fn metrics_socket_addr(&self) -> Result<SocketAddr> {
        listen_address("MNO_METRICS_ADDR", &self.metrics_addr, DEFAULT_METRICS_ADDR)
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| mno_events::db::sqlite_url(&self.data_dir))
    }

    /// Create the data dir if needed and prove it can be written.
    pub fn prepare_data_dir(&self) -> Result<()> {
        let dir = &self.data_dir;
        let fail = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "MNO_DATA_DIR {} cannot be written ({e}); choose a writable directory with MNO_DATA_DIR or --data-dir",
                dir.display()
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        let probe = dir.join(".write-probe");
        std::fs::write(&probe, b"ok").map_err(|e| fail(&e))?;
        std::fs::remove_file(&probe).map_err(|e| fail(&e))?;
        Ok(())
    }

    /// The OpenID Connect issuer: MNO_PUBLIC_URL, else http:// and the
    /// address the edge listens on (http://127.0.0.1:8080 by default).
    pub fn issuer(&self, http_addr: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{http_addr}"),
        }
    }

    /// Delivery settings for Connec!.
    pub fn delivery_config(&self) -> mno_connec_sync::delivery::DeliveryConfig {
        let mut delivery = mno_connec_sync::delivery::DeliveryConfig {
            allow_private_webhooks: self.allow_private_webhooks,
            batch_max: self.webhook_batch_max.max(1),
            linger: std::time::Duration::from_millis(self.webhook_linger_ms),
            sse_max_streams: self.sse_max_streams.max(1),
            sse_slow_after: std::time::Duration::from_secs(self.sse_slow_consumer_secs.max(1)),
            ..Default::default()
        };
        if let Some(schedule) = self
            .webhook_retry_schedule
            .as_deref()
            .and_then(|s| mno_connec_sync::delivery::DeliveryConfig::parse_schedule(s).ok())
        {
            delivery.retry_schedule = schedule;
        }
        delivery
    }

    /// Check everything that can be checked without starting anything.
    pub fn validate(&self) -> Result<()> {
        self.http_socket_addr()?;
        self.metrics_socket_addr()?;
        if let Some(url) = &self.nats_url {
            mno_events::bus::parse_url(url)?;
        }
        if !(self.stream_replicas == 1 || self.stream_replicas == 3) {
            bail!(
                "MNO_STREAM_REPLICAS is {}; use 1 (single node) or 3 (the cluster configuration)",
                self.stream_replicas
            );
        }
        if self.stream_replicas > 1 && self.nats_url.is_none() {
            bail!(
                "MNO_STREAM_REPLICAS is {}, but without MNO_NATS_URL mno starts a single nats-server of its own, \
                 which keeps one copy; point MNO_NATS_URL at the three nodes of a cluster (see docs/operations.md), \
                 or leave MNO_STREAM_REPLICAS at 1",
                self.stream_replicas
            );
        }
        if let Some(schedule) = &self.webhook_retry_schedule {
            mno_connec_sync::delivery::DeliveryConfig::parse_schedule(schedule)
                .map_err(|e| anyhow::anyhow!("MNO_WEBHOOK_RETRY_SCHEDULE: {e}"))?;
        }
        if self.sse_max_streams == 0 || self.sse_slow_consumer_secs == 0 {
            bail!("MNO_SSE_MAX_STREAMS and MNO_SSE_SLOW_CONSUMER_SECS must be 1 or more (10 and 30 by default)");
        }
        if self.signin_failures_per_email == 0
            || self.signin_failures_per_address == 0
            || self.signups_per_address == 0
        {
            bail!("MNO_SIGNIN_FAILURES_PER_EMAIL, MNO_SIGNIN_FAILURES_PER_ADDRESS and MNO_SIGNUPS_PER_ADDRESS must be 1 or more (5, 20 and 20 by default)");
        }
        if self.http_max_connections == Some(0) {
            bail!("MNO_HTTP_MAX_CONNECTIONS is 0; use 1 or more, or unset it for half the open-file limit");
        }
        if self.http_header_timeout_secs == 0
            || self.http_body_timeout_secs == 0
            || self.http_idle_timeout_secs == 0
        {
            bail!("MNO_HTTP_HEADER_TIMEOUT_SECS, MNO_HTTP_BODY_TIMEOUT_SECS and MNO_HTTP_IDLE_TIMEOUT_SECS must be 1 or more (10, 30 and 60 by default)");
        }
        if self.http_max_connections_per_client == 0 {
            bail!("MNO_HTTP_MAX_CONNECTIONS_PER_CLIENT is 0; use 1 or more (256 by default)");
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).ok();
            let ok = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                bail!("MNO_PUBLIC_URL {url:?} is not an http(s) URL without query or fragment, e.g. https://mno.example.com");
            }
        }
        if let Some(key) = &self.secret_key {
            if key.0.chars().count() < 32 {
                bail!("MNO_SECRET_KEY is too short; use at least 32 random characters (or unset it to generate a key into the data dir)");
            }
        }
        if self.webhook_batch_max == 0 {
            bail!("MNO_WEBHOOK_BATCH_MAX is 0; use 1 or more (50 by default)");
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:") || mno_events::db::is_postgres(url)) {
                bail!(
                    "MNO_DATABASE_URL {:?} is neither sqlite:// nor postgres://; unset it to use SQLite under the data dir",
                    mno_events::db::redact(url)
                );
            }
        }
        Ok(())
    }
}

/// `host:port` to listen on: an IP address, or a name such as `localhost`
/// (its first address, IPv4 preferred).
fn listen_address(setting: &str, text: &str, example: &str) -> Result<SocketAddr> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let shape =
        || format!("{setting} {text:?} is not an address of the form host:port, e.g. {example}");
    let (host, port) = text.rsplit_once(':').with_context(shape)?;
    port.parse::<u16>().with_context(shape)?;
    let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .with_context(|| format!("{setting} {text:?}: the name {host:?} does not resolve; give an IP address, e.g. {example}"))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .with_context(|| {
            format!(
                "{setting} {text:?}: {host:?} has no address; give an IP address, e.g. {example}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_may_name_its_host() {
        let ip = listen_address("MNO_HTTP_ADDR", "127.0.0.1:8080", DEFAULT_HTTP_ADDR).unwrap();
        assert_eq!(ip.to_string(), "127.0.0.1:8080");
        let named = listen_address("MNO_HTTP_ADDR", "localhost:8080", DEFAULT_HTTP_ADDR).unwrap();
        assert!(named.ip().is_loopback() && named.port() == 8080, "{named}");
        for bad in ["localhost", "localhost:http", "localhost:99999"] {
            let error = listen_address("MNO_HTTP_ADDR", bad, DEFAULT_HTTP_ADDR)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("MNO_HTTP_ADDR \"{bad}\"")),
                "{error}"
            );
        }
    }
}
