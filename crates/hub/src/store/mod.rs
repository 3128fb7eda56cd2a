//! The Hub's SQL: migrations, write transactions that carry their outbox
//! events, and one module per table group.
//!
//! Every change goes through [`Store::begin_write`]: it takes the Hub's write
//! lock (in process, and the outbox counter row in SQL, so that ids increase
//! in commit order across processes too), and [`WriteTx::emit`] adds the Hub
//! event to the outbox in the same transaction. Commit, and the relay is woken.

pub mod apps;
pub mod installs;
pub mod invitations;
pub mod orgs;
pub mod outbox;
pub mod password_resets;
pub mod users;

use std::sync::Arc;

use mno_events::idm::HubChangeListener;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

pub use outbox::NewEvent;

/// Unix milliseconds, the time unit of every Hub table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Unix milliseconds as RFC 3339 (what the API shows).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new id: a UUIDv7 string, which is also a valid subject token.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The caches of this process told of each committed change.
type Listeners = Arc<std::sync::RwLock<Vec<Arc<dyn HubChangeListener>>>>;

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    write_lock: Arc<Mutex<()>>,
    outbox_written: Arc<Notify>,
    listeners: Listeners,
}

impl Store {
    /// Run the Hub's migrations (1000s) and return the store.
    pub async fn open(pool: AnyPool) -> anyhow::Result<Store> {
        let mut migrator = sqlx::migrate!("./migrations");
        // The other parts' migrations share the table; they are not ours to check.
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("Hub database migrations failed: {e}"))?;
        Ok(Store {
            pool,
            write_lock: Arc::new(Mutex::new(())),
            outbox_written: Arc::new(Notify::new()),
            listeners: Listeners::default(),
        })
    }

    /// Tell `listener` of every change committed from now on, before the
    /// change's caller is answered.
    pub fn add_change_listener(&self, listener: Arc<dyn HubChangeListener>) {
        self.listeners
            .write()
            .expect("no listener panics while registering")
            .push(listener);
    }

    /// Woken after every commit that wrote outbox rows.
    pub fn outbox_written(&self) -> Arc<Notify> {
        self.outbox_written.clone()
    }

    /// Start a write transaction holding the Hub's write lock.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let guard = self.write_lock.clone().lock_owned().await;
        let mut tx = self.pool.begin().await?;
        // Take the outbox counter's row lock first: on PostgreSQL this orders
        // Hub writers across processes; on SQLite it takes the write lock now
        // rather than failing to upgrade a read later.
        sqlx::query("UPDATE hub_counters SET value = value WHERE name = 'outbox'")
            .execute(&mut *tx)
            .await?;
        Ok(WriteTx {
            tx,
            changes: Vec::new(),
            notify: self.outbox_written.clone(),
            listeners: self.listeners.clone(),
            _guard: guard,
        })
    }
}

/// A write transaction; its events reach the outbox only if it commits.
pub struct WriteTx {
    pub tx: Transaction<'static, Any>,
    /// What each emitted event is about: (org, user id, app id).
    changes: Vec<(String, String, String)>,
    notify: Arc<Notify>,
    listeners: Listeners,
    _guard: OwnedMutexGuard<()>,
}

impl WriteTx {
    /// Add a Hub event to the outbox, in this transaction.
    pub async fn emit(&mut self, event: NewEvent) -> Result<i64, sqlx::Error> {
        let about = (
            event.org.clone(),
            event.user_id.clone(),
            event.app_id.clone(),
        );
        let id = outbox::append(&mut self.tx, event).await?;
        self.changes.push(about);
        Ok(id)
    }

    /// Commit; then this process's caches drop what the changes touch (before
    /// the caller answers), and the relay is woken to publish the events.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        if self.changes.is_empty() {
            return Ok(());
        }
        let listeners = self
            .listeners
            .read()
            .expect("no listener panics while registering")
            .clone();
        for (org, user, app) in &self.changes {
            let ids: Vec<&str> = [user.as_str(), app.as_str()]
                .into_iter()
                .filter(|id| !id.is_empty())
                .collect();
            for listener in &listeners {
                listener.hub_changed(org, &ids);
            }
        }
        self.notify.notify_one();
        Ok(())
    }
}

/// Whether a database error is a unique-constraint violation (a lost race on an insert).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .map(|e| e.is_unique_violation())
        .unwrap_or(false)
}
