//! List queries and the paging stream over them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{Collection, Filter, Record};
use crate::error::{Error, Result};

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// What a list asks for: a filter, an order and a page size.
///
/// ```
/// use mno_sdk::connec::{Filter, Order, Query};
/// let q = Query::new().filter(Filter::field("status").eq("AUTHORISED")).order_by("due_date", Order::Asc).top(50);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Query {
    filter: Option<Filter>,
    order: Vec<(String, Order)>,
    top: Option<u32>,
    skip: Option<u64>,
    include_deleted: bool,
    cursor: Option<String>,
}

impl Query {
    /// Every record, in the platform's default order.
    pub fn new() -> Query {
        Query::default()
    }

    /// Only records matching `filter` (`$filter`).
    pub fn filter(mut self, filter: Filter) -> Query {
        self.filter = Some(filter);
        self
    }

    /// Sorts by `field` (several calls sort by several fields, `$orderby`).
    pub fn order_by(mut self, field: &str, order: Order) -> Query {
        self.order.push((field.to_owned(), order));
        self
    }

    /// Page size (`$top`, at most 1000; 100 by default).
    pub fn top(mut self, top: u32) -> Query {
        self.top = Some(top);
        self
    }

    /// Records to skip first (`$skip`).
    pub fn skip(mut self, skip: u64) -> Query {
        self.skip = Some(skip);
        self
    }

    /// Deleted records too (they carry `deleted: true`).
    pub fn include_deleted(mut self) -> Query {
        self.include_deleted = true;
        self
    }

    /// The query string; a filter field that is no identifier is refused here.
    pub(crate) fn params(&self) -> Result<Vec<(String, String)>> {
        if let Some(cursor) = &self.cursor {
            // The cursor carries the filter, order and position.
            return Ok(vec![("cursor".into(), cursor.clone())]);
        }
        let mut params = Vec::new();
        if let Some(filter) = &self.filter {
            if let Some(field) = filter.invalid_field() {
                return Err(Error::Config(format!(
                    "$filter field {field:?}: use a field name (letters, digits, _)"
                )));
            }
            params.push(("$filter".into(), filter.to_string()));
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self
                .order
                .iter()
                .map(|(field, order)| {
                    let dir = if *order == Order::Asc { "asc" } else { "desc" };
                    format!("{field} {dir}")
                })
                .collect();
            params.push(("$orderby".into(), order.join(",")));
        }
        if let Some(top) = self.top {
            params.push(("$top".into(), top.to_string()));
        }
        if let Some(skip) = self.skip {
            params.push(("$skip".into(), skip.to_string()));
        }
        if self.include_deleted {
            params.push(("include_deleted".into(), "true".into()));
        }
        Ok(params)
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The records of this page.
    pub records: Vec<Record<T>>,
    /// How many records match in all.
    pub total: u64,
    /// The cursor of the next page, `None` on the last one.
    pub next_cursor: Option<String>,
}

impl<T: DeserializeOwned> Page<T> {
    pub(crate) fn from_answer(entity: &str, mut body: Value) -> Result<Page<T>> {
        let records = serde_json::from_value(body[entity].take())
            .map_err(|e| Error::Decode(format!("{entity} list: {e}")))?;
        let total = body["pagination"]["total"].as_u64().unwrap_or(0);
        let next_cursor = body["links"]["next"].as_str().and_then(cursor_of);
        Ok(Page {
            records,
            total,
            next_cursor,
        })
    }
}

/// The `cursor` value of a `links.next` path.
fn cursor_of(link: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "cursor")
        .map(|(_, value)| value.into_owned())
}

pub(super) fn list_stream<T: Serialize + DeserializeOwned>(
    collection: &Collection<T>,
    query: Query,
) -> impl futures::Stream<Item = Result<Record<T>>> + '_ {
    use futures::{stream, TryStreamExt};
    // State: the query of the next page, or None once the last page was read.
    stream::try_unfold(Some(query), move |next| async move {
        let Some(query) = next else {
            return Ok::<_, Error>(None);
        };
        let page = collection.page(&query).await?;
        let following = page.next_cursor.map(|cursor| Query {
            cursor: Some(cursor),
            ..Query::default()
        });
        let records = stream::iter(page.records.into_iter().map(Ok::<_, Error>));
        Ok(Some((records, following)))
    })
    .try_flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_carry_filter_order_and_page() {
        let q = Query::new()
            .filter(Filter::field("name").eq("A&B"))
            .order_by("name", Order::Desc)
            .order_by("code", Order::Asc)
            .top(5);
        assert_eq!(
            q.params().unwrap(),
            vec![
                ("$filter".to_owned(), "name eq 'A&B'".to_owned()),
                ("$orderby".to_owned(), "name desc,code asc".to_owned()),
                ("$top".to_owned(), "5".to_owned()),
            ]
        );
        let bad = Query::new().filter(Filter::field("a;b").eq(1));
        assert!(bad.params().is_err());
    }

    #[test]
    fn the_cursor_is_read_from_the_next_link() {
        assert_eq!(
            cursor_of("/connec/api/v2/o/people?cursor=ab%2Bc"),
            Some("ab+c".to_owned())
        );
        assert_eq!(cursor_of("/connec/api/v2/o/people"), None);
    }
}
