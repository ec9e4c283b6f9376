//! Replay from JSON, natively and in wasm32 under Node, side by side in one run
//! (BENCHMARKS.md). Both run the same code on the same log: parse the JSON Lines, decode every
//! event, fold into a fresh exchange (`replaySummaryBytes` in wasm, handed the file's
//! bytes). Best of 5 runs each.
//!
//! Run with `scripts/bench-wasm.sh`, which builds the wasm package for Node first and passes
//! its directory in `PERPETUA_WASM_NODE_PKG`.

use perpetua_core::audit::HashChain;
use perpetua_core::event::parse_stored_events;
use perpetua_core::workload::Setup;
use perpetua_core::Exchange;
use std::time::Instant;

const COMMANDS: usize = 20_000;
const RUNS: usize = 5;

fn main() {
    let Ok(pkg) = std::env::var("PERPETUA_WASM_NODE_PKG") else {
        eprintln!("PERPETUA_WASM_NODE_PKG is not set: run scripts/bench-wasm.sh");
        std::process::exit(2);
    };
    let mut setup = Setup::new(16, 1_000, 7);
    setup.mixed_workload(COMMANDS, 11);
    let mut log = setup.log;
    let stored = HashChain::default().seal(&mut log);
    let jsonl = perpetua_core::event::to_json_lines(&stored);
    let file = std::env::temp_dir().join(format!("perpetua-replay-{}.jsonl", std::process::id()));
    std::fs::write(&file, &jsonl).expect("write the log");

    let mut native = f64::INFINITY;
    for _ in 0..RUNS {
        let start = Instant::now();
        let events: Vec<_> =
            parse_stored_events(&jsonl).expect("parses").iter().map(|e| e.decode().expect("decodes")).collect();
        let exchange = Exchange::replay(&events);
        assert_eq!(exchange.last_position(), stored.len() as u64);
        native = native.min(start.elapsed().as_secs_f64());
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/replay.mjs");
    let output = std::process::Command::new("node")
        .args([script, &pkg, file.to_str().expect("utf-8 path"), &RUNS.to_string()])
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&file);
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    let wasm: serde_json::Value = serde_json::from_slice(&output.stdout).expect("node prints JSON");
    assert_eq!(wasm["events"].as_u64(), Some(stored.len() as u64), "wasm replayed the whole log");
    let wasm_seconds = wasm["seconds"].as_f64().expect("seconds");

    let events = stored.len() as f64;
    println!("log: {} events, {} bytes of JSON Lines; best of {RUNS} runs", stored.len(), jsonl.len());
    println!("| replay from JSON | events/s | seconds |");
    println!("|---|---:|---:|");
    println!("| native | {:.0} | {native:.3} |", events / native);
    println!("| wasm32 under Node {} | {:.0} | {wasm_seconds:.3} |", node_version(), events / wasm_seconds);
    println!("wasm / native = {:.0}%", 100.0 * native / wasm_seconds);
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
