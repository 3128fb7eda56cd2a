//! Connector 2: any JSON REST API, described by a mapping file ([`mapping`]).
//!
//! Each mapped collection is listed page by page. With an `updated_at_field`
//! the cursor is the latest time seen and older records are passed over; with
//! none, every record's tag is a hash of it, so the runtime sees a change as
//! a new tag, and a record missing from the complete listing as deleted.
//! Writes: `POST <path>`, `PATCH`/`PUT <path>/<id>`, `DELETE <path>/<id>`. A
//! conditional write first reads the record and compares its tag; an update
//! keeps the outside fields the mapping does not know ([`merge`]).

pub mod mapping;
pub mod merge;
pub mod values;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::outside::{
    failed, unreachable, CreateAttempt, Outside, OutsideError, OutsideRecord, Pulled,
};
use mapping::{Collection, Mapping, Pagination, UpdateMethod};

/// `settings` of a REST install.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestSettings {
    /// The API's base URL; collection paths are under it.
    pub url: String,
    /// The mapping file's text (TOML).
    pub mapping: String,
}

pub struct Rest {
    http: reqwest::Client,
    base: String,
    mapping: Mapping,
    /// The auth header, its placeholders filled.
    auth: Option<(String, String)>,
    /// The connector app's id: references in its view carry its ids under it.
    app_id: String,
}

impl Rest {
    /// `Err` names the settings field and what is wrong (a mapping error names its line).
    pub fn new(
        http: reqwest::Client,
        settings: RestSettings,
        credentials: &Value,
        app_id: &str,
    ) -> Result<Rest, (String, String)> {
        url::Url::parse(&settings.url).map_err(|e| {
            (
                "/settings/url".to_owned(),
                format!("{:?} is not a URL: {e}", settings.url),
            )
        })?;
        let mapping =
            mapping::parse(&settings.mapping).map_err(|e| ("/settings/mapping".to_owned(), e))?;
        let auth = match &mapping.auth {
            None => None,
            Some(auth) => Some((auth.header.clone(), fill(&auth.value, credentials)?)),
        };
        Ok(Rest {
            http,
            base: settings.url.trim_end_matches('/').to_owned(),
            mapping,
            auth,
            app_id: app_id.to_owned(),
        })
    }

    fn collection(&self, entity: &str) -> Result<&Collection, OutsideError> {
        self.mapping
            .collections
            .iter()
            .find(|c| c.entity == entity)
            .ok_or_else(|| OutsideError::Rejected {
                status: 400,
                body: format!("the mapping has no collection for {entity}"),
            })
    }

    fn request(&self, method: Method, url: String) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.auth {
            Some((name, value)) => request.header(name, value),
            None => request,
        }
    }

    fn item_url(&self, c: &Collection, id: &str) -> String {
        let segment: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("{}{}/{}", self.base, c.path, segment.replace('+', "%20"))
    }

    /// Send and read a JSON answer; `Ok(None)` for 404.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Option<Value>, OutsideError> {
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(failed(response).await);
        }
        let text = response.text().await.map_err(unreachable)?;
        if text.trim().is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_str(&text).map(Some).map_err(|e| {
            OutsideError::Garbage(format!("not JSON ({e}): {}", crate::outside::clip(&text)))
        })
    }

    /// Every record of a collection, page by page until an empty page: an
    /// API may cap its pages below the size asked, so a short page is not
    /// the last one (taking it so deleted the rest of the collection). With
    /// it, why the listing may lack records, if it may.
    async fn list(&self, c: &Collection) -> Result<(Vec<Value>, Option<String>), OutsideError> {
        let url = format!("{}{}", self.base, c.path);
        let mut all = Vec::new();
        let mut page = 1u64;
        let mut previous: Option<Vec<Value>> = None;
        // A numbered page shorter than the size asked, and how short; and
        // why the listing may have skipped records.
        let mut short_page: Option<(u64, usize)> = None;
        let mut uncertain: Option<String> = None;
        loop {
            let query = match &c.pagination {
                Pagination::None => Vec::new(),
                Pagination::Page {
                    page_param,
                    size_param,
                    size,
                } => vec![
                    (page_param.clone(), page.to_string()),
                    (size_param.clone(), size.to_string()),
                ],
                // The offset moves by what was received, not by what was asked.
                Pagination::Offset {
                    offset_param,
                    limit_param,
                    size,
                } => vec![
                    (offset_param.clone(), all.len().to_string()),
                    (limit_param.clone(), size.to_string()),
                ],
            };
            let answer = self
                .call(self.request(Method::GET, url.clone()).query(&query))
                .await?
                .ok_or_else(|| OutsideError::Rejected {
                    status: 404,
                    body: format!("{url} does not exist"),
                })?;
            let Value::Array(items) = answer else {
                return Err(OutsideError::Garbage(format!(
                    "{url} answered something else than a JSON array"
                )));
            };
            if items.is_empty() || matches!(c.pagination, Pagination::None) {
                all.extend(items);
                return Ok((all, uncertain));
            }
            // An API that ignores the paging parameters answers the same page forever.
            if previous.as_ref() == Some(&items) {
                return Err(OutsideError::Garbage(format!(
                    "{url} answered page {page} with the same records as the page before: \
                     check the mapping's pagination parameters against the API"
                )));
            }
            // Numbered pages from an API that caps them below the size asked
            // may skip records between pages (when it counts pages by the size
            // asked): a short page followed by more makes the listing unfit to
            // infer deletions from.
            if let Pagination::Page { size, .. } = &c.pagination {
                if short_page.is_some() && uncertain.is_none() {
                    let (short, got) = short_page.unwrap_or_default();
                    uncertain = Some(format!(
                        "{url} answered page {short} with {got} records of the {size} asked, then more: \
                         numbered pages of an API that caps their size may skip records, so no deletion \
                         was inferred from this listing; set the mapping's pagination size to {got} or less"
                    ));
                }
                if (items.len() as u64) < u64::from(*size) {
                    short_page = Some((page, items.len()));
                }
            }
            all.extend(items.iter().cloned());
            previous = Some(items);
            page += 1;
        }
    }

    /// A listed or answered record, with why its fields do not fit the
    /// mapping (a value its `values` do not name), if they do not.
    fn record(&self, c: &Collection, outside: &Value) -> Option<(OutsideRecord, Option<String>)> {
        let id = match outside.get(&c.id_field)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let updated_at = c
            .updated_at_field
            .as_deref()
            .and_then(|f| mapping::get(outside, f))
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let (fields, unfit) = match c.to_connec(outside) {
            Ok(fields) => (fields, None),
            Err(why) => (Value::Null, Some(why)),
        };
        let record = OutsideRecord {
            id,
            tag: tag_of(outside),
            updated_at,
            fields,
        };
        Some((record, unfit))
    }
}

impl Rest {
    /// The id and tag of the record a write answered.
    fn saved(
        &self,
        c: &Collection,
        answer: Option<Value>,
    ) -> Result<(String, String), OutsideError> {
        let saved = answer.filter(Value::is_object).ok_or_else(|| {
            OutsideError::Garbage("a write answered no JSON object (the record as saved)".into())
        })?;
        let (record, _) = self.record(c, &saved).ok_or_else(|| {
            OutsideError::Garbage(format!("the saved record has no {}", c.id_field))
        })?;
        Ok((record.id, record.tag))
    }

    /// The record whose `marker` is `value`, if the API has one: asked with
    /// `?<marker>=<value>`; an answer holding other records shows an API that
    /// does not filter so, and the whole collection is then listed.
    async fn find_marked(
        &self,
        c: &Collection,
        marker: &str,
        value: &str,
    ) -> Result<Option<Value>, OutsideError> {
        let marked = |r: &Value| mapping::get(r, marker).and_then(Value::as_str) == Some(value);
        let url = format!("{}{}", self.base, c.path);
        let answer = self
            .call(self.request(Method::GET, url).query(&[(marker, value)]))
            .await?;
        let filtered = match answer {
            Some(Value::Array(records)) if records.iter().all(marked) => Some(records),
            _ => None,
        };
        let records = match filtered {
            Some(records) => records,
            None => self.list(c).await?.0,
        };
        Ok(records.into_iter().find(|r| marked(r)))
    }
}

/// A record's tag: SHA-256 of its JSON (serde_json keeps keys sorted).
fn tag_of(value: &Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fill `{name}` placeholders from the credentials object.
fn fill(template: &str, credentials: &Value) -> Result<String, (String, String)> {
    let mut out = template.to_owned();
    let names: Vec<String> = template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    for name in names {
        let value = credentials
            .get(&name)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                (
                    "/credentials".to_owned(),
                    format!("the mapping's auth header needs credentials.{name} (a string)"),
                )
            })?;
        out = out.replace(&format!("{{{name}}}"), value);
    }
    Ok(out)
}

#[async_trait]
impl Outside for Rest {
    fn entities(&self) -> Vec<String> {
        self.mapping
            .collections
            .iter()
            .map(|c| c.entity.clone())
            .collect()
    }

    fn mapped_fields(&self, entity: &str) -> Vec<String> {
        self.collection(entity)
            .map(|c| c.fields.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn reference_fields(&self, entity: &str) -> Vec<String> {
        self.collection(entity)
            .map(|c| {
                c.fields
                    .iter()
                    .filter(|(_, map)| map.convert() == mapping::Convert::Reference)
                    .map(|(field, _)| field.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn pull(&self, entity: &str, cursor: Option<&str>) -> Result<Pulled, OutsideError> {
        let c = self.collection(entity)?;
        let since = cursor
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let mut pulled = Pulled::default();
        let mut latest = since;
        let mut without_id = 0usize;
        let (items, uncertain) = self.list(c).await?;
        for item in items {
            let Some((record, unfit)) = self.record(c, &item) else {
                without_id += 1;
                continue;
            };
            if let (Some(at), Some(since)) = (record.updated_at, since) {
                if at <= since {
                    continue;
                }
            }
            latest = latest.max(record.updated_at);
            match unfit {
                None => pulled.changed.push(record),
                Some(why) => pulled.refused.push((record.id, why)),
            }
        }
        if without_id > 0 {
            pulled.skipped.push(format!(
                "{without_id} record(s) of {} have no usable {:?} (a string or a number): \
                 they were not synced, and no deletion was inferred from this listing",
                c.path, c.id_field
            ));
        }
        // Without a change time every pull lists everything: deletions show as
        // absences, but only from a listing whose every record was read.
        pulled.complete = c.updated_at_field.is_none() && without_id == 0 && uncertain.is_none();
        if let (Some(why), None) = (uncertain, &c.updated_at_field) {
            pulled.skipped.push(why);
        }
        pulled.cursor = latest.map(crate::store::time_text);
        Ok(pulled)
    }

    async fn fetch(&self, entity: &str, id: &str) -> Result<Option<OutsideRecord>, OutsideError> {
        let c = self.collection(entity)?;
        let answer = self
            .call(self.request(Method::GET, self.item_url(c, id)))
            .await?;
        match answer.and_then(|item| self.record(c, &item)) {
            Some((_, Some(why))) => Err(OutsideError::Unfit(why)),
            found => Ok(found.map(|(record, _)| record)),
        }
    }

    async fn write(
        &self,
        entity: &str,
        id: Option<&str>,
        if_tag: Option<&str>,
        fields: &Value,
    ) -> Result<(String, String), OutsideError> {
        let c = self.collection(entity)?;
        let answer = match id {
            None => {
                let body = c
                    .to_outside(fields, &self.app_id)
                    .map_err(OutsideError::Unfit)?;
                let url = format!("{}{}", self.base, c.path);
                self.call(self.request(Method::POST, url).json(&body))
                    .await?
            }
            Some(id) => {
                let mapped = c
                    .to_outside_update(fields, &self.app_id)
                    .map_err(OutsideError::Unfit)?;
                // The record as it is: to compare its tag, and to keep what
                // the mapping does not know (see `merge`).
                let wanted = if_tag.is_some()
                    || c.update_method == UpdateMethod::Put
                    || merge::has_nested(&mapped);
                let current = match wanted {
                    true => {
                        self.call(self.request(Method::GET, self.item_url(c, id)))
                            .await?
                    }
                    false => None,
                };
                if let (Some(expected), Some(current)) = (if_tag, &current) {
                    if tag_of(current) != expected {
                        return Err(OutsideError::Stale);
                    }
                }
                let (method, body) = match c.update_method {
                    UpdateMethod::Patch => {
                        (Method::PATCH, merge::patch_body(current.as_ref(), &mapped))
                    }
                    UpdateMethod::Put => {
                        let mut whole = match &current {
                            Some(current) => merge::deep(current, &mapped),
                            None => mapped,
                        };
                        if let Value::Object(map) = &mut whole {
                            map.entry(c.id_field.clone())
                                .or_insert_with(|| Value::String(id.to_owned()));
                        }
                        (Method::PUT, whole)
                    }
                };
                self.call(self.request(method, self.item_url(c, id)).json(&body))
                    .await?
            }
        };
        self.saved(c, answer)
    }

    async fn create(
        &self,
        entity: &str,
        fields: &Value,
        attempt: &CreateAttempt<'_>,
    ) -> Result<(String, String), OutsideError> {
        let c = self.collection(entity)?;
        if let (true, Some(marker)) = (attempt.retry, &c.marker_field) {
            if let Some(made) = self.find_marked(c, marker, attempt.global_id).await? {
                return self.saved(c, Some(made));
            }
        }
        let mut body = c
            .to_outside(fields, &self.app_id)
            .map_err(OutsideError::Unfit)?;
        if let Some(marker) = &c.marker_field {
            mapping::set(
                &mut body,
                marker,
                Value::String(attempt.global_id.to_owned()),
            );
        }
        let url = format!("{}{}", self.base, c.path);
        let mut request = self.request(Method::POST, url).json(&body);
        if let Some(header) = &c.idempotency_header {
            request = request.header(header, attempt.key);
        }
        let answer = self.call(request).await?;
        self.saved(c, answer)
    }

    fn dedupes_creates(&self, entity: &str) -> bool {
        self.collection(entity)
            .is_ok_and(|c| c.idempotency_header.is_some() || c.marker_field.is_some())
    }

    async fn delete(
        &self,
        entity: &str,
        id: &str,
        if_tag: Option<&str>,
    ) -> Result<(), OutsideError> {
        let c = self.collection(entity)?;
        if let Some(expected) = if_tag {
            match self.fetch(entity, id).await? {
                None => return Ok(()),
                Some(current) if current.tag != expected => return Err(OutsideError::Stale),
                _ => {}
            }
        }
        self.call(self.request(Method::DELETE, self.item_url(c, id)))
            .await?;
        Ok(())
    }
}
