//! The CRM's own database (SQLite): its people, keyed by its own ids, and
//! what signing in keeps (`mno_example_web::SignIn`) beside them.

use anyhow::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;

/// A person as the CRM keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The CRM's own id (`crm-<n>`).
    pub id: String,
    /// The org they belong to.
    pub org: String,
    pub first_name: String,
    pub last_name: String,
    /// The highest Connec! version applied (older deliveries are skipped).
    pub version: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating) the database at `path`; `:memory:` for a throwaway one.
    pub async fn open(path: &str) -> Result<Store> {
        let options = if path == ":memory:" {
            SqliteConnectOptions::new().in_memory(true)
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
        };
        // One connection: an in-memory database lives in its connection.
        let pool = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS people (id TEXT PRIMARY KEY, org TEXT NOT NULL,
               first_name TEXT NOT NULL, last_name TEXT NOT NULL, version INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS id_sequence (n INTEGER NOT NULL)",
            "INSERT INTO id_sequence (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM id_sequence)",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Store { pool })
    }

    /// The database, shared with the sign-in's sessions.
    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// A new CRM id, never given before (a deleted person's id is not reused).
    pub async fn next_id(&self) -> Result<String> {
        let n: i64 = sqlx::query_scalar("UPDATE id_sequence SET n = n + 1 RETURNING n")
            .fetch_one(&self.pool)
            .await?;
        Ok(format!("crm-{n}"))
    }

    /// Stores `person` unless a version at least as new is stored already.
    pub async fn upsert_person(&self, person: &Person) -> Result<()> {
        sqlx::query(
            "INSERT INTO people (id, org, first_name, last_name, version) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name,
               last_name = excluded.last_name, version = excluded.version
             WHERE excluded.version > people.version",
        )
        .bind(&person.id)
        .bind(&person.org)
        .bind(&person.first_name)
        .bind(&person.last_name)
        .bind(person.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_person(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM people WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn people(&self, org: &str) -> Result<Vec<Person>> {
        let rows = sqlx::query(
            "SELECT id, org, first_name, last_name, version FROM people WHERE org = ? ORDER BY id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Person {
                id: row.get(0),
                org: row.get(1),
                first_name: row.get(2),
                last_name: row.get(3),
                version: row.get(4),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_not_reused_after_a_delete() -> Result<()> {
        let store = Store::open(":memory:").await?;
        for _ in 0..2 {
            let id = store.next_id().await?;
            store
                .upsert_person(&Person {
                    id,
                    org: "o".into(),
                    first_name: "A".into(),
                    last_name: "B".into(),
                    version: 1,
                })
                .await?;
        }
        store.delete_person("crm-1").await?;
        assert_eq!(store.next_id().await?, "crm-3");
        Ok(())
    }
}
