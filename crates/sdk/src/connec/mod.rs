//! The Connec! record API: typed collections in the app's own ids, lists as
//! streams, batches and the change feed.

mod batch;
mod changes;
mod filter;
mod ids;
mod query;

use std::marker::PhantomData;
use std::sync::Arc;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use batch::{Batch, BatchOpResult, BatchResult};
pub use changes::{Change, ChangeCursor, ChangeFeed, ChangeSource};
pub use filter::{Field, Filter, FilterValue};
pub use ids::{ExternalId, Ids};
pub use query::{Order, Page, Query};

use crate::error::{Error, Result};
use crate::transport::{Call, Transport};

/// Asks for `id` and reference fields as external-id arrays (the app's own ids included).
const EXTERNAL_IDS: &str = "connec-external-ids";

/// The Connec! client. Get one from [`crate::Mno::connec`].
#[derive(Debug, Clone)]
pub struct Connec {
    pub(crate) transport: Arc<Transport>,
}

impl Connec {
    /// A typed view of one collection of one org (`people`, `invoices`, ...).
    ///
    /// `T` holds the fields the app cares about; it is read from each record
    /// beside the platform's own (`id`, `version`, ...), so unknown fields are
    /// ignored unless `T` keeps them (a `#[serde(flatten)] Map`).
    pub fn collection<T>(&self, org: &str, entity: &str) -> Collection<T> {
        Collection {
            transport: self.transport.clone(),
            org: org.to_owned(),
            entity: entity.to_owned(),
            fields: PhantomData,
        }
    }

    /// Sends a batch of operations (`POST /connec/batch`) under one idempotency key.
    pub async fn batch(&self, batch: &Batch) -> Result<BatchResult> {
        self.batch_with_key(batch, None).await
    }

    /// As [`Connec::batch`], with the app's own idempotency key (kept 24 hours):
    /// a batch sent again under it is stored once.
    pub async fn batch_with_key(&self, batch: &Batch, key: Option<&str>) -> Result<BatchResult> {
        let call = Call::new(Method::POST, "/connec/batch")
            .header(EXTERNAL_IDS, "true")
            .json(batch)?
            .idempotent(key.map(str::to_owned));
        self.transport.send(&call).await?.json()
    }

    /// The org's change feed from `cursor` on (see [`ChangeFeed`]).
    pub fn changes(&self, org: &str, cursor: ChangeCursor) -> ChangeFeed {
        ChangeFeed::new(self.transport.clone(), org, cursor)
    }
}

/// A record as the platform answers it: its ids, version and timestamps
/// beside the app's typed fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record<T> {
    /// Every known id of the record (the global one and the apps' own).
    pub id: Ids,
    /// 1 on create, +1 per change: the value for `If-Match`.
    pub version: u64,
    /// The org.
    #[serde(default)]
    pub group_id: String,
    /// The collection.
    #[serde(default)]
    pub resource_type: String,
    /// When the record was created (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// True for a deleted record (lists with `include_deleted`, the change feed).
    #[serde(default)]
    pub deleted: bool,
    /// The app's fields.
    #[serde(flatten)]
    pub fields: T,
}

/// One collection of one org, typed by `T`. Every id the methods take may be
/// the app's own id (as the app created or mapped the record) or the global id.
#[derive(Debug)]
pub struct Collection<T> {
    transport: Arc<Transport>,
    org: String,
    entity: String,
    fields: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            transport: self.transport.clone(),
            org: self.org.clone(),
            entity: self.entity.clone(),
            fields: PhantomData,
        }
    }
}

/// Options of one write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `If-Match`: write only if the record is at this version, else
    /// [`Error::StaleVersion`].
    pub if_match: Option<u64>,
    /// The idempotency key (a random one when `None`); the same key sent again
    /// with the same request stores the write once.
    pub idempotency_key: Option<String>,
}

impl WriteOptions {
    /// Only if the record is at `version`.
    pub fn if_match(version: u64) -> WriteOptions {
        WriteOptions {
            if_match: Some(version),
            ..WriteOptions::default()
        }
    }

    /// Under the app's own idempotency key.
    pub fn idempotency_key(key: &str) -> WriteOptions {
        WriteOptions {
            idempotency_key: Some(key.to_owned()),
            ..WriteOptions::default()
        }
    }
}

impl<T: Serialize + DeserializeOwned> Collection<T> {
    /// The org this collection belongs to.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The collection's name.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    fn path(&self, id: Option<&str>) -> String {
        let mut path = format!(
            "/connec/api/v2/{}/{}",
            segment(&self.org),
            segment(&self.entity)
        );
        if let Some(id) = id {
            path.push('/');
            path.push_str(&segment(id));
        }
        path
    }

    fn call(&self, method: Method, id: Option<&str>) -> Call {
        Call::new(method, self.path(id)).header(EXTERNAL_IDS, "true")
    }

    async fn write(&self, call: Call, options: &WriteOptions) -> Result<Record<T>> {
        let mut call = call.idempotent(options.idempotency_key.clone());
        if let Some(version) = options.if_match {
            call = call.header("if-match", version.to_string());
        }
        let answer = self.transport.send(&call).await?;
        self.unwrap(answer.json()?)
    }

    /// Takes the record out of `{"<entity>": {...}}`.
    fn unwrap(&self, mut body: Value) -> Result<Record<T>> {
        let record = body
            .get_mut(&self.entity)
            .map(Value::take)
            .ok_or_else(|| Error::Decode(format!("no {:?} in the answer", self.entity)))?;
        serde_json::from_value(record).map_err(|e| Error::Decode(e.to_string()))
    }

    fn wrap(&self, fields: Value) -> Value {
        let mut body = Map::new();
        body.insert(self.entity.clone(), fields);
        Value::Object(body)
    }

    /// Creates a record the app knows as `local_id` (`201`).
    ///
    /// ```no_run
    /// # async fn f(mno: mno_sdk::Mno, org: &str) -> mno_sdk::Result<()> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Person { first_name: String, last_name: String }
    /// let people = mno.connec().collection::<Person>(org, "people");
    /// let ann = people.create("crm-17", &Person { first_name: "Ann".into(), last_name: "Lee".into() }).await?;
    /// assert_eq!(ann.version, 1);
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, local_id: &str, fields: &T) -> Result<Record<T>> {
        self.create_with(local_id, fields, &WriteOptions::default())
            .await
    }

    /// As [`Collection::create`], with options (an idempotency key of the app's).
    pub async fn create_with(
        &self,
        local_id: &str,
        fields: &T,
        options: &WriteOptions,
    ) -> Result<Record<T>> {
        let mut value = to_object(fields)?;
        value.insert("id".into(), Value::String(local_id.to_owned()));
        let call = self
            .call(Method::POST, None)
            .json(&self.wrap(Value::Object(value)))?;
        self.write(call, options).await
    }

    /// Reads one record.
    pub async fn get(&self, id: &str) -> Result<Record<T>> {
        let answer = self
            .transport
            .send(&self.call(Method::GET, Some(id)))
            .await?;
        self.unwrap(answer.json()?)
    }

    /// Updates the fields present in `patch` (others are kept; `null` clears one).
    /// With [`WriteOptions::if_match`], a record changed since answers
    /// [`Error::StaleVersion`] and nothing is written.
    ///
    /// ```no_run
    /// # async fn f(people: mno_sdk::connec::Collection<serde_json::Value>) -> mno_sdk::Result<()> {
    /// use mno_sdk::connec::WriteOptions;
    /// let ann = people.get("crm-17").await?;
    /// match people.update("crm-17", &serde_json::json!({"title": "CEO"}), &WriteOptions::if_match(ann.version)).await {
    ///     Err(mno_sdk::Error::StaleVersion { current, .. }) => println!("changed meanwhile, now at {current:?}"),
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn update<P: Serialize + ?Sized>(
        &self,
        id: &str,
        patch: &P,
        options: &WriteOptions,
    ) -> Result<Record<T>> {
        let patch = Value::Object(to_object(patch)?);
        let call = self.call(Method::PUT, Some(id)).json(&self.wrap(patch))?;
        self.write(call, options).await
    }

    /// Deletes a record; the answer carries its last state.
    pub async fn delete(&self, id: &str, options: &WriteOptions) -> Result<Record<T>> {
        self.write(self.call(Method::DELETE, Some(id)), options)
            .await
    }

    /// Tells the platform the app's own id of a record it received (the
    /// `id_map` route): later deliveries and URLs use it.
    pub async fn map_id(&self, connec_id: &str, local_id: &str) -> Result<()> {
        let call = Call::new(
            Method::PUT,
            format!("{}/id_map", self.path(Some(connec_id))),
        )
        .json(&serde_json::json!({ "local_id": local_id }))?
        .idempotent(None);
        self.transport.send(&call).await?;
        Ok(())
    }

    /// One page of a list (`$filter`, `$orderby`, `$top`, `$skip`).
    pub async fn page(&self, query: &Query) -> Result<Page<T>> {
        let mut call = self.call(Method::GET, None);
        call.query = query.params()?;
        let answer = self.transport.send(&call).await?;
        Page::from_answer(&self.entity, answer.json()?)
    }

    /// Every record matching `query`, page after page (following `links.next`),
    /// as a stream.
    ///
    /// ```no_run
    /// # async fn f(people: mno_sdk::connec::Collection<serde_json::Value>) -> mno_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// use mno_sdk::connec::{Filter, Query};
    /// let leads = Query::new().filter(Filter::field("is_lead").eq(true)).top(200);
    /// let mut stream = std::pin::pin!(people.list(leads));
    /// while let Some(person) = stream.try_next().await? {
    ///     println!("{:?}", person.id.any());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(&self, query: Query) -> impl futures::Stream<Item = Result<Record<T>>> + '_ {
        query::list_stream(self, query)
    }
}

/// Serialises `value` as a JSON object (a record's fields).
fn to_object<P: Serialize + ?Sized>(value: &P) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::Decode(format!(
            "record fields must serialise to a JSON object, not {other}"
        ))),
        Err(e) => Err(Error::Decode(e.to_string())),
    }
}

/// Percent-encodes one path segment (an id may hold `/`, `?` or spaces).
pub(crate) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
