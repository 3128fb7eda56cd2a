//! Which delivering process sends each app's webhooks.
//!
//! Each app's consumer and worker run in one process at a time: the holder of
//! the app's lease (`delivery.<app>` in the bus's lease bucket). Every
//! delivering process also holds a membership lease (`members.delivery.<id>`),
//! so each knows how many share the work and takes at most its fair share
//! (the apps divided by the members, rounded up). A process that dies stops
//! renewing: its leases expire after [`lease::TTL`] and the others take its
//! apps on their next look ([`LOOK_EVERY`]); a process that holds more than
//! its share (one joined) stops and releases the extra apps, which the
//! newcomer takes. A new owner restarts the app's consumer from the first
//! change not acknowledged (see the supervisor), so per-record order holds
//! across a take-over; changes in flight at the crash come again (at least once).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use mno_events::lease::{self, Held, Leases};
use sha2::Digest;
use tokio::time::Instant;

/// How often a delivering process renews its leases and looks for apps
/// without an owner.
pub const LOOK_EVERY: Duration = lease::RENEW_EVERY;

const APP_PREFIX: &str = "delivery.";
const MEMBER_PREFIX: &str = "members.delivery.";

/// The app's lease name.
pub fn lease_name(app_id: &str) -> String {
    format!("{APP_PREFIX}{app_id}")
}

/// This process's share of the apps.
pub struct Ownership {
    leases: Leases,
    member_key: String,
    member: Mutex<Option<(Held, Instant)>>,
    apps: Mutex<HashMap<String, (Held, Instant)>>,
    /// Apps divided by members, rounded up; recomputed on each look and sync.
    share: AtomicUsize,
    /// Delivering processes, as of the last look.
    members: AtomicUsize,
}

/// What a look found to do.
#[derive(Debug, Default)]
pub struct Look {
    /// Leases lost (expired and taken, or not renewed in time): stop these workers.
    pub lost: Vec<String>,
    /// Held above this process's share: stop these workers, then release.
    pub surplus: Vec<String>,
    /// Subscribed apps no process holds: try to take them.
    pub unowned: Vec<String>,
}

impl Ownership {
    pub fn new(leases: Leases) -> Ownership {
        let id = sha2::Sha256::digest(leases.holder().as_bytes());
        let member_key = format!(
            "{MEMBER_PREFIX}{}",
            id.iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ownership {
            leases,
            member_key,
            member: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
            share: AtomicUsize::new(usize::MAX),
            members: AtomicUsize::new(1),
        }
    }

    /// Recompute the share for `subscribed` apps (the members as last counted).
    pub fn reshare(&self, subscribed: usize) {
        let members = self.members.load(Ordering::Relaxed).max(1);
        self.share
            .store(subscribed.div_ceil(members).max(1), Ordering::Relaxed);
    }

    pub fn holds(&self, app_id: &str) -> bool {
        self.apps.lock().expect("not poisoned").contains_key(app_id)
    }

    fn held_count(&self) -> usize {
        self.apps.lock().expect("not poisoned").len()
    }

    /// Take the app's lease if this process is under its share and no other holds it.
    pub async fn try_take(&self, app_id: &str) -> bool {
        if self.held_count() >= self.share.load(Ordering::Relaxed) {
            return false;
        }
        match self.leases.try_acquire(&lease_name(app_id)).await {
            Ok(Some(held)) => {
                tracing::info!(
                    app = app_id,
                    token = held.token,
                    "delivery: this process now delivers to the app"
                );
                self.apps
                    .lock()
                    .expect("not poisoned")
                    .insert(app_id.to_owned(), (held, Instant::now()));
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(app = app_id, error = %e, "delivery: app lease not taken");
                false
            }
        }
    }

    /// Give the app up (its worker is stopped already), so another process takes it at once.
    pub async fn release(&self, app_id: &str) {
        let held = self.apps.lock().expect("not poisoned").remove(app_id);
        if let Some((held, _)) = held {
            self.leases.release(held).await;
        }
    }

    /// Release every lease (at shutdown, after the workers stopped).
    pub async fn release_all(&self) {
        let apps: Vec<String> = self
            .apps
            .lock()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect();
        for app in apps {
            self.release(&app).await;
        }
        let member = self.member.lock().expect("not poisoned").take();
        if let Some((held, _)) = member {
            self.leases.release(held).await;
        }
    }

    /// Renew the membership and every app lease; recompute the share from
    /// `subscribed` (the apps that receive webhooks); say what to do.
    pub async fn look(&self, subscribed: &HashSet<String>) -> Look {
        let mut look = Look::default();
        self.renew_membership().await;
        let held: Vec<(String, Held, Instant)> = self
            .apps
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(app, (held, at))| (app.clone(), held.clone(), *at))
            .collect();
        for (app, mut held, renewed_at) in held {
            let kept = match self.leases.renew(&mut held).await {
                Ok(true) => Some((held, Instant::now())),
                Ok(false) => None,
                // Unsure: ours only until it may have expired.
                Err(_) if renewed_at.elapsed() + LOOK_EVERY < lease::TTL => {
                    Some((held, renewed_at))
                }
                Err(_) => None,
            };
            let mut apps = self.apps.lock().expect("not poisoned");
            match kept {
                Some(kept) => {
                    apps.insert(app, kept);
                }
                None => {
                    tracing::warn!(app = %app, "delivery: app lease lost (taken by another process, or not renewed in time while the bus did not answer); delivery to it stops here until the lease is held again");
                    apps.remove(&app);
                    look.lost.push(app);
                }
            }
        }
        let Ok(keys) = self.leases.keys_under("").await else {
            return look;
        };
        let members = keys
            .iter()
            .filter(|k| k.starts_with(MEMBER_PREFIX))
            .count()
            .max(1);
        let owned: HashSet<&str> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(APP_PREFIX))
            .collect();
        self.members.store(members, Ordering::Relaxed);
        self.reshare(subscribed.len());
        let share = self.share.load(Ordering::Relaxed);
        let mine: Vec<String> = {
            let apps = self.apps.lock().expect("not poisoned");
            let mut mine: Vec<String> = apps.keys().cloned().collect();
            mine.sort();
            mine
        };
        if mine.len() > share {
            look.surplus = mine[share..].to_vec();
        }
        look.unowned = subscribed
            .iter()
            .filter(|app| !owned.contains(app.as_str()))
            .cloned()
            .collect();
        look.unowned.sort();
        look
    }

    async fn renew_membership(&self) {
        let current = self.member.lock().expect("not poisoned").take();
        let renewed = match current {
            Some((mut held, at)) => match self.leases.renew(&mut held).await {
                Ok(true) => Some((held, Instant::now())),
                Err(_) if at.elapsed() + LOOK_EVERY < lease::TTL => Some((held, at)),
                _ => None,
            },
            None => None,
        };
        let renewed = match renewed {
            Some(renewed) => Some(renewed),
            None => match self.leases.try_acquire(&self.member_key).await {
                Ok(Some(held)) => Some((held, Instant::now())),
                _ => None,
            },
        };
        *self.member.lock().expect("not poisoned") = renewed;
    }
}
