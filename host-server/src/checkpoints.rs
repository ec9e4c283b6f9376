//! Signed checkpoints ([`perpetua_core::checkpoint`], `docs/AUDIT.md` §10): the writer signs
//! the log's head — its size, chain hash and Merkle root — with its Ed25519 key, at a regular
//! interval while the log grows and whenever asked (`POST /v1/audit/checkpoints`, and before
//! an export of the whole log), and stores each checkpoint beside the log. Any server lists
//! them; exports carry the newest one their events reach.
//!
//! The key is a file holding the 32-byte secret seed as 64 hex digits (made, readable by its
//! owner only, when missing). Rotating it is replacing the file and restarting: checkpoints
//! signed before keep their key id and public key, so they still verify; the new key id is
//! logged at start-up, for the operator to publish.

use crate::audit_tree::AuditTree;
use crate::store::{Store, StoreError};
use ed25519_dalek::SigningKey;
use perpetua_core::checkpoint::{self, Checkpoint, Head};
use perpetua_core::time::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// How a writer signs checkpoints (`serve --signing-key`, `--checkpoint-every-ms`).
#[derive(Clone, Debug)]
pub struct CheckpointOptions {
    /// The key's file: read, or made when missing. `None`: a key made for this process only
    /// (its checkpoints verify, but the next start signs with another key).
    pub key_file: Option<PathBuf>,
    /// How often the head is signed while it moves; `None`: only when asked.
    pub every: Option<Duration>,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions { key_file: None, every: Some(Duration::from_secs(1)) }
    }
}

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or made.
    #[error("the signing key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("the signing key {path} is not 64 hex digits (an Ed25519 secret seed)")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for a new signing key: {0}")]
    Random(String),
}

/// The key in `path`, made there when the file does not exist (mode 0600 on Unix).
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let seed =
                checkpoint::parse_public_key(&text).ok_or_else(|| KeyError::Malformed { path: path.to_owned() })?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = new_key()?;
            let seed: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            std::io::Write::write_all(&mut file, format!("{seed}\n").as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "made a new checkpoint signing key");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The default key file of a store at `database_url`: beside a SQLite file
/// (`<file>-signing.key`); none for a database in memory or on a server.
pub fn default_key_file(database_url: &str) -> Option<PathBuf> {
    use std::str::FromStr as _;
    if crate::store::Backend::of_url(database_url).ok()? != crate::store::Backend::Sqlite {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return None;
    }
    let mut name = file.as_os_str().to_owned();
    name.push("-signing.key");
    Some(PathBuf::from(name))
}

/// A key from the operating system's randomness.
pub fn new_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs the log's head: one checkpoint at a time, never two of one size.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    store: Store,
    tree: Arc<AuditTree>,
    /// The newest checkpoint stored (by this signer or, at start, found in the store).
    last: Mutex<Option<Checkpoint>>,
}

impl Signer {
    /// A signer with `key` over `store`'s log, the tree shared with the audit routes.
    pub async fn new(key: SigningKey, store: Store, tree: Arc<AuditTree>) -> Result<Signer, StoreError> {
        let last = store.latest_signed_checkpoint(u64::MAX >> 1).await?;
        Ok(Signer { key, store, tree, last: Mutex::new(last) })
    }

    /// The Merkle tree it signs the roots of.
    pub fn tree(&self) -> Arc<AuditTree> {
        Arc::clone(&self.tree)
    }

    /// This signer's key id.
    pub fn key_id(&self) -> String {
        checkpoint::key_id(&self.key.verifying_key().to_bytes())
    }

    /// A checkpoint of the log's head as it is now: the newest stored one when the head has
    /// not moved past it, otherwise a new one, signed and stored first (then with `true`).
    pub async fn sign_head(&self) -> Result<(Checkpoint, bool), StoreError> {
        let mut last = self.last.lock().await;
        let head = self.store.head().await?;
        if let Some(checkpoint) = last.as_ref().filter(|c| c.head.tree_size >= head.last_position) {
            return Ok((checkpoint.clone(), false));
        }
        let root_hash = {
            let tree = self.tree.reaching(&self.store, head.last_position).await?;
            tree.root(head.last_position).map_err(|e| StoreError::InvalidBatch(format!("the tree's root: {e:?}")))?
        };
        let head = Head {
            tree_size: head.last_position,
            chain_hash: head.last_hash,
            root_hash,
            timestamp: Timestamp(crate::now_ms()),
        };
        let signed = checkpoint::sign(head, &self.key);
        self.store.save_signed_checkpoint(&signed).await?;
        *last = Some(signed.clone());
        Ok((signed, true))
    }

    /// Signs the head every `every` while it moves (`heads`: the writer's committed head),
    /// until the channel closes. A failure is logged and tried again at the next tick.
    pub async fn run(self: Arc<Self>, mut heads: watch::Receiver<crate::processor::Head>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signed = self.last.lock().await.as_ref().map_or(0, |c| c.head.tree_size);
        loop {
            tick.tick().await;
            if heads.has_changed().is_err() {
                break;
            }
            let position = heads.borrow_and_update().position;
            if position <= signed {
                continue;
            }
            match self.sign_head().await {
                Ok((checkpoint, _)) => signed = checkpoint.head.tree_size,
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code(), "signing a checkpoint failed (tried again in {every:?})")
                }
            }
        }
    }
}
