// Times the wasm replay under Node: `replaySummaryBytes` takes the file's bytes (as the
// viewer gets a file or a fetched body), parses the JSON Lines, decodes every event and folds
// the log into a fresh exchange, all inside wasm. Prints one JSON line:
// {events, seconds, eventsPerSecond} for the best of the runs.
// Usage: node replay.mjs <wasm-bindgen nodejs package dir> <log.jsonl> [runs]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const [pkgDir, logFile, runs = '5'] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const wasm = require(resolve(pkgDir, 'perpetua_wasm.js'));
const bytes = readFileSync(logFile);
let best = Infinity;
let summary;
for (let run = 0; run < Number(runs); run += 1) {
  const start = process.hrtime.bigint();
  summary = JSON.parse(wasm.replaySummaryBytes(bytes));
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
const events = summary.lastPosition;
console.log(JSON.stringify({ events, seconds: best, eventsPerSecond: events / best }));
