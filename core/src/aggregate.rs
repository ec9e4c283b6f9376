//! The shape every aggregate shares: a state started by the first event of its stream and
//! evolved by each following one. `apply` never fails and never validates (DESIGN.md): an
//! event that was stored is a fact.

use crate::event::EventEnvelope;

/// A state folded from one stream.
pub trait Aggregate: Sized {
    /// Starts the state from the first event of its stream; `None` if that event cannot start
    /// a stream of this kind.
    fn create(envelope: &EventEnvelope) -> Option<Self>;
    /// Evolves the state by one event of its stream.
    fn apply(&mut self, envelope: &EventEnvelope);
    /// Version of the last event applied (events of a stream are numbered from 1).
    fn version(&self) -> u64;
}

/// Folds a stream's events (in version order) into its state; `None` for an empty stream.
pub fn fold<'a, A: Aggregate>(events: impl IntoIterator<Item = &'a EventEnvelope>) -> Option<A> {
    let mut state: Option<A> = None;
    for envelope in events {
        match state.as_mut() {
            Some(existing) => {
                debug_assert_eq!(envelope.version, existing.version() + 1, "stream versions are contiguous");
                existing.apply(envelope);
            }
            None => state = A::create(envelope),
        }
    }
    state
}
