//! The CRM's own database (SQLite): its people, organizations and
//! opportunities, keyed by its own ids, and what signing in keeps
//! (`mno_example_web::SignIn`) beside them.

use anyhow::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteRow};
use sqlx::Row;

/// What the CRM keeps: one table per kind, named as the Connec! collection it syncs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    People,
    Organizations,
    Opportunities,
}

impl Kind {
    /// The kind kept for Connec! collection `entity`, if the CRM keeps it.
    pub fn of_entity(entity: &str) -> Option<Kind> {
        [Kind::People, Kind::Organizations, Kind::Opportunities]
            .into_iter()
            .find(|kind| kind.entity() == entity)
    }

    /// The Connec! collection, also the table's name.
    pub fn entity(self) -> &'static str {
        match self {
            Kind::People => "people",
            Kind::Organizations => "organizations",
            Kind::Opportunities => "opportunities",
        }
    }

    /// How the CRM's ids of this kind begin (`crm-7`, `crm-org-2`, `crm-opp-3`).
    fn id_prefix(self) -> &'static str {
        match self {
            Kind::People => "crm-",
            Kind::Organizations => "crm-org-",
            Kind::Opportunities => "crm-opp-",
        }
    }
}

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

/// A company the CRM deals with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The CRM's own id (`crm-org-<n>`).
    pub id: String,
    pub org: String,
    pub name: String,
    pub version: i64,
}

/// A sale in the making.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opportunity {
    /// The CRM's own id (`crm-opp-<n>`).
    pub id: String,
    pub org: String,
    pub name: String,
    /// A decimal as Connec! keeps it (`"900.00"`), empty when unknown.
    pub amount: String,
    /// ISO 4217, empty when unknown.
    pub currency: String,
    pub sales_stage: String,
    /// The CRM's id of the organization it is with, when known.
    pub organization_id: Option<String>,
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
            "CREATE TABLE IF NOT EXISTS organizations (id TEXT PRIMARY KEY, org TEXT NOT NULL,
               name TEXT NOT NULL, version INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS opportunities (id TEXT PRIMARY KEY, org TEXT NOT NULL,
               name TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL,
               sales_stage TEXT NOT NULL, organization_id TEXT, version INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS id_sequences (kind TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Store { pool })
    }

    /// The database, shared with the sign-in's sessions.
    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// A new CRM id of `kind`, never given before (a deleted record's id is not reused).
    pub async fn next_id(&self, kind: Kind) -> Result<String> {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO id_sequences (kind, n) VALUES (?, 1)
             ON CONFLICT (kind) DO UPDATE SET n = n + 1 RETURNING n",
        )
        .bind(kind.entity())
        .fetch_one(&self.pool)
        .await?;
        Ok(format!("{}{n}", kind.id_prefix()))
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

    /// Stores `organization` unless a version at least as new is stored already.
    pub async fn upsert_organization(&self, organization: &Organization) -> Result<()> {
        sqlx::query(
            "INSERT INTO organizations (id, org, name, version) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version
             WHERE excluded.version > organizations.version",
        )
        .bind(&organization.id)
        .bind(&organization.org)
        .bind(&organization.name)
        .bind(organization.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores `opportunity` unless a version at least as new is stored already.
    pub async fn upsert_opportunity(&self, opportunity: &Opportunity) -> Result<()> {
        sqlx::query(
            "INSERT INTO opportunities (id, org, name, amount, currency, sales_stage, organization_id, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, amount = excluded.amount,
               currency = excluded.currency, sales_stage = excluded.sales_stage,
               organization_id = excluded.organization_id, version = excluded.version
             WHERE excluded.version > opportunities.version",
        )
        .bind(&opportunity.id)
        .bind(&opportunity.org)
        .bind(&opportunity.name)
        .bind(&opportunity.amount)
        .bind(&opportunity.currency)
        .bind(&opportunity.sales_stage)
        .bind(&opportunity.organization_id)
        .bind(opportunity.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the record `id` of `kind` (nothing when it is not here).
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        // The table's name comes from `Kind`, never from input.
        sqlx::query(&format!("DELETE FROM {} WHERE id = ?", kind.entity()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn people(&self, org: &str) -> Result<Vec<Person>> {
        self.list(
            "SELECT id, org, first_name, last_name, version FROM people WHERE org = ? ORDER BY id",
            org,
            |row| Person {
                id: row.get(0),
                org: row.get(1),
                first_name: row.get(2),
                last_name: row.get(3),
                version: row.get(4),
            },
        )
        .await
    }

    pub async fn organizations(&self, org: &str) -> Result<Vec<Organization>> {
        self.list(
            "SELECT id, org, name, version FROM organizations WHERE org = ? ORDER BY id",
            org,
            |row| Organization {
                id: row.get(0),
                org: row.get(1),
                name: row.get(2),
                version: row.get(3),
            },
        )
        .await
    }

    pub async fn opportunities(&self, org: &str) -> Result<Vec<Opportunity>> {
        self.list(
            "SELECT id, org, name, amount, currency, sales_stage, organization_id, version
             FROM opportunities WHERE org = ? ORDER BY id",
            org,
            |row| Opportunity {
                id: row.get(0),
                org: row.get(1),
                name: row.get(2),
                amount: row.get(3),
                currency: row.get(4),
                sales_stage: row.get(5),
                organization_id: row.get(6),
                version: row.get(7),
            },
        )
        .await
    }

    /// The rows of `org` that `sql` selects, each read by `read`.
    async fn list<T>(&self, sql: &str, org: &str, read: fn(SqliteRow) -> T) -> Result<Vec<T>> {
        let rows = sqlx::query(sql).bind(org).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(read).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_not_reused_after_a_delete() -> Result<()> {
        let store = Store::open(":memory:").await?;
        for _ in 0..2 {
            let id = store.next_id(Kind::People).await?;
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
        store.delete(Kind::People, "crm-1").await?;
        assert_eq!(store.next_id(Kind::People).await?, "crm-3");
        Ok(())
    }

    #[tokio::test]
    async fn each_kind_has_its_own_ids() -> Result<()> {
        let store = Store::open(":memory:").await?;
        assert_eq!(store.next_id(Kind::People).await?, "crm-1");
        assert_eq!(store.next_id(Kind::Organizations).await?, "crm-org-1");
        assert_eq!(store.next_id(Kind::Opportunities).await?, "crm-opp-1");
        assert_eq!(store.next_id(Kind::Organizations).await?, "crm-org-2");
        Ok(())
    }

    #[tokio::test]
    async fn an_older_version_does_not_overwrite_a_newer_one() -> Result<()> {
        let store = Store::open(":memory:").await?;
        let deal = |version, stage: &str| Opportunity {
            id: "crm-opp-1".into(),
            org: "o".into(),
            name: "Deal".into(),
            amount: "900.00".into(),
            currency: "USD".into(),
            sales_stage: stage.into(),
            organization_id: Some("crm-org-1".into()),
            version,
        };
        store.upsert_opportunity(&deal(3, "Won")).await?;
        store.upsert_opportunity(&deal(2, "Proposal")).await?;
        assert_eq!(store.opportunities("o").await?, [deal(3, "Won")]);
        assert!(store.opportunities("other").await?.is_empty());
        Ok(())
    }
}
