//! Writes logs for exercising the audit viewer, as JSON Lines (the format `perpetua demo`
//! and the server's export write):
//!
//! - `viewer_logs demo OUT`: the demo story's sealed log, byte for byte what `perpetua demo`
//!   writes, without building the server (the viewer's browser tests in offline mode);
//! - `viewer_logs workload EVENTS OUT`: the first EVENTS events of the engine's mixed workload
//!   on four accounts (the viewer's browser benchmark: a long log whose busiest account
//!   stream has thousands of events). Prints `{events, busiestStream}` as JSON;
//! - `viewer_logs receipt LOG OUT`: a receipt (`docs/AUDIT.md` §11) of the first order of the
//!   log LOG, its events with their inclusion proofs under a checkpoint of the whole log
//!   signed with a fixed test key (the viewer's benchmark of proof verification at the size
//!   of LOG). Prints `{treeSize, events, keyId}` as JSON.

use perpetua_core::audit::HashChain;
use perpetua_core::event::{StoredEvent, StreamId};
use perpetua_core::workload::Setup;
use std::collections::HashMap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result =
        match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["demo", out] => write(out, &perpetua_core::demo::sealed_log().1).map(|()| String::new()),
            ["workload", events, out] => {
                events.parse::<usize>().map_err(|e| format!("EVENTS: {e}")).and_then(|events| workload(events, out))
            }
            ["receipt", log, out] => receipt(log, out),
            _ => Err("usage: viewer_logs demo OUT | viewer_logs workload EVENTS OUT | viewer_logs receipt LOG OUT"
                .to_owned()),
        };
    match result {
        Ok(summary) if summary.is_empty() => {}
        Ok(summary) => println!("{summary}"),
        Err(message) => {
            eprintln!("viewer_logs: {message}");
            std::process::exit(2);
        }
    }
}

fn write(out: &str, stored: &[StoredEvent]) -> Result<(), String> {
    let jsonl = perpetua_core::event::to_json_lines(stored);
    std::fs::write(out, jsonl).map_err(|e| format!("cannot write {out}: {e}"))
}

fn receipt(log: &str, out: &str) -> Result<String, String> {
    use perpetua_core::checkpoint::{self, Head, Receipt, ReceiptEvent};
    use perpetua_core::merkle::MerkleTree;
    let text = std::fs::read_to_string(log).map_err(|e| format!("cannot read {log}: {e}"))?;
    let stored = perpetua_core::event::parse_stored_events(&text).map_err(|e| e.to_string())?;
    let tree = MerkleTree::of_events(stored.iter().map(|e| &e.hash));
    let size = tree.size();
    let last = stored.last().ok_or("the log is empty")?;
    let head = Head {
        tree_size: size,
        chain_hash: last.hash,
        root_hash: tree.root(size).map_err(|e| e.to_string())?,
        timestamp: last.timestamp,
    };
    let signed = checkpoint::sign(head, &ed25519_dalek::SigningKey::from_bytes(&[42; 32]));
    let order = stored.iter().find(|e| e.event_type == "OrderPlaced").ok_or("no order in the log")?;
    let events = stored
        .iter()
        .enumerate()
        .filter(|(_, e)| e.aggregate_id == order.aggregate_id)
        .map(|(i, e)| {
            Ok(ReceiptEvent {
                event: e.clone(),
                proof: tree.inclusion_proof(i as u64, size).map_err(|e| e.to_string())?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let count = events.len();
    let key_id = signed.key_id.clone();
    let json = serde_json::to_string(&Receipt { checkpoint: signed, events }).map_err(|e| e.to_string())?;
    std::fs::write(out, json).map_err(|e| format!("cannot write {out}: {e}"))?;
    Ok(serde_json::json!({ "treeSize": size, "events": count, "keyId": key_id }).to_string())
}

fn workload(events: usize, out: &str) -> Result<String, String> {
    let mut setup = Setup::new(4, 1_000, 7);
    let mut seed = 11;
    while setup.log.len() < events {
        setup.mixed_workload(5_000, seed);
        seed += 1;
    }
    let mut log = setup.log;
    log.truncate(events);
    let stored = HashChain::default().seal(&mut log);
    write(out, &stored)?;
    let mut sizes: HashMap<StreamId, usize> = HashMap::new();
    for event in &log {
        *sizes.entry(event.stream).or_default() += 1;
    }
    let (stream, size) = sizes.into_iter().max_by_key(|&(stream, size)| (size, stream.to_string())).expect("events");
    let busiest = serde_json::json!({
        "aggregateType": stream.aggregate_type.as_str(),
        "aggregateId": stream.aggregate_id.to_string(),
        "events": size,
    });
    Ok(serde_json::json!({ "events": stored.len(), "busiestStream": busiest }).to_string())
}
