//! De-duplication by `webhook-id`: a message id is claimed before the app's
//! handler runs, marked done after it succeeded, and released when it failed
//! (so that the platform's retry is let through).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What a store knows of a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sighting: the caller now holds it.
    New,
    /// Another request is handling it now.
    InFlight,
    /// It was handled already.
    Done,
}

/// Where handled message ids are kept. The default, [`MemoryStore`], is
/// bounded and per process; an app with several processes keeps them in its
/// database instead (a unique key on the id).
#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Claims `id` for handling.
    async fn claim(&self, id: &str) -> Claim;
    /// The handler took the message: later copies are [`Claim::Done`].
    async fn complete(&self, id: &str);
    /// The handler failed: forget the claim so that a retry is handled.
    async fn release(&self, id: &str);
}

/// An in-memory [`ReplayStore`] holding the last `capacity` ids.
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    states: HashMap<String, Claim>,
    order: VecDeque<String>,
}

impl MemoryStore {
    /// Keeps at most `capacity` ids (the oldest are forgotten first); 100 000 is a good start.
    pub fn new(capacity: usize) -> MemoryStore {
        MemoryStore {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-changed: every change is one call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new(100_000)
    }
}

#[async_trait::async_trait]
impl ReplayStore for MemoryStore {
    async fn claim(&self, id: &str) -> Claim {
        let mut inner = self.lock();
        if let Some(state) = inner.states.get(id) {
            return if *state == Claim::New {
                Claim::InFlight
            } else {
                Claim::Done
            };
        }
        while inner.order.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(oldest) => {
                    inner.states.remove(&oldest);
                }
                None => break,
            }
        }
        inner.states.insert(id.to_owned(), Claim::New);
        inner.order.push_back(id.to_owned());
        Claim::New
    }

    async fn complete(&self, id: &str) {
        if let Some(state) = self.lock().states.get_mut(id) {
            *state = Claim::Done;
        }
    }

    async fn release(&self, id: &str) {
        let mut inner = self.lock();
        inner.states.remove(id);
        inner.order.retain(|other| other != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claims_complete_release_and_stay_bounded() {
        let store = MemoryStore::new(2);
        assert_eq!(store.claim("a").await, Claim::New);
        assert_eq!(store.claim("a").await, Claim::InFlight);
        store.complete("a").await;
        assert_eq!(store.claim("a").await, Claim::Done);
        assert_eq!(store.claim("b").await, Claim::New);
        store.release("b").await;
        assert_eq!(store.claim("b").await, Claim::New);
        assert_eq!(store.claim("c").await, Claim::New);
        // "a" was the oldest of three: forgotten.
        assert_eq!(store.claim("a").await, Claim::New);
    }
}
