//! Opening the SQL database: SQLite under the data dir by default, PostgreSQL
//! when the URL says so. Parts share one database; each owns its tables and
//! its migrations, numbered in its own range (hub 1000s, connec 2000s, impac
//! 3000s), and runs them with `ignore_missing` so that the others' do not trouble it.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL {url:?} is not usable: {reason}; use sqlite://<path> or postgres://user@host:port/db")]
    BadUrl { url: String, reason: String },
    #[error("cannot open the database at {url}: {reason}")]
    Open { url: String, reason: String },
}

/// The SQLite URL of the platform's database under `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("mno.db").display())
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Open a pool. SQLite gets WAL, a busy timeout and foreign keys on every connection.
pub async fn open(url: &str) -> Result<AnyPool, DbError> {
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| DbError::BadUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    let options = options.disable_statement_logging();
    let sqlite = url.starts_with("sqlite:");
    AnyPoolOptions::new()
        .max_connections(if sqlite { 8 } else { 16 })
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if sqlite {
                    conn.execute("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| DbError::Open {
            url: redact(url),
            reason: e.to_string(),
        })
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://mno:s3cret@127.0.0.1:5432/mno"),
            "postgres://mno:***@127.0.0.1:5432/mno"
        );
        assert_eq!(redact("sqlite://data/mno.db"), "sqlite://data/mno.db");
    }

    #[tokio::test]
    async fn opens_sqlite_in_a_fresh_dir() {
        let dir = std::env::temp_dir().join(format!("mno-db-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let pool = open(&sqlite_url(&dir)).await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
        pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
