//! Engine benchmarks (BENCHMARKS.md):
//! - `engine/mixed`: the mixed workload (≈60% resting limits, 25% cancels, 15% crossing
//!   limit/market orders; 16 accounts; BTCUSDT with ~1,000 resting orders) through decide +
//!   evolve, every event produced; throughput in commands.
//! - `replay/decoded`: the resulting log folded into a fresh engine; throughput in events.
//! - `replay/json`: the same log from JSON Lines bytes (parse, upcast check, decode, fold).
//! - `audit/seal`: SHA-256 hash chain over the log (canonical bytes + hash), on one thread.
//! - `audit/verify`: the chain of the sealed log verified (`audit::verify`: its links in
//!   order, its hashes on every core).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perpetua_core::audit::HashChain;
use perpetua_core::event::EventEnvelope;
use perpetua_core::workload::Setup;
use perpetua_core::{CommandContext, Exchange};

const COMMANDS: usize = 50_000;

fn engine(c: &mut Criterion) {
    let mut setup = Setup::new(16, 1_000, 7);
    let start = setup.exchange.clone();
    let start_len = setup.log.len();
    let commands = setup.mixed_workload(COMMANDS, 11);
    let log = setup.log.clone();
    println!(
        "workload: {} commands -> {} events; book at start {} orders, at end {}",
        COMMANDS,
        log.len() - start_len,
        start.book("BTCUSDT".parse().expect("symbol")).map_or(0, |b| b.len()),
        setup.exchange.book("BTCUSDT".parse().expect("symbol")).map_or(0, |b| b.len()),
    );
    let ctx = CommandContext::default();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(COMMANDS as u64));
    group.sample_size(20);
    group.bench_function("mixed", |b| {
        b.iter_batched(
            || start.clone(),
            |mut exchange| {
                for command in &commands {
                    let _ = std::hint::black_box(exchange.execute(command, &ctx));
                }
                exchange
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.sample_size(20);
    group.bench_function("decoded", |b| b.iter(|| Exchange::replay(std::hint::black_box(&log))));
    let mut sealed = log.clone();
    let stored = HashChain::default().seal(&mut sealed);
    let jsonl: String = stored.iter().map(|e| serde_json::to_string(e).expect("serializes") + "\n").collect();
    println!("log: {} events, {} bytes of JSON Lines", log.len(), jsonl.len());
    group.bench_function("json", |b| {
        b.iter(|| {
            let mut exchange = Exchange::new();
            for line in jsonl.lines() {
                let envelope: EventEnvelope = serde_json::from_str(line).expect("valid line");
                exchange.apply(&envelope);
            }
            exchange
        })
    });
    group.finish();

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.sample_size(10);
    group.bench_function("seal", |b| {
        b.iter_batched(|| log.clone(), |mut events| HashChain::default().seal(&mut events), BatchSize::LargeInput)
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            let report = perpetua_core::audit::verify(std::hint::black_box(&stored), HashChain::default());
            assert!(report.is_ok());
            report
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
