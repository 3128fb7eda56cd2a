//! One batch of the records projection: events folded in memory keeping only
//! the last state per record, then written once per record, with the
//! checkpoint, in one transaction.
//!
//! The semantics are the runner's: each row keeps the sequence of the event
//! it holds and takes only newer ones (so a redelivery, even out of order,
//! changes nothing), and the checkpoint only moves forward. Keeping the last
//! state per record is what makes a rebuild fast: a record changed a hundred
//! times in a batch costs one row write, not a hundred.

use std::collections::HashMap;

use mno_events::db;
use mno_events::lease::{self, Fence, LeaseError};
use mno_events::proto::Op;
use sqlx::{Any, AnyPool, Transaction};

/// The fields of a record event (proto/mno/events/v1/record.proto) a batch
/// keeps; decoding skips the others, which a rebuild of millions of events notices.
#[derive(Clone, PartialEq, prost::Message)]
struct Folded {
    #[prost(string, tag = "2")]
    org: String,
    #[prost(string, tag = "3")]
    entity: String,
    #[prost(string, tag = "4")]
    record_id: String,
    #[prost(int32, tag = "5")]
    op: i32,
    #[prost(bytes = "vec", tag = "13")]
    state: Vec<u8>,
}

/// Most rows per INSERT statement (7 parameters each; well under SQLite's and
/// PostgreSQL's limits); a power of two, see [`db::power_of_two_chunks`].
const ROWS_PER_STATEMENT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    org: String,
    entity: String,
    id: String,
}

#[derive(Debug, Clone)]
struct Latest {
    seq: u64,
    state: String,
    deleted: bool,
}

/// Events of one batch, folded.
#[derive(Debug, Default)]
pub struct LatestBatch {
    rows: HashMap<Key, Latest>,
    dead: Vec<(u64, String)>,
    /// Events added (including dead ones).
    pub events: u64,
    /// The highest sequence added.
    pub last_seq: u64,
}

impl LatestBatch {
    /// Fold one message of the stream (its payload is a record event, or it is dead).
    pub fn add(&mut self, seq: u64, payload: &[u8]) {
        self.events += 1;
        self.last_seq = self.last_seq.max(seq);
        match <Folded as prost::Message>::decode(payload) {
            Ok(event) => self.add_event(seq, event),
            Err(e) => self.dead.push((seq, format!("not a record event: {e}"))),
        }
    }

    fn add_event(&mut self, seq: u64, event: Folded) {
        if !crate::records::is_read(&event.entity) {
            return; // The consumer reads every collection; reports use some.
        }
        let key = Key {
            org: event.org,
            entity: event.entity,
            id: event.record_id,
        };
        let deleted = Op::try_from(event.op) == Ok(Op::Deleted);
        let newer = self.rows.get(&key).is_none_or(|held| held.seq < seq);
        if newer {
            let state = String::from_utf8(event.state)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            self.rows.insert(
                key,
                Latest {
                    seq,
                    state,
                    deleted,
                },
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Distinct records the batch will write.
    pub fn records(&self) -> usize {
        self.rows.len()
    }

    /// Write the rows, the dead letters and the checkpoint in one transaction;
    /// under a lease, only while `fence` is the newest holder's (else
    /// [`LeaseError::Fenced`] and nothing is written).
    pub async fn commit(
        &self,
        pool: &AnyPool,
        projection: &str,
        version: i64,
        fence: Option<&Fence>,
    ) -> Result<(), LeaseError> {
        let sqlite = db::is_sqlite(pool);
        let mut tx = pool.begin().await?;
        let rows: Vec<(&Key, &Latest)> = self.rows.iter().collect();
        for chunk in db::power_of_two_chunks(&rows, ROWS_PER_STATEMENT) {
            upsert_rows(&mut tx, version, chunk, sqlite).await?;
        }
        for (seq, reason) in &self.dead {
            sqlx::query("INSERT INTO impac_dead_letters (projection, version, seq, reason) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(projection)
                .bind(version)
                .bind(*seq as i64)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&db::positional(
            "INSERT INTO impac_checkpoints (projection, version, seq) VALUES ($1, $2, $3)
             ON CONFLICT (projection, version) DO UPDATE SET seq = excluded.seq
             WHERE impac_checkpoints.seq < excluded.seq",
            sqlite,
        ))
        .bind(projection)
        .bind(version)
        .bind(self.last_seq as i64)
        .execute(&mut *tx)
        .await?;
        if let Some(fence) = fence {
            lease::check_fence(&mut tx, fence, sqlite).await?;
        }
        Ok(tx.commit().await?)
    }
}

/// One multi-row upsert; the statement text depends only on the row count, so
/// the connection's statement cache prepares it once.
async fn upsert_rows(
    tx: &mut Transaction<'_, Any>,
    version: i64,
    rows: &[(&Key, &Latest)],
    sqlite: bool,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO impac_records (version, org, entity, id, state, seq, deleted) VALUES {}
         ON CONFLICT (version, org, entity, id) DO UPDATE SET state = excluded.state, seq = excluded.seq, deleted = excluded.deleted
         WHERE impac_records.seq < excluded.seq",
        db::row_placeholders(rows.len(), 7, sqlite)
    );
    let mut query = sqlx::query(&sql);
    for (key, latest) in rows {
        query = query
            .bind(version)
            .bind(&key.org)
            .bind(&key.entity)
            .bind(&key.id)
            .bind(&latest.state)
            .bind(latest.seq as i64)
            .bind(i32::from(latest.deleted));
    }
    query.execute(&mut **tx).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mno_events::proto::RecordEvent;

    fn event(entity: &str, id: &str, op: Op, state: &str) -> Vec<u8> {
        RecordEvent {
            org: "o".into(),
            entity: entity.into(),
            record_id: id.into(),
            op: op as i32,
            state: state.as_bytes().to_vec(),
            ..Default::default()
        }
        .to_bytes()
    }

    #[test]
    fn a_batch_keeps_the_last_state_per_record_and_dead_letters_what_is_not_an_event() {
        let mut batch = LatestBatch::default();
        batch.add(1, &event("invoices", "i1", Op::Created, r#"{"v":1}"#));
        batch.add(2, &[0xff, 0xff, 0xff]);
        batch.add(3, &event("items", "x1", Op::Created, "{}"));
        batch.add(4, &event("invoices", "i1", Op::Updated, r#"{"v":2}"#));
        batch.add(5, &event("invoices", "i2", Op::Deleted, "{}"));
        assert_eq!((batch.events, batch.last_seq), (5, 5));
        assert_eq!(batch.records(), 2, "items are not read; i1 once");
        let i1 = &batch.rows[&Key {
            org: "o".into(),
            entity: "invoices".into(),
            id: "i1".into(),
        }];
        assert_eq!(
            (i1.seq, i1.state.as_str(), i1.deleted),
            (4, r#"{"v":2}"#, false)
        );
        assert_eq!(batch.dead.len(), 1);
        assert_eq!(batch.dead[0].0, 2);
    }
}
