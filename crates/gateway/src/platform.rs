//! The platform in one process: the bus, the streams, the database, the Hub,
//! Connec! and Impac!, behind one HTTP edge; or some of it (its [`Roles`]),
//! one process of many on one bus and one database (`mno serve`).
//!
//! Used by `mno up`, `mno serve` and by the end-to-end tests, which start it on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mno_connec_sync::{Connec, ConnecConfig, ConnecDeps};
use mno_connectors::{Connectors, ConnectorsConfig, ConnectorsDeps};
use mno_events::bus::{self, Bus};
use mno_hub::{Hub, HubConfig, HubDeps};
use mno_impac_projector::{Impac, ImpacConfig, ImpacDeps};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bus_owner;
use crate::config::PlatformConfig;
use crate::data_dir_lock::DataDirLock;
use crate::health::EdgeState;
use crate::http;
use crate::nats_child::{self, ChildNats};
use crate::operator::OperatorList;
use crate::roles::Roles;
use mno_events::lease::{Kept, Leases};

pub struct Platform;

/// A started platform; call [`RunningPlatform::shutdown`] to stop it cleanly.
pub struct RunningPlatform {
    /// The HTTP edge's address (`None`: this process is not an edge).
    pub http_addr: Option<SocketAddr>,
    pub roles: Roles,
    /// The operator's metrics listener (`GET /metrics`).
    pub metrics_addr: SocketAddr,
    pub nats_url: String,
    pub bus: Bus,
    pub db: sqlx::AnyPool,
    pub config: PlatformConfig,
    /// The composed edge router as served (tests compare its routes with /openapi.json).
    pub router: axum::Router,
    hub: Hub,
    connec: Connec,
    impac: Impac,
    /// Only in the process with the connectors role.
    connectors: Option<Connectors>,
    /// `MNO_OPERATORS`, bound by [`RunningPlatform::bind_operators`].
    operators: Arc<OperatorList>,
    child: Option<ChildNats>,
    /// This process's name, held while it runs (see `Leases::claim_name`).
    name: Kept,
    /// Released last, when the platform value is gone (after the child stopped).
    _data_dir: DataDirLock,
    stop_http: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop_metrics: oneshot::Sender<()>,
    metrics_server: JoinHandle<std::io::Result<()>>,
}

impl Platform {
    /// Every role in one process (`mno up`).
    pub async fn start(config: PlatformConfig) -> Result<RunningPlatform> {
        Self::start_roles(config, Roles::all()).await
    }

    /// The given roles (`mno serve --role ...`).
    pub async fn start_roles(config: PlatformConfig, roles: Roles) -> Result<RunningPlatform> {
        config.validate()?;
        config.prepare_data_dir()?;
        let data_dir_lock = DataDirLock::acquire(&config.data_dir)?;
        // Bind first: a port in use should fail before anything else starts.
        let listener = match roles.edge {
            true => Some(bind(config.http_socket_addr()?, "MNO_HTTP_ADDR").await?),
            false => None,
        };
        let http_addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let metrics_listener = bind(config.metrics_socket_addr()?, "MNO_METRICS_ADDR").await?;
        let metrics_addr = metrics_listener.local_addr()?;

        let (bus, child) = connect_bus(&config).await?;
        let nats_url = child
            .as_ref()
            .map(|c| c.url.clone())
            .or_else(|| config.nats_url.clone())
            .unwrap_or_else(|| nats_child::DEFAULT_NATS_URL.to_owned());
        tracing::info!(%nats_url, version = %bus.server_version, "bus connected");

        let database_url = config.database_url();
        let db = mno_events::db::open(&database_url).await?;
        tracing::info!(database = %mno_events::db::redact(&database_url), "database open");
        // Before anything is created or updated on the bus: a process set to fewer
        // replicas than the streams keep would lower them all.
        mno_events::streams::check_replicas(&bus.js, config.stream_replicas).await?;
        // Before anything consumes: a bus that belongs to another platform is refused.
        let identity = bus_owner::database_identity(&db).await?;
        bus_owner::claim_bus(
            &bus.js,
            &identity,
            config.stream_replicas,
            &nats_url,
            &mno_events::db::redact(&database_url),
        )
        .await?;

        for (stream, outcome) in
            mno_events::streams::provision_all(&bus.js, config.stream_replicas).await?
        {
            tracing::info!(%stream, ?outcome, "stream provisioned");
        }
        let leases = Leases::open(
            &bus.js,
            Some(config.stream_replicas),
            config.instance_name(),
        )
        .await?;
        // Before any part takes a lease under this name.
        let name = leases.claim_name().await?;

        // The portal passes its visitors' addresses to the Hub under this key.
        let frontend_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut hub = Hub::start(HubDeps {
            bus: bus.clone(),
            db: db.clone(),
            config: HubConfig {
                trusted_proxies: config.trusted_proxies.clone(),
                login_failures_per_email: config.signin_failures_per_email,
                login_failures_per_address: config.signin_failures_per_address,
                signups_per_address: config.signups_per_address,
                frontend_key: Some(frontend_key.clone()),
                allow_private_webhooks: config.allow_private_webhooks,
                account_webhook_retry_schedule: config.delivery_config().retry_schedule,
                billing_interval: (config.billing_interval_secs > 0)
                    .then(|| Duration::from_secs(config.billing_interval_secs)),
                known_entities: mno_connec_sync::entities::names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                // One process at a time runs the jobs, under a lease (below).
                run_jobs: false,
                kv_replicas: config.stream_replicas,
                serve_nats: roles.hub_jobs,
                sso: mno_hub::sso::SsoConfig {
                    issuer: config.issuer(http_addr.unwrap_or(config.http_socket_addr()?)),
                    code_ttl: Duration::from_secs(config.sso_code_ttl_secs),
                    // Back-channel logouts are retried as webhooks are.
                    logout_retry_schedule: config.delivery_config().retry_schedule,
                    ..Default::default()
                },
                ..HubConfig::default()
            },
        })
        .await
        .context("start the Hub")?;
        if roles.hub_jobs {
            hub.run_jobs_under_lease(leases.clone());
        }
        // Connec! and Impac! ask through a cache that Hub events keep fresh; in
        // this process the Hub also tells it of each change before answering
        // the call that made it, so a revocation is in force once it returns.
        let caching = mno_events::idm::CachingIdm::start(
            hub.idm(),
            bus.client.clone(),
            mno_events::idm::CachingIdm::DEFAULT_MAX_AGE,
        )
        .await
        .context("subscribe the IDM cache to Hub events")?;
        hub.add_change_listener(caching.change_listener());
        let idm: Arc<dyn mno_events::idm::Idm> = Arc::new(caching);
        let connec = Connec::start(ConnecDeps {
            bus: bus.clone(),
            db: db.clone(),
            idm: idm.clone(),
            directory: hub.directory(),
            leases: leases.clone(),
            config: ConnecConfig {
                delivery: config.delivery_config(),
                // The id map and idempotency buckets follow the streams' replicas.
                kv_replicas: config.stream_replicas,
                fold_records: roles.projections,
                deliver: roles.delivery,
            },
        })
        .await
        .context("start Connec!")?;
        let impac = Impac::start(ImpacDeps {
            bus: bus.clone(),
            fold: roles.projections.then(|| leases.clone()),
            db: db.clone(),
            idm: idm.clone(),
            directory: hub.directory(),
            config: ImpacConfig {
                allow_private_webhooks: config.allow_private_webhooks,
            },
        })
        .await
        .context("start Impac!")?;
        // The connectors runtime reaches the record API over loopback, as the
        // connector apps: it runs beside an edge (the roles make sure of it).
        let connectors = match http_addr {
            Some(http_addr) if roles.connectors => Some(
                Connectors::start(ConnectorsDeps {
                    db: db.clone(),
                    idm: idm.clone(),
                    directory: hub.directory(),
                    config: ConnectorsConfig {
                        secret_key: config.secret_key.as_ref().map(|k| k.0.clone()),
                        allow_private_urls: config.allow_private_webhooks,
                        ..ConnectorsConfig::new(self_url(http_addr), config.data_dir.clone())
                    },
                })
                .await
                .context("start the connectors runtime")?,
            ),
            _ => None,
        };

        let edge = EdgeState {
            bus: bus.clone(),
            db: db.clone(),
            counters: Arc::new(Default::default()),
        };
        let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
        let metrics = http::metrics_router(edge.clone());
        let metrics_server = tokio::spawn(async move {
            axum::serve(metrics_listener, metrics)
                .with_graceful_shutdown(async {
                    let _ = metrics_stopped.await;
                })
                .await
        });
        tracing::info!(%metrics_addr, "serving metrics");
        let operators = Arc::new(OperatorList::new(&config.operators));
        if roles.edge && !config.bind_operators_once_up {
            // Before the edge serves: no one can sign up under a listed address
            // between the start and the binding.
            operators.bind(&db).await?;
        }
        let (router, stop_http, server) = match listener {
            Some(listener) => {
                let (router, stop_http, server) = serve_edge(
                    &config,
                    listener,
                    &bus,
                    &hub,
                    &connec,
                    &impac,
                    connectors.as_ref(),
                    frontend_key,
                    edge,
                    &operators,
                )?;
                (router, Some(stop_http), Some(server))
            }
            None => (axum::Router::new(), None, None),
        };
        tracing::info!(%roles, "platform roles running");

        Ok(RunningPlatform {
            http_addr,
            roles,
            metrics_addr,
            nats_url,
            bus,
            db,
            config,
            router,
            hub,
            connec,
            impac,
            connectors,
            operators,
            child,
            name,
            _data_dir: data_dir_lock,
            stop_http,
            server,
            stop_metrics,
            metrics_server,
        })
    }
}

/// The HTTP edge: every part's routes, the portal, the operator API.
#[allow(clippy::too_many_arguments)]
fn serve_edge(
    config: &PlatformConfig,
    listener: TcpListener,
    bus: &Bus,
    hub: &Hub,
    connec: &Connec,
    impac: &Impac,
    connectors: Option<&Connectors>,
    frontend_key: String,
    edge: EdgeState,
    operators: &Arc<OperatorList>,
) -> Result<(
    axum::Router,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
)> {
    let http_addr = listener.local_addr()?;
    // The portal is a client of the public API, reached over loopback like any frontend.
    let portal = mno_portal::router(mno_portal::PortalConfig {
        api_base: self_url(http_addr),
        frontend_key: Some(frontend_key),
        secure_cookies: config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
    });
    let operator = crate::operator::router(crate::operator::OperatorState {
        js: bus.js.clone(),
        hub: hub.router(),
        operators: operators.clone(),
    });
    let mut routers = vec![
        hub.router(),
        connec.router(),
        impac.router(),
        operator,
        portal,
    ];
    // The connectors' routes are served where the runtime runs.
    routers.extend(connectors.map(Connectors::router));
    let app = http::router(routers, edge);
    let router = app.clone();
    let (stop_http, stopped) = oneshot::channel::<()>();
    let limits = config.edge_limits();
    tracing::info!(
        %http_addr,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_connections_per_client,
        "serving HTTP"
    );
    let server = tokio::spawn(async move {
        crate::edge_server::serve(listener, app, limits, async {
            let _ = stopped.await;
        })
        .await;
        Ok(())
    });
    Ok((router, stop_http, server))
}

/// Listen on `addr`, the address `setting` names; a port in use is one clear line.
async fn bind(addr: SocketAddr, setting: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} ({e}); another process may hold it: stop it, or set {setting} to a free address"
        )
    })
}

/// MNO_NATS_URL when set (it must answer); else the installed nats-server as
/// a child of this process. A server that merely answers on the default port
/// is never joined: it may be another platform's (another `mno up` on this
/// machine), and sharing its durable consumers would split the events.
async fn connect_bus(config: &PlatformConfig) -> Result<(Bus, Option<ChildNats>)> {
    if let Some(url) = &config.nats_url {
        return Ok((bus::connect(url).await?, None));
    }
    // A child left running by a killed `mno up` must not run beside a new
    // child on the same store.
    if let Some(pid) = nats_child::stop_leftover(&config.data_dir).await? {
        tracing::info!(pid, "stopped the leftover nats-server; starting afresh");
    }
    let binary = nats_child::find_binary(config.nats_server_bin.as_deref())?;
    let child = ChildNats::start(&binary, &config.data_dir, true, config.nats_sync).await?;
    tracing::info!(url = %child.url, monitor = %child.monitor_url, "started nats-server child");
    let bus = bus::connect(&child.url).await?;
    Ok((bus, Some(child)))
}

/// The edge's URL as a client on this machine reaches it (an unspecified
/// listen address, such as 0.0.0.0, is reached on loopback).
fn self_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

impl RunningPlatform {
    /// The HTTP edge's URL; only a process with the `edge` role has one.
    pub fn base_url(&self) -> String {
        self_url(
            self.http_addr
                .expect("this process runs no HTTP edge (role edge)"),
        )
    }

    /// Binds `MNO_OPERATORS` to the accounts holding its emails, once the
    /// platform is up (and `mno up --demo` has signed its demo user up): an
    /// error when a listed email has no account (see [`OperatorList::bind`]).
    pub async fn bind_operators(&self) -> Result<()> {
        self.operators.bind(&self.db).await
    }

    /// Where the operator's metrics are: `http://<MNO_METRICS_ADDR>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// Stop in order: stop taking requests and finish those in flight, stop
    /// the parts (they finish and ack what they hold), flush the bus, close
    /// the database, then stop the child nats-server gracefully. Each step is
    /// bounded (see [`STOP_GRACE`]): a part waiting on a bus that is gone, or
    /// an SSE client that never hangs up, must not keep the process from
    /// stopping. What a part did not acknowledge is delivered again after the
    /// next start, and projections commit their checkpoint with their state.
    pub async fn shutdown(self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        // The inspection copy must not keep the parts' state alive past the server's.
        drop(self.router);
        if let Some(stop_http) = self.stop_http {
            let _ = stop_http.send(());
        }
        let _ = self.stop_metrics.send(());
        if let Some(server) = self.server {
            within(
                deadline,
                STEP_GRACE,
                "the HTTP server (requests in flight)",
                async {
                    match server.await {
                        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server ended with an error"),
                        Err(e) => tracing::warn!(error = %e, "HTTP server task ended abnormally"),
                        Ok(Ok(())) => {}
                    }
                },
            )
            .await;
        }
        let metrics_server = self.metrics_server;
        within(deadline, STEP_GRACE, "the metrics listener", async {
            let _ = metrics_server.await;
        })
        .await;
        if let Some(connectors) = self.connectors {
            within(
                deadline,
                STEP_GRACE,
                "the connectors",
                connectors.shutdown(),
            )
            .await;
        }
        within(deadline, STEP_GRACE, "Impac!", self.impac.shutdown()).await;
        within(deadline, STEP_GRACE, "Connec!", self.connec.shutdown()).await;
        within(deadline, STEP_GRACE, "the Hub", self.hub.shutdown()).await;
        let client = self.bus.client.clone();
        // Only the bus waits on the flush: it gets what is left, briefly at least.
        within(deadline, FLUSH_GRACE, "the bus flush", async {
            let _ = client.flush().await;
        })
        .await;
        self.db.close().await;
        // Free for a restart under the same name at once.
        within(
            deadline,
            STEP_GRACE,
            "the process's name",
            self.name.release(),
        )
        .await;
        if let Some(child) = self.child {
            child.stop().await?;
        }
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// How long a stop waits for the parts in all; each part gets at least
/// [`STEP_GRACE`] even when an earlier one used the time up, the final flush
/// at least [`FLUSH_GRACE`].
const STOP_GRACE: Duration = Duration::from_secs(10);
const STEP_GRACE: Duration = Duration::from_secs(2);
const FLUSH_GRACE: Duration = Duration::from_millis(500);

/// Run one step of a stop, abandoning it (with a warning naming it) when it
/// outlasts the deadline, or `at_least` from now if that is later.
async fn within(
    deadline: tokio::time::Instant,
    at_least: Duration,
    what: &str,
    step: impl std::future::Future<Output = ()>,
) {
    let until = deadline.max(tokio::time::Instant::now() + at_least);
    tracing::debug!("stopping {what}");
    if tokio::time::timeout_at(until, step).await.is_err() {
        tracing::warn!(
            "{what} did not stop in time (is the bus down?); leaving it: what it did not acknowledge is delivered again after the next start"
        );
    }
}
