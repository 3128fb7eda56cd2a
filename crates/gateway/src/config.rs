//! Settings of `mno up`, from flags and `MNO_*` environment variables, with
//! defaults that work on a fresh machine. Every check here runs before
//! anything starts, so a bad setting costs one clear line and a non-zero exit.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The default address of the HTTP edge.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, clap::Args)]
pub struct PlatformConfig {
    /// A nats-server to use; when unset, `mno up` uses one answering at
    /// nats://127.0.0.1:4222 or starts the installed nats-server as a child.
    #[arg(long, env = "MNO_NATS_URL")]
    pub nats_url: Option<String>,

    /// Where SQLite, the child nats-server's store and other state live.
    #[arg(long, env = "MNO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address of the HTTP edge (port 0 picks a free port).
    #[arg(long, env = "MNO_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: String,

    /// SQL database; SQLite under the data dir when unset, or a postgres:// URL.
    #[arg(long, env = "MNO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// The nats-server binary to start as a child (default: .tools/nats/bin/nats-server).
    #[arg(long, env = "MNO_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,

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

    /// Emails of the platform's operators (comma-separated): the users who may
    /// read `GET /operator/v1/bus` (streams, consumers, lag) and the portal's operator page.
    #[arg(long, env = "MNO_OPERATORS", value_delimiter = ',')]
    pub operators: Vec<String>,
}

impl PlatformConfig {
    /// Settings for tests and embedding: a data dir, HTTP on a free port, the given bus.
    pub fn for_tests(data_dir: PathBuf, nats_url: Option<String>) -> Self {
        Self {
            nats_url,
            data_dir,
            http_addr: "127.0.0.1:0".into(),
            database_url: None,
            nats_server_bin: None,
            stream_replicas: 1,
            allow_private_webhooks: true,
            webhook_retry_schedule: Some("200ms,400ms,800ms".into()),
            webhook_batch_max: 50,
            webhook_linger_ms: 0,
            // Tests act as the proxy to name client addresses.
            trusted_proxies: vec![IpAddr::from([127, 0, 0, 1])],
            operators: Vec::new(),
        }
    }

    pub fn http_socket_addr(&self) -> Result<SocketAddr> {
        self.http_addr.parse().with_context(|| {
            format!(
                "MNO_HTTP_ADDR {:?} is not an address of the form host:port, e.g. {DEFAULT_HTTP_ADDR}",
                self.http_addr
            )
        })
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

    /// Delivery settings for Connec!.
    pub fn delivery_config(&self) -> mno_connec_sync::delivery::DeliveryConfig {
        let mut delivery = mno_connec_sync::delivery::DeliveryConfig {
            allow_private_webhooks: self.allow_private_webhooks,
            batch_max: self.webhook_batch_max.max(1),
            linger: std::time::Duration::from_millis(self.webhook_linger_ms),
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
        if let Some(url) = &self.nats_url {
            mno_events::bus::parse_url(url)?;
        }
        if !(self.stream_replicas == 1 || self.stream_replicas == 3) {
            bail!(
                "MNO_STREAM_REPLICAS is {}; use 1 (single node) or 3 (the cluster configuration)",
                self.stream_replicas
            );
        }
        if let Some(schedule) = &self.webhook_retry_schedule {
            mno_connec_sync::delivery::DeliveryConfig::parse_schedule(schedule)
                .map_err(|e| anyhow::anyhow!("MNO_WEBHOOK_RETRY_SCHEDULE: {e}"))?;
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
