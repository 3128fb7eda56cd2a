//! Receiving webhooks: verification per Standard Webhooks, de-duplication by
//! message id, typed payloads, and the answer mapping the app's own ids.
//!
//! A bad signature, a timestamp outside the tolerance or an id already handled
//! is refused by [`Receiver::receive`]: the app's handler never sees it.

mod dedup;
#[cfg(feature = "axum")]
mod extractor;
mod payload;
mod verify;

use std::sync::Arc;

use reqwest::header::HeaderMap;

pub use dedup::{Claim, MemoryStore, ReplayStore};
#[cfg(feature = "axum")]
pub use extractor::WebhookRejection;
pub use payload::{
    AccountEvent, AccountEventKind, DeliveredRecord, IdMapAnswer, Payload, RecordDelivery,
    WebhookMember,
};
pub use verify::{Verifier, WebhookError, DEFAULT_TOLERANCE};

/// Verifies, de-duplicates and parses webhooks. Cheap to clone; share one.
///
/// ```no_run
/// # async fn f(headers: reqwest::header::HeaderMap, body: Vec<u8>) -> Result<(), mno_sdk::webhooks::WebhookError> {
/// use mno_sdk::webhooks::{Payload, Receiver};
/// let receiver = Receiver::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])?;
/// let webhook = receiver.receive(&headers, &body).await?; // refused: never reaches the code below
/// if let Payload::Records(delivery) = webhook.payload() {
///     for (entity, record) in delivery.records() { /* apply */ }
/// }
/// webhook.done().await; // later copies of this id are refused as replays
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Receiver {
    verifier: Verifier,
    store: Arc<dyn ReplayStore>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A receiver for the app's secrets, remembering ids in a [`MemoryStore`].
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Receiver, WebhookError> {
        Ok(Receiver::with_parts(
            Verifier::new(secrets)?,
            Arc::new(MemoryStore::default()),
        ))
    }

    /// A receiver from a verifier and the app's own replay store.
    pub fn with_parts(verifier: Verifier, store: Arc<dyn ReplayStore>) -> Receiver {
        Receiver { verifier, store }
    }

    /// Verifies the headers and raw body, claims the message id, and parses
    /// the payload. Call [`Webhook::done`] once the app took it.
    pub async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Webhook, WebhookError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingHeader(name))
        };
        let id = header("webhook-id")?;
        self.verifier.verify(
            id,
            header("webhook-timestamp")?,
            header("webhook-signature")?,
            body,
        )?;
        let payload = Payload::parse(body)?;
        match self.store.claim(id).await {
            Claim::New => {}
            Claim::InFlight => return Err(WebhookError::InFlight(id.to_owned())),
            Claim::Done => return Err(WebhookError::Replayed(id.to_owned())),
        }
        Ok(Webhook {
            id: id.to_owned(),
            payload,
            claim: Some(ClaimGuard {
                id: id.to_owned(),
                store: self.store.clone(),
                completed: false,
            }),
        })
    }
}

/// A verified webhook seen for the first time.
#[derive(Debug)]
pub struct Webhook {
    id: String,
    payload: Payload,
    claim: Option<ClaimGuard>,
}

impl Webhook {
    /// The `webhook-id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it carries.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The app took the message: a copy of it is refused from now on.
    /// Dropping a `Webhook` without calling this releases its id, so that
    /// the platform's retry is handled (the app's handler failed).
    pub async fn done(mut self) {
        if let Some(mut claim) = self.claim.take() {
            claim.store.complete(&claim.id).await;
            claim.completed = true;
        }
    }
}

/// Releases a claim that was not completed.
struct ClaimGuard {
    id: String,
    store: Arc<dyn ReplayStore>,
    completed: bool,
}

impl std::fmt::Debug for ClaimGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimGuard").field("id", &self.id).finish()
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let (id, store) = (std::mem::take(&mut self.id), self.store.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { store.release(&id).await });
        }
    }
}
