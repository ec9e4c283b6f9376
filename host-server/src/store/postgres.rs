//! PostgreSQL: refuses to open when `fsync`, `synchronous_commit` or `full_page_writes` is
//! off (a commit could then be acknowledged and lost). Appends lock the `log_head` row; events
//! go in as arrays through one `UNNEST` insert. The writer lease is a session advisory lock.

use super::backend::{common_queries, Held, LeaseKind, Queries, Tx, WriterLease};
use super::{Backend, Durability, EventValues, StoreOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::sync::LazyLock;

static Q: LazyLock<Queries> = LazyLock::new(|| Queries::new(Backend::Postgres));
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The advisory-lock key of the writer lease ("perpetua" in ASCII). Advisory locks are per
/// database, so each database holds its own lease.
pub(super) const LEASE_KEY: i64 = 0x7065_7270_6574_7561;
/// The advisory-lock key of the projector lease ("perpetub": the writer's key plus one).
pub(super) const PROJECTOR_LEASE_KEY: i64 = LEASE_KEY + 1;

/// The advisory-lock key of a lease.
pub(super) fn lease_key(kind: LeaseKind) -> i64 {
    match kind {
        LeaseKind::Writer => LEASE_KEY,
        LeaseKind::Projector => PROJECTOR_LEASE_KEY,
    }
}

#[derive(Clone, Debug)]
pub(super) struct PgStore {
    pub(super) pool: PgPool,
    pub(super) durability: Durability,
    connect: PgConnectOptions,
}

/// Reads a text column.
fn text(row: &<Postgres as sqlx::Database>::Row, index: usize) -> Result<String, sqlx::Error> {
    sqlx::Row::try_get(row, index)
}

common_queries!(Postgres, PgStore);

impl PgStore {
    pub(super) async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(&options.url)?.application_name("perpetua");
        let address = format!("{}:{}", connect.get_host(), connect.get_port());
        super::reach(address, sqlx::PgConnection::connect_with(&connect)).await?;
        let pool = PgPoolOptions::new().max_connections(options.max_connections).connect_with(connect.clone()).await?;
        let mut settings = Vec::new();
        let mut durable = true;
        for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
            let value: String = sqlx::query_scalar("SELECT current_setting($1)").bind(setting).fetch_one(&pool).await?;
            if value == "off" {
                if !options.allow_unsafe_durability {
                    return Err(StoreError::UnsafeDurability { setting: setting.into(), value });
                }
                durable = false;
            }
            settings.push((setting.to_owned(), value));
        }
        let replica: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&pool).await?;
        if replica {
            check_replica_schema(&pool).await?;
        } else {
            super::migrate(&MIGRATOR, &pool).await?;
        }
        Ok(PgStore { pool, durability: Durability { settings, durable }, connect })
    }

    pub(super) async fn begin_append(&self) -> Result<(Tx, HashChain, u64), StoreError> {
        // READ COMMITTED whatever the database's default: after waiting for the head lock,
        // each statement sees what the appender before committed.
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
        let (head, epoch) = tx::locked_head(&mut tx).await?;
        Ok((Tx::Postgres(tx), head, epoch))
    }

    pub(super) async fn acquire_lease(&self, kind: LeaseKind) -> Result<WriterLease, StoreError> {
        let mut session = PgConnection::connect_with(&self.connect).await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(lease_key(kind)).fetch_one(&mut session).await?;
        if !locked {
            let holder: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
            )
            .bind(lease_key(kind))
            .fetch_optional(&mut session)
            .await?;
            let holder = holder.map_or("another session".to_owned(), |pid| format!("backend pid {pid}"));
            return Err(StoreError::WriterLeaseHeld(format!("advisory lock held by {holder}")));
        }
        Ok(WriterLease::new(Held::Postgres(session), kind))
    }
}

/// A hot standby cannot be written, so it is not migrated: its schema (streamed from the
/// primary) must already be the one this build knows, else opening is refused in words.
async fn check_replica_schema(pool: &PgPool) -> Result<(), StoreError> {
    let known = super::newest_migration(&MIGRATOR);
    let migrated: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
    let found: i64 = if migrated {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?
    } else {
        0
    };
    if found == known {
        Ok(())
    } else {
        Err(StoreError::ReplicaSchema { found, known })
    }
}

/// All events in one statement: thirteen arrays unnested into rows.
pub(super) async fn insert_events(tx: &mut tx::Tx, events: &[&StoredEvent]) -> Result<(), StoreError> {
    const INSERT: &str = "INSERT INTO events (position, event_id, event_type, schema_version, aggregate_type, \
         aggregate_id, version, timestamp_ms, payload, metadata, correlation_id, prev_hash, hash) \
         SELECT p, i, t, s, at, ai, v, ts, pl, md, c, ph, h FROM UNNEST($1::int8[], $2::uuid[], \
         $3::text[], $4::int4[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::text[], \
         $11::uuid[], $12::bytea[], $13::bytea[]) AS u(p, i, t, s, at, ai, v, ts, pl, md, c, ph, h)";
    for chunk in events.chunks(5000) {
        let values = chunk.iter().map(|e| EventValues::of(e)).collect::<Result<Vec<_>, _>>()?;
        sqlx::query(INSERT)
            .bind(values.iter().map(|v| v.position).collect::<Vec<i64>>())
            .bind(values.iter().map(|v| v.event_id).collect::<Vec<uuid::Uuid>>())
            .bind(values.iter().map(|v| v.event_type).collect::<Vec<&str>>())
            .bind(values.iter().map(|v| v.schema_version).collect::<Vec<i32>>())
            .bind(values.iter().map(|v| v.aggregate_type).collect::<Vec<&str>>())
            .bind(values.iter().map(|v| v.aggregate_id.as_str()).collect::<Vec<&str>>())
            .bind(values.iter().map(|v| v.version).collect::<Vec<i64>>())
            .bind(values.iter().map(|v| v.timestamp_ms).collect::<Vec<i64>>())
            .bind(values.iter().map(|v| v.payload).collect::<Vec<&str>>())
            .bind(values.iter().map(|v| v.metadata.as_str()).collect::<Vec<&str>>())
            .bind(values.iter().map(|v| v.correlation_id).collect::<Vec<Option<uuid::Uuid>>>())
            .bind(values.iter().map(|v| v.prev_hash).collect::<Vec<&[u8]>>())
            .bind(values.iter().map(|v| v.hash).collect::<Vec<&[u8]>>())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
