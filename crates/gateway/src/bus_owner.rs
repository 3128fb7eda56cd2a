//! Which platform a bus belongs to. A platform is its database: the first
//! start writes a random id into it (table `platform_identity`) and into the
//! bus (KV bucket `MNO_PLATFORM`, key `database`). A process whose database
//! holds another id refuses to start: on a bus it shares with another
//! platform its durable consumers would take half of that platform's events,
//! silently, and each would see half of the records and reports.

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use sqlx::AnyPool;

const BUCKET: &str = "MNO_PLATFORM";
const KEY: &str = "database";

/// The platform id this database holds; made on the first start.
pub async fn database_identity(db: &AnyPool) -> Result<String> {
    let mut migrator = sqlx::migrate!("./migrations");
    // The parts' migrations share the table; they are not ours to check.
    migrator.set_ignore_missing(true);
    migrator
        .run(db)
        .await
        .map_err(|e| anyhow::anyhow!("platform database migrations failed: {e}"))?;
    if let Some(id) = read_identity(db).await? {
        return Ok(id);
    }
    let made = uuid::Uuid::new_v4().to_string();
    // Two processes starting on one new database: one insert wins, both read it.
    let _ = sqlx::query("INSERT INTO platform_identity (id, created_at) VALUES ($1, $2)")
        .bind(&made)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(db)
        .await;
    read_identity(db)
        .await?
        .context("the platform's identity was written but cannot be read back")
}

async fn read_identity(db: &AnyPool) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM platform_identity ORDER BY created_at LIMIT 1")
            .fetch_optional(db)
            .await
            .context("read the platform's identity from the database")?;
    Ok(row.map(|(id,)| id))
}

/// Record `identity` as the bus's platform, or check that it is the one
/// recorded there. `bus_url` and `database` only name things in the error.
pub async fn claim_bus(
    js: &jetstream::Context,
    identity: &str,
    replicas: usize,
    bus_url: &str,
    database: &str,
) -> Result<()> {
    let kv = js
        .create_or_update_key_value(kv::Config {
            bucket: BUCKET.into(),
            description: "The platform (its database's id) this bus belongs to".into(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..Default::default()
        })
        .await
        .context("open the bus's MNO_PLATFORM bucket")?;
    match kv.create(KEY, Bytes::from(identity.to_owned())).await {
        Ok(_) => {
            tracing::info!(platform = %identity, "the bus now belongs to this platform");
            return Ok(());
        }
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context("record the platform on the bus"),
    }
    let owner = kv
        .get(KEY)
        .await
        .context("read the bus's platform")?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if owner != identity {
        bail!(
            "the bus at {bus_url} belongs to another platform (database id {owner}); this process's database \
             {database} has id {identity}. Point MNO_NATS_URL at this platform's own bus, or MNO_DATABASE_URL at \
             the database of the platform that owns this bus (processes of one platform share one database)"
        );
    }
    Ok(())
}
