//! The Merkle tree over the log ([`perpetua_core::merkle`], RFC 9162), kept in memory by every
//! server that serves the audit routes: its levels are filled from the store's event hashes
//! (about 64 bytes a leaf with its levels: 64 MiB at a million events) and brought up to the
//! head before each proof, reading only the events committed since the last one. Roots and
//! proofs are then read from the stored levels in O(log n).

use crate::store::{Store, StoreError};
use perpetua_core::merkle::MerkleTree;
use tokio::sync::{Mutex, RwLock, RwLockReadGuard};

/// Event hashes read from the store at a time.
const PAGE: u32 = 50_000;

/// The tree, and one catch-up at a time.
#[derive(Debug, Default)]
pub struct AuditTree {
    tree: RwLock<MerkleTree>,
    catching_up: Mutex<()>,
}

impl AuditTree {
    /// The tree holding at least the first `size` events of `store`'s log (`size` at most its
    /// head): those not in it yet are read and appended first.
    pub async fn reaching(&self, store: &Store, size: u64) -> Result<RwLockReadGuard<'_, MerkleTree>, StoreError> {
        if self.tree.read().await.size() < size {
            let _one = self.catching_up.lock().await;
            loop {
                let next = self.tree.read().await.size() + 1;
                if next > size {
                    break;
                }
                let hashes = store.event_hashes(next, PAGE).await?;
                if hashes.is_empty() {
                    return Err(StoreError::LogGap { missing: next });
                }
                let mut tree = self.tree.write().await;
                for hash in &hashes {
                    tree.push_event(hash);
                }
            }
        }
        Ok(self.tree.read().await)
    }
}
