//! Idempotency keys in memory: every key the log has recorded, with its request's digest, and
//! the answers of the most recent ones. A retry is answered from here without asking the
//! database; the durable unique constraint on the key stays the truth (a batch whose key was
//! recorded behind the writer's back fails to commit, and the writer reloads its keys).

use super::Answer;
use crate::store::KeyRecord;
use perpetua_core::audit::Hash;
use std::collections::{HashMap, VecDeque};

/// Answers of this many of the most recent keyed requests are kept in memory; an older key is
/// still known, and its answer is read from its stored record.
pub const RECENT_ANSWERS: usize = 10_000;

/// What the writer knows of one key.
#[derive(Clone, Debug)]
pub(super) struct Known {
    /// Digest of the request that first used the key.
    pub fingerprint: Hash,
    /// The answer, while the key is among the recent ones.
    pub answer: Option<Answer>,
}

/// Every recorded key.
#[derive(Default)]
pub(super) struct Keys {
    known: HashMap<String, Known>,
    /// Keys whose answer is held, oldest first.
    recent: VecDeque<String>,
}

impl Keys {
    /// Keys as the store lists them (their answers stay on disk).
    pub fn load(&mut self, records: Vec<KeyRecord>) {
        for record in records {
            let known = Known { fingerprint: record.fingerprint, answer: None };
            self.known.entry(record.key).or_insert(known);
        }
    }

    /// What is known of `key`.
    pub fn get(&self, key: &str) -> Option<&Known> {
        self.known.get(key)
    }

    /// Records a committed key and its answer; the oldest held answer beyond
    /// [`RECENT_ANSWERS`] is let go.
    pub fn committed(&mut self, key: String, fingerprint: Hash, answer: Answer) {
        self.known.insert(key.clone(), Known { fingerprint, answer: Some(answer) });
        self.recent.push_back(key);
        if self.recent.len() > RECENT_ANSWERS {
            if let Some(old) = self.recent.pop_front() {
                if let Some(known) = self.known.get_mut(&old) {
                    known.answer = None;
                }
            }
        }
    }
}
