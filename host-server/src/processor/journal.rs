//! What the single writer needs of the event store, as a trait: [`Store`] is the real one;
//! the writer's simulation (`tests/simulation`) runs the same processor over a journal in
//! memory that fails, stalls and crashes on a seeded schedule.

use crate::store::{Appended, CommandAppend, IdempotencyRecord, KeyRecord, SnapshotRecord, Store, StoreError};
use perpetua_core::audit::HashChain;
use perpetua_core::event::StoredEvent;
use std::future::Future;

/// The log as the writer sees it. Every method is the [`Store`] method of the same name, with
/// its guarantees: `append` writes all of a batch or none of it, continuing the head.
pub trait Journal: Clone + Send + Sync + 'static {
    /// The committed head.
    fn head(&self) -> impl Future<Output = Result<HashChain, StoreError>> + Send;
    /// Up to `limit` events from position `from`, contiguous.
    fn read_all(&self, from: u64, limit: u32) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;
    /// Appends a batch in one transaction.
    fn append(&self, commands: &[CommandAppend]) -> impl Future<Output = Result<Appended, StoreError>> + Send;
    /// Every idempotency key recorded after `position`.
    fn idempotency_keys(&self, after: u64) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
    /// One idempotency record with its stored outcome.
    fn idempotency_record(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
    /// The newest snapshot of an aggregate at or below `version`.
    fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: Option<u64>,
    ) -> impl Future<Output = Result<Option<SnapshotRecord>, StoreError>> + Send;
    /// Saves snapshots in one transaction, all or none.
    fn save_snapshots(&self, snapshots: &[SnapshotRecord]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl Journal for Store {
    async fn head(&self) -> Result<HashChain, StoreError> {
        Store::head(self).await
    }
    async fn read_all(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        Store::read_all(self, from, limit).await
    }
    async fn append(&self, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        Store::append(self, commands).await
    }
    async fn idempotency_keys(&self, after: u64) -> Result<Vec<KeyRecord>, StoreError> {
        Store::idempotency_keys(self, after).await
    }
    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Store::idempotency_record(self, key).await
    }
    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: Option<u64>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        Store::load_snapshot(self, aggregate_type, aggregate_id, version).await
    }
    async fn save_snapshots(&self, snapshots: &[SnapshotRecord]) -> Result<(), StoreError> {
        Store::save_snapshots(self, snapshots).await
    }
}
