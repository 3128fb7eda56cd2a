//! List queries over the record store: `$filter` and `$orderby` compiled into
//! parameterised SQL (SQLite or PostgreSQL), `$top`/`$skip`, and an opaque cursor.
//!
//! - [`parse`]: the grammar.
//! - here: compiling to SQL. Field names are checked identifiers placed into a
//!   JSON path; every value is a bound parameter. Fields the catalogue
//!   declares as decimals or integers compare as numbers, the rest as text
//!   (ISO dates compare correctly as text).

pub mod parse;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::entities::{EntityDef, FieldType};
use crate::store::{Dialect, RecordStore};
use parse::{CompareOp, Filter, Literal, OrderBy};

pub const MAX_TOP: u32 = 1000;
pub const DEFAULT_TOP: u32 = 100;
/// The largest `$skip`: far past any real collection, well inside the
/// databases' signed 64-bit OFFSET (a larger one was a 500).
pub const MAX_SKIP: u64 = 1_000_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{parameter}: {detail}")]
    Invalid {
        parameter: &'static str,
        detail: String,
    },
    #[error("the record store did not answer: {0}")]
    Store(#[from] sqlx::Error),
}

fn invalid(parameter: &'static str, detail: impl Into<String>) -> QueryError {
    QueryError::Invalid {
        parameter,
        detail: detail.into(),
    }
}

/// One list request, as parsed from the query string (or from a cursor).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListRequest {
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(rename = "t")]
    pub top: u32,
    #[serde(rename = "s")]
    pub skip: u64,
    #[serde(rename = "d", default)]
    pub include_deleted: bool,
}

impl ListRequest {
    /// The cursor of the next page.
    pub fn next_cursor(&self) -> String {
        let next = ListRequest {
            skip: self.skip.saturating_add(u64::from(self.top)),
            ..self.clone()
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&next).expect("serialises"))
    }

    pub fn from_cursor(cursor: &str) -> Result<ListRequest, QueryError> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                invalid(
                    "cursor",
                    "not a cursor this API gave out; start again without it",
                )
            })
    }
}

/// A page of rows.
pub struct Page {
    pub rows: Vec<StoredRow>,
    pub total: u64,
}

pub struct StoredRow {
    pub state: serde_json::Value,
    pub version: u64,
    pub seq: u64,
    pub deleted: bool,
}

enum Bind {
    Text(String),
    Int(i64),
}

struct Compiler<'a> {
    dialect: Dialect,
    entity: &'a EntityDef,
    binds: Vec<Bind>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Bool,
    Text,
}

const COLUMNS: &[&str] = &["id", "version", "created_at", "updated_at"];
/// A tombstone's mark (`"deleted": true` in answers), kept as a 0/1 column.
const DELETED: &str = "deleted";

/// `deleted eq true` and the like: the column holds 0 or 1, in both dialects.
fn deleted_compare(op: CompareOp, value: &Literal) -> Result<String, QueryError> {
    match (op, value) {
        (CompareOp::Eq | CompareOp::Ne, Literal::Bool(b)) => {
            let sql_op = if op == CompareOp::Eq { "=" } else { "<>" };
            Ok(format!("deleted {sql_op} {}", i64::from(*b)))
        }
        _ => Err(invalid(
            "$filter",
            "deleted compares only with eq or ne and true or false (deleted records are listed with include_deleted=true)",
        )),
    }
}

impl Compiler<'_> {
    fn placeholder(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    fn kind(&self, field: &str) -> Kind {
        if field == "version" {
            return Kind::Number;
        }
        match self
            .entity
            .fields
            .iter()
            .find(|f| f.name == field)
            .map(|f| f.kind)
        {
            Some(FieldType::Decimal | FieldType::Integer) => Kind::Number,
            Some(FieldType::Bool) => Kind::Bool,
            _ => Kind::Text,
        }
    }

    /// The SQL expression of a field: a column, or the field in the JSON state.
    fn expression(&self, field: &str) -> String {
        if COLUMNS.contains(&field) || field == DELETED {
            return field.to_owned();
        }
        // `field` is a checked identifier, so it cannot end the quoted path.
        // PostgreSQL cannot read a U+0000 escape in JSON: one in any row would
        // fail the whole query. Writes refuse it, but an older event may hold
        // one, so it is read as U+FFFD (the same six characters, so the JSON
        // stays valid whatever precedes it).
        match self.dialect {
            Dialect::Sqlite => format!("json_extract(state, '$.{field}')"),
            Dialect::Postgres => {
                format!("(replace(state, '\\u0000', '\\ufffd')::jsonb ->> '{field}')")
            }
        }
    }

    fn numeric(&self, field: &str) -> String {
        let expression = self.expression(field);
        if field == "version" {
            return expression;
        }
        match self.dialect {
            Dialect::Sqlite => format!("CAST({expression} AS REAL)"),
            Dialect::Postgres => {
                format!("(CASE WHEN {expression} ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN ({expression})::numeric END)")
            }
        }
    }

    fn compile(&mut self, filter: &Filter) -> Result<String, QueryError> {
        Ok(match filter {
            Filter::And(a, b) => format!("({} AND {})", self.compile(a)?, self.compile(b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.compile(a)?, self.compile(b)?),
            Filter::Not(a) => format!("(NOT {})", self.compile(a)?),
            Filter::Compare { field, op, value } => self.compare(field, *op, value)?,
        })
    }

    fn compare(
        &mut self,
        field: &str,
        op: CompareOp,
        value: &Literal,
    ) -> Result<String, QueryError> {
        let sql_op = match op {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        };
        if field == DELETED {
            return deleted_compare(op, value);
        }
        let kind = self.kind(field);
        Ok(match value {
            Literal::Null => match op {
                CompareOp::Eq => format!("{} IS NULL", self.expression(field)),
                CompareOp::Ne => format!("{} IS NOT NULL", self.expression(field)),
                _ => {
                    return Err(invalid(
                        "$filter",
                        format!("{field}: null compares only with eq or ne"),
                    ))
                }
            },
            Literal::Bool(b) => {
                let expression = self.expression(field);
                let bind = match self.dialect {
                    Dialect::Sqlite => Bind::Int(i64::from(*b)),
                    Dialect::Postgres => Bind::Text(b.to_string()),
                };
                let placeholder = self.placeholder(bind);
                format!("{expression} {sql_op} {placeholder}")
            }
            Literal::Number(n) => self.numeric_compare(field, sql_op, n)?,
            Literal::Text(t) if kind == Kind::Number => {
                if t.parse::<rust_decimal::Decimal>().is_err() {
                    return Err(invalid(
                        "$filter",
                        format!("{field} is a number; {t:?} is not"),
                    ));
                }
                self.numeric_compare(field, sql_op, t)?
            }
            Literal::Text(t) => {
                let expression = self.expression(field);
                let placeholder = self.placeholder(Bind::Text(t.clone()));
                format!("{expression} {sql_op} {placeholder}")
            }
        })
    }

    fn numeric_compare(
        &mut self,
        field: &str,
        sql_op: &str,
        number: &str,
    ) -> Result<String, QueryError> {
        let expression = self.numeric(field);
        let cast = match self.dialect {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "NUMERIC",
        };
        let placeholder = self.placeholder(Bind::Text(number.to_owned()));
        Ok(format!(
            "{expression} {sql_op} CAST({placeholder} AS {cast})"
        ))
    }

    fn order(&self, order: &[OrderBy]) -> String {
        let mut parts: Vec<String> = order
            .iter()
            .map(|o| {
                let expression = if self.kind(&o.field) == Kind::Number {
                    self.numeric(&o.field)
                } else {
                    self.expression(&o.field)
                };
                format!("{expression} {}", if o.descending { "DESC" } else { "ASC" })
            })
            .collect();
        // A stable tail, so that pages never overlap.
        parts.push("created_at ASC".into());
        parts.push("id ASC".into());
        parts.join(", ")
    }
}

/// Run a list request for one org's collection.
pub async fn list(
    store: &RecordStore,
    org: &str,
    entity: &EntityDef,
    request: &ListRequest,
) -> Result<Page, QueryError> {
    if request.top == 0 || request.top > MAX_TOP {
        return Err(invalid("$top", format!("must be 1 to {MAX_TOP}")));
    }
    if request.skip > MAX_SKIP {
        return Err(invalid(
            "$skip",
            format!("must be 0 to {MAX_SKIP} (got {})", request.skip),
        ));
    }
    let mut compiler = Compiler {
        dialect: store.dialect,
        entity,
        binds: Vec::new(),
    };
    let org_placeholder = compiler.placeholder(Bind::Text(org.to_owned()));
    let entity_placeholder = compiler.placeholder(Bind::Text(entity.name.to_owned()));
    let mut condition = format!("org = {org_placeholder} AND entity = {entity_placeholder}");
    if !request.include_deleted {
        condition.push_str(" AND deleted = 0");
    }
    if let Some(text) = request.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        let filter = parse::filter(text).map_err(|e| invalid("$filter", e.to_string()))?;
        condition.push_str(&format!(" AND {}", compiler.compile(&filter)?));
    }
    let order = match request.order_by.as_deref().filter(|o| !o.trim().is_empty()) {
        Some(text) => parse::order_by(text).map_err(|e| invalid("$orderby", e.to_string()))?,
        None => Vec::new(),
    };
    let order_sql = compiler.order(&order);

    let count_sql = format!("SELECT COUNT(*) FROM connec_records WHERE {condition}");
    let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
    for bind in &compiler.binds {
        count = match bind {
            Bind::Text(t) => count.bind(t.clone()),
            Bind::Int(i) => count.bind(*i),
        };
    }
    let total = count.fetch_one(&store.pool).await? as u64;

    // $top and $skip are checked numbers, written into the SQL as such.
    let rows_sql = format!(
        "SELECT state, version, seq, deleted FROM connec_records WHERE {condition} ORDER BY {order_sql} LIMIT {} OFFSET {}",
        request.top, request.skip
    );
    let mut query = sqlx::query(&rows_sql);
    for bind in &compiler.binds {
        query = match bind {
            Bind::Text(t) => query.bind(t.clone()),
            Bind::Int(i) => query.bind(*i),
        };
    }
    let rows = query
        .fetch_all(&store.pool)
        .await?
        .into_iter()
        .map(|row| StoredRow {
            state: serde_json::from_str(row.get::<String, _>(0).as_str()).unwrap_or_default(),
            version: row.get::<i64, _>(1) as u64,
            seq: row.get::<i64, _>(2) as u64,
            deleted: row.get::<i32, _>(3) != 0,
        })
        .collect();
    Ok(Page { rows, total })
}
