//! The TypeScript declarations of every JSON answer of the bindings, derived by ts-rs from
//! the Rust types that write them (with their serde attributes): the viewer's
//! `web/src/wasm/answers.gen.ts`. Integers are `number` (JSON's numbers, as `JSON.parse`
//! reads them; positions stay below 2^53), decimals and times `string`.

use crate::viewer::{
    AccountReadModel, Change, CheckpointReport, HeldPosition, PnlSeries, Point, ReplaySummary, ScopedReport, StreamKey,
    VersionView,
};
use perpetua_core::audit::VerifyReport;
use perpetua_core::timetravel::AggregateState;
use std::any::TypeId;
use std::collections::{BTreeMap, HashSet};
use ts_rs::{Config, TypeVisitor, TS};

/// The file's text: a header, then each declaration the answers reach, sorted by name.
pub fn declarations() -> String {
    let config = Config::new().with_large_int("number");
    let mut collect = Collect { config: &config, seen: HashSet::new(), declarations: BTreeMap::new() };
    // The roots: what `lib.rs` answers with (each one's dependencies are found from it).
    collect.visit::<ScopedReport<'static>>();
    collect.visit::<VerifyReport>();
    collect.visit::<CheckpointReport>();
    collect.visit::<ReplaySummary>();
    collect.visit::<AggregateState>();
    collect.visit::<VersionView>();
    collect.visit::<Change>();
    collect.visit::<AccountReadModel>();
    collect.visit::<HeldPosition>();
    collect.visit::<Point>();
    collect.visit::<PnlSeries>();
    collect.visit::<StreamKey>();
    let mut text = String::from(
        "// Generated from the Rust types of perpetua-wasm's answers by ts-rs (`cargo run -p perpetua-wasm\n\
         // --features ts --example typescript`, run by scripts/api-docs.sh); do not edit. The test\n\
         // command fails when it is stale.\n",
    );
    for declaration in collect.declarations.values() {
        text.push('\n');
        text.push_str(declaration);
        text.push('\n');
    }
    text
}

/// Walks a type's dependencies once each, keeping the declaration of every named type.
struct Collect<'a> {
    config: &'a Config,
    seen: HashSet<TypeId>,
    declarations: BTreeMap<String, String>,
}

impl TypeVisitor for Collect<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        // Only named types (those ts-rs would export to a file of their own) are declared;
        // `Option`, `Vec`, maps and primitives are written inline where they are used.
        if T::output_path().is_some() {
            let docs = T::docs().unwrap_or_default();
            let declaration = format!("{docs}export {}", T::decl(self.config));
            self.declarations.insert(T::ident(self.config), declaration);
        }
        T::visit_dependencies(self);
    }
}

#[cfg(test)]
mod tests {
    use super::declarations;

    #[test]
    fn every_answer_is_declared_with_its_wire_names() {
        let text = declarations();
        for expected in [
            "export type ScopedReport = { ",
            "export type AggregateState = { \"aggregateType\": \"Order\", \"state\": OrderState }",
            "export type ChainFault = { \"kind\": \"POSITION_GAP\", ",
            "firstBadPosition: number | null",
            "export type Side = \"BUY\" | \"SELL\";",
            "export type Timestamp = string;",
            "export type OrderId = string;",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
    }
}
