//! Opening the SQL database: SQLite under the data dir by default, PostgreSQL
//! when the URL says so. Parts share one database; each owns its tables and
//! its migrations, numbered in its own range (hub 1000s, connec 2000s, impac
//! 3000s), and runs them with `ignore_missing` so that the others' do not trouble it.

use std::borrow::Cow;
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
    let opened = AnyPoolOptions::new()
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
        .connect_with(options.clone())
        .await;
    match opened {
        Ok(pool) => Ok(pool),
        // The pool retried until its timeout and kept only that: one more
        // connection says why (refused, unknown host, authentication).
        Err(sqlx::Error::PoolTimedOut) => {
            let why = match <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options).await
            {
                Err(e) => e.to_string(),
                Ok(_) => "it answered only now, after 10 s".to_owned(),
            };
            Err(DbError::Open {
                url: redact(url),
                reason: format!("no connection within 10 s ({why}); is the server running, at that host and port?"),
            })
        }
        Err(e) => Err(DbError::Open {
            url: redact(url),
            reason: e.to_string(),
        }),
    }
}

/// Whether `pool` is a SQLite database.
pub fn is_sqlite(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// `sql` as `pool`'s database best takes it: on SQLite, the numbered
/// placeholders `$1, $2, ...` become plain `?`.
///
/// sqlx-sqlite binds a numbered parameter by asking SQLite for its name, a
/// linear scan of the statement's named parameters: a multi-row upsert with
/// a thousand of them spent most of its time there. Plain `?` are bound by
/// position. Only for statements whose placeholders appear once each, in
/// order ($1 first), and where no `$` followed by a digit appears in a literal.
pub fn positional(sql: &str, sqlite: bool) -> Cow<'_, str> {
    if !sqlite {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1u32;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 0 {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        let number: u32 = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
        debug_assert_eq!(
            number, expected,
            "placeholders must run $1, $2, ... in order: {sql}"
        );
        expected += 1;
        out.push_str(&rest[..at]);
        out.push('?');
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The `VALUES` list of a multi-row statement: `rows` groups of `columns`
/// placeholders, numbered (`($1, $2), ($3, $4)`) or, on SQLite, positional
/// (`(?, ?), (?, ?)`; see [`positional`] for why).
pub fn row_placeholders(rows: usize, columns: usize, sqlite: bool) -> String {
    let row = |i: usize| -> String {
        let params: Vec<String> = (1..=columns)
            .map(|k| {
                if sqlite {
                    "?".to_owned()
                } else {
                    format!("${}", i * columns + k)
                }
            })
            .collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// Split `rows` into chunks for multi-row statements: powers of two up to
/// `max` (a power of two), largest first. A statement's text depends on its
/// row count, and each connection caches prepared statements by text; with
/// any count from 1 to `max` most statements would be prepared anew, with
/// powers of two there are only log2(max) + 1 of them.
pub fn power_of_two_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                // Only a password is hidden; a URL without one is shown as it is.
                Some((user, _password)) => {
                    format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_positional_on_sqlite_only() {
        let sql =
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO UPDATE SET a = '$'";
        assert_eq!(
            positional(sql, true),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO UPDATE SET a = '$'"
        );
        assert_eq!(positional(sql, false), sql);
        let many: Vec<String> = (1..=12).map(|i| format!("${i}")).collect();
        assert_eq!(
            positional(&format!("VALUES ({})", many.join(", ")), true),
            format!("VALUES ({})", ["?"; 12].join(", "))
        );
    }

    #[test]
    fn row_placeholders_are_numbered_or_positional() {
        assert_eq!(row_placeholders(2, 3, false), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(row_placeholders(2, 3, true), "(?, ?, ?), (?, ?, ?)");
    }

    #[test]
    fn rows_split_into_power_of_two_chunks() {
        let rows: Vec<u32> = (0..205).collect();
        let sizes: Vec<usize> = power_of_two_chunks(&rows, 64).map(<[u32]>::len).collect();
        assert_eq!(sizes, [64, 64, 64, 8, 4, 1]);
        let flat: Vec<u32> = power_of_two_chunks(&rows, 64).flatten().copied().collect();
        assert_eq!(flat, rows);
        assert_eq!(power_of_two_chunks(&rows[..0], 64).count(), 0);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://mno:s3cret@127.0.0.1:5432/mno"),
            "postgres://mno:***@127.0.0.1:5432/mno"
        );
        assert_eq!(redact("sqlite://data/mno.db"), "sqlite://data/mno.db");
        assert_eq!(
            redact("postgres://mno@127.0.0.1:5432/mno"),
            "postgres://mno@127.0.0.1:5432/mno",
            "no password, nothing to hide"
        );
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
