//! The change feed: every change of an org's records after a cursor the app
//! keeps, as a stream. A pull alternative to webhooks that never misses a delete.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::segment;
use crate::error::{Error, Result};
use crate::transport::{Call, Transport};

/// Where the feed continues: the stream position of the last change taken.
/// Persist it (`to_string`) with what the app applied; resume with `parse`.
///
/// ```
/// use mno_sdk::connec::ChangeCursor;
/// let cursor: ChangeCursor = "42".parse().unwrap();
/// assert_eq!(cursor.to_string(), "42");
/// assert_eq!(ChangeCursor::START.to_string(), "0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChangeCursor(pub u64);

impl ChangeCursor {
    /// From the first change the org ever had.
    pub const START: ChangeCursor = ChangeCursor(0);
}

impl std::fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for ChangeCursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<ChangeCursor> {
        s.trim()
            .parse()
            .map(ChangeCursor)
            .map_err(|_| Error::Config(format!("change cursor {s:?}: a whole number is expected")))
    }
}

/// Which app made a change, and its own id of the record.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangeSource {
    /// The app (empty for a user's change).
    #[serde(default)]
    pub app_id: String,
    /// That app's id of the record.
    #[serde(default)]
    pub local_id: String,
}

/// One change of a record.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    /// Its position in the feed.
    pub seq: u64,
    /// The event's id (UUIDv7).
    #[serde(default)]
    pub event_id: String,
    /// The collection.
    pub entity: String,
    /// The record's global id.
    pub id: String,
    /// `created`, `updated`, `deleted`, `id_mapped` or `merged`.
    pub op: String,
    /// The record's version after the change.
    pub version: u64,
    /// Who made it.
    #[serde(default)]
    pub source: ChangeSource,
    /// Top-level fields the change touched.
    #[serde(default)]
    pub changed_fields: Vec<String>,
    /// The record's state after the change (its last state for a delete).
    #[serde(default)]
    pub record: Value,
}

impl Change {
    /// The cursor to persist once this change is applied.
    pub fn cursor(&self) -> ChangeCursor {
        ChangeCursor(self.seq)
    }

    /// True for a delete.
    pub fn is_delete(&self) -> bool {
        self.op == "deleted"
    }

    /// The record's state read as `T`.
    pub fn record_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.record.clone()).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// A change feed being read: `GET /connec/api/v2/{org}/changes`.
///
/// ```no_run
/// # async fn f(mno: mno_sdk::Mno, org: &str, saved: &str) -> mno_sdk::Result<()> {
/// use futures::TryStreamExt;
/// use mno_sdk::connec::ChangeCursor;
/// let feed = mno.connec().changes(org, saved.parse()?).entities(&["people"]).skip_own_changes();
/// let mut changes = std::pin::pin!(feed.stream());
/// while let Some(change) = changes.try_next().await? {
///     // apply `change.record`, then persist `change.cursor().to_string()`
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    transport: Arc<Transport>,
    org: String,
    cursor: ChangeCursor,
    entities: Vec<String>,
    limit: u32,
    follow: Option<Duration>,
    skip_app: Option<String>,
}

impl ChangeFeed {
    pub(crate) fn new(transport: Arc<Transport>, org: &str, cursor: ChangeCursor) -> ChangeFeed {
        ChangeFeed {
            transport,
            org: org.to_owned(),
            cursor,
            entities: Vec::new(),
            limit: 100,
            follow: None,
            skip_app: None,
        }
    }

    /// Only these collections (all the app may read when not called).
    pub fn entities(mut self, entities: &[&str]) -> ChangeFeed {
        self.entities = entities.iter().map(|e| (*e).to_owned()).collect();
        self
    }

    /// Changes per request (at most 1000).
    pub fn page_size(mut self, limit: u32) -> ChangeFeed {
        self.limit = limit;
        self
    }

    /// Keep waiting for new changes, asking every `interval`, instead of
    /// ending once caught up.
    pub fn follow(mut self, interval: Duration) -> ChangeFeed {
        self.follow = Some(interval);
        self
    }

    /// Leaves out the changes this app made itself (needs [`crate::Config::app_id`]);
    /// they still move the cursor.
    pub fn skip_own_changes(mut self) -> ChangeFeed {
        self.skip_app = self.transport.config.app_id.clone();
        self
    }

    /// One page after `since`: the changes and the cursor after them.
    pub async fn fetch(&self, since: ChangeCursor) -> Result<(Vec<Change>, ChangeCursor)> {
        #[derive(Deserialize)]
        struct Answer {
            changes: Vec<Change>,
            next: String,
        }
        let mut call = Call::new(
            Method::GET,
            format!("/connec/api/v2/{}/changes", segment(&self.org)),
        )
        .query("since", since.to_string())
        .query("limit", self.limit.to_string());
        if !self.entities.is_empty() {
            call = call.query("entities", self.entities.join(","));
        }
        let answer: Answer = self.transport.send(&call).await?.json()?;
        Ok((answer.changes, answer.next.parse()?))
    }

    /// The changes after the cursor, in order; it ends once caught up unless
    /// [`ChangeFeed::follow`] was set.
    pub fn stream(self) -> impl futures::Stream<Item = Result<Change>> {
        let state = FeedState {
            cursor: self.cursor,
            feed: self,
            buffered: VecDeque::new(),
        };
        futures::stream::try_unfold(state, FeedState::next)
    }
}

/// A feed being streamed: the changes fetched and not yet taken.
struct FeedState {
    feed: ChangeFeed,
    buffered: VecDeque<Change>,
    cursor: ChangeCursor,
}

impl FeedState {
    async fn next(mut self) -> Result<Option<(Change, FeedState)>> {
        loop {
            if let Some(change) = self.buffered.pop_front() {
                return Ok(Some((change, self)));
            }
            let (changes, next) = self.feed.fetch(self.cursor).await?;
            let caught_up = changes.is_empty();
            self.cursor = next;
            let skip = self.feed.skip_app.as_deref();
            self.buffered.extend(
                changes
                    .into_iter()
                    .filter(|c| skip != Some(c.source.app_id.as_str())),
            );
            if caught_up {
                match self.feed.follow {
                    Some(interval) => tokio::time::sleep(interval).await,
                    None => return Ok(None),
                }
            }
        }
    }
}
