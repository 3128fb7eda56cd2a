//! The IDM check: may this credential do this action on this org's entity?
//!
//! The Hub answers it (in process in `mno up`, or on NATS request-reply at
//! [`IDM_SUBJECT`] when parts run apart). Connec! and Impac! only ever see the
//! [`Idm`] trait, wired by the gateway, so no part depends on another.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// NATS request-reply subject of the check; the body is an [`IdmRequest`] as
/// JSON whose credential is hashed ([`hashed_for_wire`]); the reply an [`IdmReply`].
pub const IDM_SUBJECT: &str = "mno.idm.v1.check";

/// What the caller presented.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credential {
    /// A user's session token (HTTP `Authorization: Bearer <token>`).
    Session { token: String },
    /// An app's API key and secret (HTTP Basic `key:secret`).
    App { key: String, secret: String },
}

// Never print a secret, not even in debug logs.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { .. } => f.write_str("Session { token: <redacted> }"),
            Credential::App { key, .. } => write!(f, "App {{ key: {key:?}, secret: <redacted> }}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdmRequest {
    pub credential: Credential,
    /// The organisation whose data is asked for.
    pub org: String,
    /// The collection ("invoices"); `None` asks about the org as a whole (membership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    App,
}

/// Who the credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// User id or app id.
    pub id: String,
    pub name: String,
    /// The user's role in the org (member, power_user, admin, super_admin), if a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdmDecision {
    pub allow: bool,
    /// `None` when the credential itself is not valid (answer 401); `Some` with
    /// `allow: false` when it is valid but not allowed (answer 403 or 404).
    pub principal: Option<Principal>,
    /// Why, in words an API client can act on.
    pub reason: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IdmError {
    #[error("the identity service did not answer: {0}; retry shortly")]
    Unavailable(String),
}

#[async_trait]
pub trait Idm: Send + Sync + 'static {
    async fn check(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError>;
}

// ---------------------------------------------------------------------------
// Over NATS: the reply shape, and a client for parts that run apart.
// ---------------------------------------------------------------------------

/// Prefix of a token or secret hashed for the wire: `sha256:<hex>`.
pub const HASHED_PREFIX: &str = "sha256:";

/// The credential with its token or secret replaced by `sha256:<hex of SHA-256>`.
/// [`NatsIdm`] sends this, so no secret travels on the bus or shows in a NATS
/// trace; the Hub compares it with the hash it stores.
pub fn hashed_for_wire(credential: &Credential) -> Credential {
    use sha2::{Digest, Sha256};
    let hash = |secret: &str| {
        let digest = Sha256::digest(secret.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{HASHED_PREFIX}{hex}")
    };
    match credential {
        Credential::Session { token } => Credential::Session { token: hash(token) },
        Credential::App { key, secret } => Credential::App {
            key: key.clone(),
            secret: hash(secret),
        },
    }
}

/// The body of a reply on [`IDM_SUBJECT`]: `{"decision": {...}}` or `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdmReply {
    Decision(IdmDecision),
    Error(String),
}

/// The IDM check asked over NATS request-reply (the Hub answers it).
#[derive(Clone)]
pub struct NatsIdm {
    client: async_nats::Client,
    timeout: std::time::Duration,
}

impl NatsIdm {
    pub fn new(client: async_nats::Client) -> Self {
        Self {
            client,
            timeout: std::time::Duration::from_secs(3),
        }
    }

    /// How long to wait for the Hub's answer (default 3 s).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl Idm for NatsIdm {
    async fn check(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError> {
        let on_the_wire = IdmRequest {
            credential: hashed_for_wire(&request.credential),
            ..request.clone()
        };
        let body = serde_json::to_vec(&on_the_wire).expect("an IdmRequest always serialises");
        let reply =
            tokio::time::timeout(self.timeout, self.client.request(IDM_SUBJECT, body.into()))
                .await
                .map_err(|_| {
                    IdmError::Unavailable(format!(
                        "no answer on {IDM_SUBJECT} within {:?}",
                        self.timeout
                    ))
                })?
                .map_err(|e| {
                    IdmError::Unavailable(format!("request on {IDM_SUBJECT} failed: {e}"))
                })?;
        match serde_json::from_slice::<IdmReply>(&reply.payload) {
            Ok(IdmReply::Decision(decision)) => Ok(decision),
            Ok(IdmReply::Error(reason)) => Err(IdmError::Unavailable(reason)),
            Err(e) => Err(IdmError::Unavailable(format!(
                "the answer on {IDM_SUBJECT} is not an IdmReply: {e}"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------
// A cache of decisions, dropped on the matching Hub event.
// ---------------------------------------------------------------------------

/// Caches decisions of another [`Idm`] and drops them when a Hub event says
/// they may have changed, so a removed member or a revoked install loses
/// access as soon as the event is published (milliseconds), not at a TTL.
///
/// It listens on core NATS `hub.>` (every Hub event is also seen there when the
/// outbox relay publishes it to stream HUB). An event for org X drops every
/// decision about X; an event naming a user or an app drops every decision of
/// that principal. Events missed while disconnected are covered by clearing
/// everything on reconnect, and by `max_age` as a last resort.
/// Decisions on invalid credentials are not cached.
pub struct CachingIdm {
    inner: std::sync::Arc<dyn Idm>,
    cache: std::sync::Arc<DecisionCache>,
    max_age: std::time::Duration,
    listener: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct DecisionCache {
    entries: dashmap::DashMap<IdmRequest, (IdmDecision, std::time::Instant)>,
    /// Bumped by every invalidation; a check started before one does not store its answer.
    generation: std::sync::atomic::AtomicU64,
}

impl DecisionCache {
    fn invalidate(&self, org: &str, principal_ids: &[&str]) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let platform = org == crate::subject::PLATFORM_ORG;
        self.entries.retain(|request, (decision, _)| {
            let same_org = !platform && request.org == org;
            let same_principal = decision
                .principal
                .as_ref()
                .is_some_and(|p| principal_ids.contains(&p.id.as_str()));
            !(same_org || same_principal)
        });
    }

    fn clear(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.entries.clear();
    }
}

/// Told of each Hub change by the process that made it, after the change is
/// committed and before its caller is answered: so in one process a sign-out,
/// an uninstall, a removed member or a lowered role is in force in every cache
/// by the time the call that made it returns (other processes learn it from
/// the Hub event, milliseconds later).
pub trait HubChangeListener: Send + Sync {
    /// A change about `org` (or the platform) and the user and app ids it names.
    fn hub_changed(&self, org: &str, principal_ids: &[&str]);
}

impl HubChangeListener for DecisionCache {
    fn hub_changed(&self, org: &str, principal_ids: &[&str]) {
        self.invalidate(org, principal_ids);
    }
}

impl CachingIdm {
    /// Default last-resort lifetime of a cached decision.
    pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

    /// Subscribe to Hub events (before returning, so none is missed after) and
    /// wrap `inner`.
    pub async fn start(
        inner: std::sync::Arc<dyn Idm>,
        client: async_nats::Client,
        max_age: std::time::Duration,
    ) -> Result<CachingIdm, async_nats::SubscribeError> {
        use futures::StreamExt;
        let mut events = client.subscribe(crate::subject::HubSubject::all()).await?;
        // Make sure the server registered the subscription before we serve.
        let _ = client.flush().await;
        let cache = std::sync::Arc::new(DecisionCache::default());
        let listener = {
            let cache = cache.clone();
            let stats = client.statistics();
            tokio::spawn(async move {
                let connects = || stats.connects.load(std::sync::atomic::Ordering::Relaxed);
                let mut seen_connects = connects();
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
                loop {
                    tokio::select! {
                        message = events.next() => {
                            let Some(message) = message else {
                                cache.clear();
                                return;
                            };
                            match crate::proto::HubEvent::from_bytes(&message.payload) {
                                Ok(event) => {
                                    let ids: Vec<&str> = [event.user_id.as_str(), event.app_id.as_str()]
                                        .into_iter()
                                        .filter(|id| !id.is_empty())
                                        .collect();
                                    cache.invalidate(&event.org, &ids);
                                }
                                // Not ours to read: be safe.
                                Err(_) => cache.clear(),
                            }
                        }
                        _ = tick.tick() => {
                            // A reconnect may have lost events: forget everything.
                            let now = connects();
                            if now != seen_connects {
                                seen_connects = now;
                                cache.clear();
                            }
                        }
                    }
                }
            })
        };
        Ok(CachingIdm {
            inner,
            cache,
            max_age,
            listener,
        })
    }

    /// This cache as a listener of the Hub's changes made in this process.
    pub fn change_listener(&self) -> std::sync::Arc<dyn HubChangeListener> {
        self.cache.clone()
    }

    /// How many decisions are cached (for metrics and tests).
    pub fn cached(&self) -> usize {
        self.cache.entries.len()
    }
}

impl Drop for CachingIdm {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait]
impl Idm for CachingIdm {
    async fn check(&self, request: &IdmRequest) -> Result<IdmDecision, IdmError> {
        if let Some(entry) = self.cache.entries.get(request) {
            let (decision, at) = entry.value();
            if at.elapsed() < self.max_age {
                return Ok(decision.clone());
            }
        }
        let generation = self
            .cache
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let decision = self.inner.check(request).await?;
        if decision.principal.is_some() {
            self.cache.entries.insert(
                request.clone(),
                (decision.clone(), std::time::Instant::now()),
            );
            // An invalidation since we asked may have missed this entry: undo.
            // (Invalidations bump the generation before they sweep.)
            let now = self
                .cache
                .generation
                .load(std::sync::atomic::Ordering::SeqCst);
            if now != generation {
                self.cache.entries.remove(request);
            }
        }
        Ok(decision)
    }
}
