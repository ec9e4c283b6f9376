//! What the three backends share: the SQL they have in common (written once, with `?`
//! placeholders, numbered for PostgreSQL), the queries that differ only in their Rust types
//! (generated per backend by [`common_queries!`]), the append transaction and the lease.

use super::{Backend, IdempotencyRecord, StoreError};
use perpetua_core::audit::HashChain;
use perpetua_core::event::StreamId;
use sqlx::{MySql, Postgres, Sqlite, Transaction};
use std::collections::HashMap;

/// The columns of an event row, in the order [`super::EventRow`] reads them.
const EVENT_COLUMNS: &str = "position, event_id, event_type, schema_version, aggregate_type, aggregate_id, \
     version, timestamp_ms, payload, metadata, prev_hash, hash";

/// The columns of a signed checkpoint's row, in the order `checkpoint_row` reads them.
const SIGNED_CHECKPOINT_COLUMNS: &str = "tree_size, chain_hash, root_hash, timestamp_ms, key_id, public_key, signature";

/// The SQL of one backend.
pub(super) struct Queries {
    pub head: String,
    pub lock_head: String,
    pub update_head: String,
    pub bump_epoch: String,
    pub read_all: String,
    pub event_hashes: String,
    pub read_stream: String,
    pub stream_version: String,
    pub read_by_type: String,
    pub read_by_correlation: String,
    pub idempotency_record: String,
    pub idempotency_keys: String,
    pub load_snapshot: String,
    pub save_snapshot: String,
    pub checkpoint: String,
    pub save_checkpoint: String,
    pub save_signed_checkpoint: String,
    pub signed_checkpoints: String,
    pub latest_signed_checkpoint: String,
}

impl Queries {
    pub fn new(backend: Backend) -> Queries {
        let columns = EVENT_COLUMNS;
        let head = "SELECT position, hash, writer_epoch FROM log_head WHERE id = 1";
        let upsert = |table: &str, key: &[&str], columns: &[&str]| {
            let marks = vec!["?"; columns.len()].join(", ");
            let others: Vec<&&str> = columns.iter().filter(|c| !key.contains(c)).collect();
            let update = match backend {
                Backend::MySql => {
                    let set: Vec<String> = others.iter().map(|c| format!("{c} = VALUES({c})")).collect();
                    format!("ON DUPLICATE KEY UPDATE {}", set.join(", "))
                }
                _ => {
                    let set: Vec<String> = others.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                    format!("ON CONFLICT ({}) DO UPDATE SET {}", key.join(", "), set.join(", "))
                }
            };
            format!("INSERT INTO {table} ({}) VALUES ({marks}) {update}", columns.join(", "))
        };
        let sql = |text: String| numbered(backend, &text);
        Queries {
            head: head.to_owned(),
            lock_head: match backend {
                // SQLite has no row locks: the append transaction is `BEGIN IMMEDIATE`.
                Backend::Sqlite => head.to_owned(),
                _ => format!("{head} FOR UPDATE"),
            },
            // The head moves only from where this transaction found it, and only while the
            // writer's epoch is still the one it found under the lock.
            update_head: sql(
                "UPDATE log_head SET position = ?, hash = ? WHERE id = 1 AND position = ? AND writer_epoch = ?".into(),
            ),
            bump_epoch: "UPDATE log_head SET writer_epoch = writer_epoch + 1 WHERE id = 1".to_owned(),
            read_all: sql(format!("SELECT {columns} FROM events WHERE position >= ? ORDER BY position LIMIT ?")),
            event_hashes: sql("SELECT position, hash FROM events WHERE position >= ? ORDER BY position LIMIT ?".into()),
            read_stream: sql(format!(
                "SELECT {columns} FROM events WHERE aggregate_type = ? AND aggregate_id = ? \
                 AND version >= ? AND version <= ? AND timestamp_ms <= ? ORDER BY version"
            )),
            stream_version: sql(
                "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_type = ? AND aggregate_id = ?".into(),
            ),
            read_by_type: sql(format!(
                "SELECT {columns} FROM events WHERE event_type = ? AND position >= ? ORDER BY position LIMIT ?"
            )),
            read_by_correlation: sql(format!(
                "SELECT {columns} FROM events WHERE correlation_id = ? ORDER BY position"
            )),
            idempotency_record: sql("SELECT idempotency_key, fingerprint, outcome, position FROM idempotency_records \
                 WHERE idempotency_key = ?"
                .into()),
            idempotency_keys: sql(
                "SELECT idempotency_key, fingerprint, position FROM idempotency_records WHERE position > ?".into(),
            ),
            load_snapshot: sql(
                "SELECT aggregate_type, aggregate_id, version, position, format_version, state, taken_at_ms \
                 FROM snapshots WHERE aggregate_type = ? AND aggregate_id = ? AND version <= ? \
                 ORDER BY version DESC LIMIT 1"
                    .into(),
            ),
            save_snapshot: sql(upsert(
                "snapshots",
                &["aggregate_type", "aggregate_id", "version"],
                &["aggregate_type", "aggregate_id", "version", "position", "format_version", "state", "taken_at_ms"],
            )),
            checkpoint: sql("SELECT position FROM projection_checkpoints WHERE name = ?".into()),
            save_checkpoint: sql(upsert("projection_checkpoints", &["name"], &["name", "position"])),
            save_signed_checkpoint: sql(format!(
                "INSERT INTO signed_checkpoints ({SIGNED_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )),
            signed_checkpoints: sql(format!(
                "SELECT {SIGNED_CHECKPOINT_COLUMNS} FROM signed_checkpoints WHERE tree_size >= ? \
                 ORDER BY tree_size LIMIT ?"
            )),
            latest_signed_checkpoint: sql(format!(
                "SELECT {SIGNED_CHECKPOINT_COLUMNS} FROM signed_checkpoints WHERE tree_size <= ? \
                 ORDER BY tree_size DESC LIMIT 1"
            )),
        }
    }
}

/// `?` placeholders as the backend wants them: `$1, $2, …` on PostgreSQL.
fn numbered(backend: Backend, sql: &str) -> String {
    if backend != Backend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Generates, for one backend module, the queries whose SQL is shared and whose Rust differs
/// only in the database type: reads, idempotency, snapshots, checkpoints, and the steps of an
/// append transaction. The module must define `Q: LazyLock<Queries>` and a store struct with
/// a `pool`, and `text(row, index)`, which reads a text column.
macro_rules! common_queries {
    ($Db:ty, $Store:ident) => {
        use super::{EventRow, IdempotencyRecord, SnapshotRecord, StoreError, StreamRange};
        use perpetua_core::audit::{Hash, HashChain};
        use perpetua_core::checkpoint::Checkpoint;
        use perpetua_core::event::{StoredEvent, StreamId};
        use sqlx::Row as _;
        use std::collections::HashMap;

        type Row = <$Db as sqlx::Database>::Row;

        fn checkpoint_row(row: &Row) -> Result<Checkpoint, StoreError> {
            let tree_size = super::to_u64(row.try_get(0)?, "checkpoint tree size")?;
            let hash = |index: usize| -> Result<Hash, StoreError> {
                let text = text(row, index)?;
                Hash::from_hex(&text).ok_or_else(|| StoreError::CorruptRow {
                    position: i64::try_from(tree_size).unwrap_or(i64::MAX),
                    detail: format!("a signed checkpoint's hash {text:?}"),
                })
            };
            Ok(Checkpoint {
                head: perpetua_core::checkpoint::Head {
                    tree_size,
                    chain_hash: hash(1)?,
                    root_hash: hash(2)?,
                    timestamp: perpetua_core::time::Timestamp(row.try_get(3)?),
                },
                key_id: text(row, 4)?,
                public_key: text(row, 5)?,
                signature: text(row, 6)?,
            })
        }

        fn event_row(row: &Row) -> Result<EventRow<'static>, sqlx::Error> {
            Ok(EventRow {
                position: row.try_get(0)?,
                event_id: row.try_get(1)?,
                event_type: text(row, 2)?.into(),
                schema_version: row.try_get(3)?,
                aggregate_type: text(row, 4)?.into(),
                aggregate_id: text(row, 5)?.into(),
                version: row.try_get(6)?,
                timestamp_ms: row.try_get(7)?,
                payload: text(row, 8)?.into(),
                metadata: text(row, 9)?.into(),
                prev_hash: row.try_get::<Vec<u8>, _>(10)?.into(),
                hash: row.try_get::<Vec<u8>, _>(11)?.into(),
            })
        }

        fn events(rows: Vec<Row>) -> Result<Vec<StoredEvent>, StoreError> {
            rows.iter().map(|row| event_row(row)?.into_event()).collect()
        }

        fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
            <[u8; 32]>::try_from(bytes)
                .map(Hash)
                .map_err(|b| StoreError::CorruptRow { position: 0, detail: format!("a hash of {} bytes", b.len()) })
        }

        fn head_of(row: &Row) -> Result<HashChain, StoreError> {
            Ok(HashChain {
                last_position: super::to_u64(row.try_get(0)?, "head position")?,
                last_hash: hash_of(row.try_get(1)?)?,
            })
        }

        fn epoch_of(row: &Row) -> Result<u64, StoreError> {
            super::to_u64(row.try_get(2)?, "writer epoch")
        }

        fn idempotency_of(row: &Row) -> Result<IdempotencyRecord, StoreError> {
            Ok(IdempotencyRecord {
                key: text(row, 0)?,
                fingerprint: hash_of(row.try_get(1)?)?,
                outcome: text(row, 2)?,
                position: super::to_u64(row.try_get(3)?, "idempotency position")?,
            })
        }

        fn stream_key(stream: &StreamId) -> (&'static str, String) {
            (stream.aggregate_type.as_str(), stream.aggregate_id.to_string())
        }

        impl $Store {
            pub(super) async fn head(&self) -> Result<HashChain, StoreError> {
                head_of(&sqlx::query(&Q.head).fetch_one(&self.pool).await?)
            }

            pub(super) async fn writer_epoch(&self) -> Result<u64, StoreError> {
                epoch_of(&sqlx::query(&Q.head).fetch_one(&self.pool).await?)
            }

            pub(super) async fn read_all(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
                let rows = sqlx::query(&Q.read_all)
                    .bind(super::to_i64(from, "position")?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                events(rows)
            }

            pub(super) async fn read_stream(
                &self,
                stream: StreamId,
                range: StreamRange,
            ) -> Result<Vec<StoredEvent>, StoreError> {
                let (aggregate_type, aggregate_id) = stream_key(&stream);
                let to = range.to_version.map_or(Ok(i64::MAX), |v| super::to_i64(v, "version"))?;
                let rows = sqlx::query(&Q.read_stream)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(super::to_i64(range.from_version, "version")?)
                    .bind(to)
                    .bind(range.until.map_or(i64::MAX, |t| t.millis()))
                    .fetch_all(&self.pool)
                    .await?;
                events(rows)
            }

            pub(super) async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
                let (aggregate_type, aggregate_id) = stream_key(&stream);
                let row = sqlx::query(&Q.stream_version)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .fetch_one(&self.pool)
                    .await?;
                super::to_u64(row.try_get(0)?, "version")
            }

            pub(super) async fn event_hashes(&self, from: u64, limit: u32) -> Result<Vec<(u64, Hash)>, StoreError> {
                let rows = sqlx::query(&Q.event_hashes)
                    .bind(super::to_i64(from, "position")?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| Ok((super::to_u64(row.try_get(0)?, "position")?, hash_of(row.try_get(1)?)?)))
                    .collect()
            }

            pub(super) async fn read_by_type(
                &self,
                event_type: &str,
                from: u64,
                limit: u32,
            ) -> Result<Vec<StoredEvent>, StoreError> {
                let rows = sqlx::query(&Q.read_by_type)
                    .bind(event_type)
                    .bind(super::to_i64(from, "position")?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                events(rows)
            }

            pub(super) async fn read_by_correlation(
                &self,
                correlation_id: uuid::Uuid,
            ) -> Result<Vec<StoredEvent>, StoreError> {
                events(sqlx::query(&Q.read_by_correlation).bind(correlation_id).fetch_all(&self.pool).await?)
            }

            pub(super) async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
                let row = sqlx::query(&Q.idempotency_record).bind(key).fetch_optional(&self.pool).await?;
                row.as_ref().map(idempotency_of).transpose()
            }

            pub(super) async fn idempotency_keys(&self, after: u64) -> Result<Vec<super::KeyRecord>, StoreError> {
                let rows = sqlx::query(&Q.idempotency_keys)
                    .bind(super::to_i64(after, "position")?)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(super::KeyRecord {
                            key: text(row, 0)?,
                            fingerprint: hash_of(row.try_get(1)?)?,
                            position: super::to_u64(row.try_get(2)?, "idempotency position")?,
                        })
                    })
                    .collect()
            }

            /// All of `snapshots` in one transaction (one commit, one sync, however many).
            pub(super) async fn save_snapshots(&self, snapshots: &[SnapshotRecord]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for s in snapshots {
                    sqlx::query(&Q.save_snapshot)
                        .bind(&s.aggregate_type)
                        .bind(&s.aggregate_id)
                        .bind(super::to_i64(s.version, "version")?)
                        .bind(super::to_i64(s.position, "position")?)
                        .bind(i32::try_from(s.format_version).map_err(|_| {
                            StoreError::InvalidBatch(format!(
                                "snapshot format version {} is out of range",
                                s.format_version
                            ))
                        })?)
                        .bind(&s.state)
                        .bind(s.taken_at.millis())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn load_snapshot(
                &self,
                aggregate_type: &str,
                aggregate_id: &str,
                version: Option<u64>,
            ) -> Result<Option<SnapshotRecord>, StoreError> {
                let version = version.map_or(Ok(i64::MAX), |v| super::to_i64(v, "version"))?;
                let row = sqlx::query(&Q.load_snapshot)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let format_version: i32 = row.try_get(4)?;
                Ok(Some(SnapshotRecord {
                    aggregate_type: text(&row, 0)?,
                    aggregate_id: text(&row, 1)?,
                    version: super::to_u64(row.try_get(2)?, "snapshot version")?,
                    position: super::to_u64(row.try_get(3)?, "snapshot position")?,
                    format_version: u32::try_from(format_version).map_err(|_| StoreError::CorruptRow {
                        position: 0,
                        detail: format!("snapshot format version {format_version}"),
                    })?,
                    state: text(&row, 5)?,
                    taken_at: perpetua_core::time::Timestamp(row.try_get(6)?),
                }))
            }

            pub(super) async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
                let row = sqlx::query(&Q.checkpoint).bind(projection).fetch_optional(&self.pool).await?;
                row.map_or(Ok(0), |row| super::to_u64(row.try_get(0)?, "checkpoint"))
            }

            pub(super) async fn save_checkpoint(&self, projection: &str, position: u64) -> Result<(), StoreError> {
                sqlx::query(&Q.save_checkpoint)
                    .bind(projection)
                    .bind(super::to_i64(position, "position")?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(super) async fn save_signed_checkpoint(&self, c: &Checkpoint) -> Result<(), StoreError> {
                sqlx::query(&Q.save_signed_checkpoint)
                    .bind(super::to_i64(c.head.tree_size, "tree size")?)
                    .bind(c.head.chain_hash.to_string())
                    .bind(c.head.root_hash.to_string())
                    .bind(c.head.timestamp.millis())
                    .bind(&c.key_id)
                    .bind(&c.public_key)
                    .bind(&c.signature)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(super) async fn signed_checkpoints(
                &self,
                from: u64,
                limit: u32,
            ) -> Result<Vec<Checkpoint>, StoreError> {
                let rows = sqlx::query(&Q.signed_checkpoints)
                    .bind(super::to_i64(from, "tree size")?)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(checkpoint_row).collect()
            }

            pub(super) async fn latest_signed_checkpoint(
                &self,
                at_most: u64,
            ) -> Result<Option<Checkpoint>, StoreError> {
                let row = sqlx::query(&Q.latest_signed_checkpoint)
                    .bind(super::to_i64(at_most, "tree size")?)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(checkpoint_row).transpose()
            }
        }

        /// Steps of an append transaction on this backend.
        pub(super) mod tx {
            use super::*;
            pub(in crate::store) type Tx = sqlx::Transaction<'static, $Db>;

            /// Runs one statement without results (savepoints).
            pub(in crate::store) async fn execute(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
                sqlx::query(sql).execute(&mut **tx).await?;
                Ok(())
            }

            /// The head and the writer's epoch, under the head's lock.
            pub(in crate::store) async fn locked_head(tx: &mut Tx) -> Result<(HashChain, u64), StoreError> {
                let row = sqlx::query(&Q.lock_head).fetch_one(&mut **tx).await?;
                Ok((head_of(&row)?, epoch_of(&row)?))
            }

            /// Makes this transaction's writer the only one that can move the head: bumps the
            /// epoch under the head's lock (so after any append in flight has committed or
            /// failed), commits, and returns the new epoch.
            pub(in crate::store) async fn bump_epoch(mut tx: Tx) -> Result<u64, StoreError> {
                sqlx::query(&Q.bump_epoch).execute(&mut *tx).await?;
                let (_, epoch) = locked_head(&mut tx).await?;
                tx.commit().await?;
                Ok(epoch)
            }

            pub(in crate::store) async fn idempotency_records(
                tx: &mut Tx,
                keys: &[&str],
            ) -> Result<HashMap<String, IdempotencyRecord>, StoreError> {
                let mut found = HashMap::new();
                for chunk in keys.chunks(1000) {
                    let mut query = sqlx::QueryBuilder::<$Db>::new(
                        "SELECT idempotency_key, fingerprint, outcome, position FROM idempotency_records \
                         WHERE idempotency_key IN (",
                    );
                    let mut list = query.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    query.push(")");
                    for row in query.build().fetch_all(&mut **tx).await? {
                        let record = idempotency_of(&row)?;
                        found.insert(record.key.clone(), record);
                    }
                }
                Ok(found)
            }

            pub(in crate::store) async fn stream_versions(
                tx: &mut Tx,
                streams: &[StreamId],
            ) -> Result<HashMap<StreamId, u64>, StoreError> {
                // Only read to name a conflict or check a stale batch: one index seek per stream.
                let mut found = HashMap::with_capacity(streams.len());
                for stream in streams {
                    let (aggregate_type, aggregate_id) = stream_key(stream);
                    let row = sqlx::query(&Q.stream_version)
                        .bind(aggregate_type)
                        .bind(aggregate_id)
                        .fetch_one(&mut **tx)
                        .await?;
                    found.insert(*stream, super::super::to_u64(row.try_get(0)?, "version")?);
                }
                Ok(found)
            }

            pub(in crate::store) async fn insert_idempotency(
                tx: &mut Tx,
                records: &[IdempotencyRecord],
            ) -> Result<(), StoreError> {
                for chunk in records.chunks(1000) {
                    let mut query = sqlx::QueryBuilder::<$Db>::new(
                        "INSERT INTO idempotency_records (idempotency_key, fingerprint, outcome, position) ",
                    );
                    query.push_values(chunk, |mut row, record| {
                        row.push_bind(record.key.as_str())
                            .push_bind(&record.fingerprint.0[..])
                            .push_bind(record.outcome.as_str())
                            .push_bind(i64::try_from(record.position).unwrap_or(i64::MAX));
                    });
                    query.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Moves the head from `start` to `head` (compare-and-set, also on the writer's
            /// `epoch`) and commits.
            pub(in crate::store) async fn commit(
                mut tx: Tx,
                start: HashChain,
                head: HashChain,
                epoch: u64,
            ) -> Result<(), StoreError> {
                if head != start {
                    let moved = sqlx::query(&Q.update_head)
                        .bind(super::super::to_i64(head.last_position, "position")?)
                        .bind(&head.last_hash.0[..])
                        .bind(super::super::to_i64(start.last_position, "position")?)
                        .bind(super::super::to_i64(epoch, "writer epoch")?)
                        .execute(&mut *tx)
                        .await?;
                    if moved.rows_affected() != 1 {
                        let (actual, actual_epoch) = locked_head(&mut tx).await?;
                        return Err(crate::store::head_not_moved(start, epoch, actual, actual_epoch));
                    }
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

/// Generates the multi-row `INSERT … VALUES` of events, for the backends that take it
/// (SQLite and MariaDB; PostgreSQL inserts arrays through `UNNEST`).
macro_rules! values_insert {
    ($Db:ty, $rows_per_statement:expr) => {
        pub(super) async fn insert_events(tx: &mut tx::Tx, events: &[&StoredEvent]) -> Result<(), StoreError> {
            for chunk in events.chunks($rows_per_statement) {
                let values = chunk.iter().map(|e| super::EventValues::of(e)).collect::<Result<Vec<_>, _>>()?;
                let mut query = sqlx::QueryBuilder::<$Db>::new(
                    "INSERT INTO events (position, event_id, event_type, schema_version, aggregate_type, \
                     aggregate_id, version, timestamp_ms, payload, metadata, correlation_id, prev_hash, hash) ",
                );
                query.push_values(&values, |mut row, v| {
                    row.push_bind(v.position)
                        .push_bind(v.event_id)
                        .push_bind(v.event_type)
                        .push_bind(v.schema_version)
                        .push_bind(v.aggregate_type)
                        .push_bind(v.aggregate_id.as_str())
                        .push_bind(v.version)
                        .push_bind(v.timestamp_ms)
                        .push_bind(v.payload)
                        .push_bind(v.metadata.as_str())
                        .push_bind(v.correlation_id)
                        .push_bind(v.prev_hash)
                        .push_bind(v.hash);
                });
                query.build().execute(&mut **tx).await?;
            }
            Ok(())
        }
    };
}

pub(super) use {common_queries, values_insert};

/// An append transaction on one of the backends.
#[derive(Debug)]
pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    MySql(Transaction<'static, MySql>),
}

/// Calls the same step of the append transaction on whichever backend it runs on.
macro_rules! on_tx {
    ($self:expr, $step:ident($($arg:expr),*)) => {
        match $self {
            Tx::Sqlite(tx) => super::sqlite::tx::$step(tx, $($arg),*).await,
            Tx::Postgres(tx) => super::postgres::tx::$step(tx, $($arg),*).await,
            Tx::MySql(tx) => super::mysql::tx::$step(tx, $($arg),*).await,
        }
    };
}

impl Tx {
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        on_tx!(self, execute("SAVEPOINT perpetua_append"))
    }

    pub async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        on_tx!(self, execute("RELEASE SAVEPOINT perpetua_append"))
    }

    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        on_tx!(self, execute("ROLLBACK TO SAVEPOINT perpetua_append"))
    }

    pub async fn idempotency_records(
        &mut self,
        keys: &[&str],
    ) -> Result<HashMap<String, IdempotencyRecord>, StoreError> {
        on_tx!(self, idempotency_records(keys))
    }

    pub async fn stream_versions(&mut self, streams: &[StreamId]) -> Result<HashMap<StreamId, u64>, StoreError> {
        on_tx!(self, stream_versions(streams))
    }

    pub async fn insert_events(&mut self, events: &[&perpetua_core::event::StoredEvent]) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => super::sqlite::insert_events(tx, events).await,
            Tx::Postgres(tx) => super::postgres::insert_events(tx, events).await,
            Tx::MySql(tx) => super::mysql::insert_events(tx, events).await,
        }
    }

    pub async fn insert_idempotency(&mut self, records: &[IdempotencyRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        on_tx!(self, insert_idempotency(records))
    }

    pub async fn commit(self, start: HashChain, head: HashChain, epoch: u64) -> Result<(), StoreError> {
        on_tx!(self, commit(start, head, epoch))
    }

    pub async fn bump_epoch(self) -> Result<u64, StoreError> {
        on_tx!(self, bump_epoch())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
            Tx::MySql(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// The right to append, held by one writer at a time; released when dropped.
///
/// Two things make it: a lock only one session can hold (a file lock, an advisory lock, a
/// named lock), and the writer epoch the holder set in `log_head` when it took the lock.
/// Every append of the store that took the lease compares that epoch under the head's lock,
/// so a writer whose lock died with its session cannot commit once another writer has taken
/// over — even with a commit already in flight.
#[derive(Debug)]
pub struct WriterLease {
    held: Held,
    kind: LeaseKind,
    epoch: u64,
}

/// Which lease a lock is: the writer's (the right to append) or the projector's (the right to
/// write the read models). Each is a lock of its own, taken and checked the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseKind {
    /// The single writer's.
    Writer,
    /// The read models' projector's.
    Projector,
}

/// What holds the lock: it lives as long as this value does.
#[derive(Debug)]
pub(super) enum Held {
    /// An exclusive lock on the file beside the SQLite database.
    File(std::fs::File),
    /// The session holding `pg_advisory_lock`.
    Postgres(sqlx::PgConnection),
    /// The session holding `GET_LOCK`.
    MySql(sqlx::MySqlConnection),
}

impl WriterLease {
    pub(super) fn new(held: Held, kind: LeaseKind) -> Self {
        WriterLease { held, kind, epoch: 0 }
    }

    pub(super) fn with_epoch(mut self, epoch: u64) -> Self {
        self.epoch = epoch;
        self
    }

    /// The writer epoch this lease set in the store.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Checks that the session holding the lock is alive and still holds it. (A file lock
    /// lives as long as the process.)
    pub async fn check_session(&mut self) -> Result<(), StoreError> {
        let lost = |e: sqlx::Error| StoreError::LeaseLost(format!("the session holding the lock is gone: {e}"));
        match &mut self.held {
            Held::File(_) => Ok(()),
            Held::Postgres(session) => {
                let held: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = $1)",
                )
                .bind(super::postgres::lease_key(self.kind))
                .fetch_one(session)
                .await
                .map_err(lost)?;
                held.then_some(()).ok_or_else(|| StoreError::LeaseLost("the advisory lock is not held".into()))
            }
            Held::MySql(session) => {
                let held: Option<i64> = sqlx::query_scalar(&format!(
                    "SELECT IS_USED_LOCK({}) = CONNECTION_ID()",
                    super::mysql::lease_name(self.kind)
                ))
                .fetch_one(session)
                .await
                .map_err(lost)?;
                (held == Some(1))
                    .then_some(())
                    .ok_or_else(|| StoreError::LeaseLost("the named lock is not held".into()))
            }
        }
    }

    /// Gives the lease up now: unlocks, then closes the session. (Dropping the lease frees it
    /// too, once the server notices the session is gone.)
    pub async fn release(self) {
        use sqlx::Connection as _;
        // Errors only mean the session is already gone, which frees the lock as well.
        match self.held {
            Held::File(file) => drop(file),
            Held::Postgres(mut session) => {
                let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut session).await;
                let _ = session.close().await;
            }
            Held::MySql(mut session) => {
                let _ = sqlx::query("SELECT RELEASE_ALL_LOCKS()").execute(&mut session).await;
                let _ = session.close().await;
            }
        }
    }
}
