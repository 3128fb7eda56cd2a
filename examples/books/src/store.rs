//! Books' own database (SQLite): customers, invoices and payments keyed by
//! Books' own ids, the change-feed cursor per org, (the
//! sessions of its signed-in users are `mno_example_web::SignIn`'s).

use anyhow::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;

/// A customer (a Connec! person) as Books keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Books' own id (`books-<n>`).
    pub id: String,
    /// The org they belong to.
    pub org: String,
    /// The record's global Connec! id.
    pub connec_id: String,
    pub first_name: String,
    pub last_name: String,
    /// The highest Connec! version applied (older deliveries are skipped).
    pub version: i64,
}

/// An invoice Books issued to a customer. Money in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub org: String,
    pub customer_id: String,
    pub currency: String,
    pub total_cents: i64,
    pub balance_cents: i64,
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
            "CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, org TEXT NOT NULL,
               connec_id TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
               version INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, org TEXT NOT NULL,
               customer_id TEXT NOT NULL, currency TEXT NOT NULL, total_cents INTEGER NOT NULL,
               balance_cents INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL,
               amount_cents INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS change_cursors (org TEXT PRIMARY KEY, cursor INTEGER NOT NULL)",
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

    /// A new Books id, never given before (a deleted record's id is not reused).
    pub async fn next_id(&self) -> Result<String> {
        let n: i64 = sqlx::query_scalar("UPDATE id_sequence SET n = n + 1 RETURNING n")
            .fetch_one(&self.pool)
            .await?;
        Ok(format!("books-{n}"))
    }

    /// Stores `customer` unless a version at least as new is stored already.
    pub async fn upsert_customer(&self, customer: &Customer) -> Result<()> {
        sqlx::query(
            "INSERT INTO customers (id, org, connec_id, first_name, last_name, version)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name,
               last_name = excluded.last_name, version = excluded.version
             WHERE excluded.version > customers.version",
        )
        .bind(&customer.id)
        .bind(&customer.org)
        .bind(&customer.connec_id)
        .bind(&customer.first_name)
        .bind(&customer.last_name)
        .bind(customer.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_customer(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM customers WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Books' id of the customer with global id `connec_id`, if it has one.
    pub async fn customer_id_of(&self, connec_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM customers WHERE connec_id = ?")
                .bind(connec_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn customers(&self, org: &str) -> Result<Vec<Customer>> {
        let rows = sqlx::query(
            "SELECT id, org, connec_id, first_name, last_name, version FROM customers
             WHERE org = ? ORDER BY id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Customer {
                id: row.get(0),
                org: row.get(1),
                connec_id: row.get(2),
                first_name: row.get(3),
                last_name: row.get(4),
                version: row.get(5),
            })
            .collect())
    }

    pub async fn save_invoice(&self, invoice: &Invoice) -> Result<()> {
        sqlx::query(
            "INSERT INTO invoices (id, org, customer_id, currency, total_cents, balance_cents)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET balance_cents = excluded.balance_cents",
        )
        .bind(&invoice.id)
        .bind(&invoice.org)
        .bind(&invoice.customer_id)
        .bind(&invoice.currency)
        .bind(invoice.total_cents)
        .bind(invoice.balance_cents)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn invoice(&self, org: &str, id: &str) -> Result<Option<Invoice>> {
        Ok(self
            .invoices(org)
            .await?
            .into_iter()
            .find(|invoice| invoice.id == id))
    }

    pub async fn invoices(&self, org: &str) -> Result<Vec<Invoice>> {
        let rows = sqlx::query(
            "SELECT id, org, customer_id, currency, total_cents, balance_cents FROM invoices
             WHERE org = ? ORDER BY id",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Invoice {
                id: row.get(0),
                org: row.get(1),
                customer_id: row.get(2),
                currency: row.get(3),
                total_cents: row.get(4),
                balance_cents: row.get(5),
            })
            .collect())
    }

    /// Records a payment and lowers the invoice's balance by it.
    pub async fn add_payment(&self, id: &str, invoice_id: &str, amount_cents: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO payments (id, invoice_id, amount_cents) VALUES (?, ?, ?)")
            .bind(id)
            .bind(invoice_id)
            .bind(amount_cents)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE invoices SET balance_cents = balance_cents - ? WHERE id = ?")
            .bind(amount_cents)
            .bind(invoice_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where reading `org`'s change feed resumes (0: from its start).
    pub async fn change_cursor(&self, org: &str) -> Result<u64> {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT cursor FROM change_cursors WHERE org = ?")
                .bind(org)
                .fetch_optional(&self.pool)
                .await?;
        Ok(cursor.unwrap_or(0) as u64)
    }

    pub async fn save_change_cursor(&self, org: &str, cursor: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO change_cursors (org, cursor) VALUES (?, ?)
             ON CONFLICT (org) DO UPDATE SET cursor = excluded.cursor",
        )
        .bind(org)
        .bind(cursor as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_payment_lowers_the_invoice_balance() -> Result<()> {
        let store = Store::open(":memory:").await?;
        store
            .save_invoice(&Invoice {
                id: "books-1".into(),
                org: "o".into(),
                customer_id: "books-0".into(),
                currency: "USD".into(),
                total_cents: 10_000,
                balance_cents: 10_000,
            })
            .await?;
        store.add_payment("books-2", "books-1", 2_500).await?;
        let invoice = store.invoice("o", "books-1").await?.expect("the invoice");
        assert_eq!(invoice.balance_cents, 7_500);
        Ok(())
    }
}
