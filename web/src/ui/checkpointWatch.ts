// Watches the live server's signed checkpoints while the viewer follows its tail: each new
// one is checked in wasm (its signature, the loaded events against it, the consistency proof
// from the last one seen, between roots the viewer already holds signed) and judged
// (model/consistency.ts). The last checkpoint accepted is kept in this browser per server and
// signing key, so a rewrite is caught across reloads too (a log under a key never seen here —
// a fresh demo server — starts afresh). A judgement other than `consistent` is final.

import { type ServerClient, sleep } from '../api/server';
import { type Checkpoint, type Judgement, judge } from '../model/consistency';
import { verifyConsistencyProof } from 'perpetua-wasm';
import type { LoadedLog } from '../data/log';

/** How often the server's newest checkpoint is asked for while the tail is followed. */
export const CHECKPOINT_POLL_MS = 2_000;

/** One checkpoint seen, with its judgement, for the report. */
export interface SeenCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly judgement: Judgement;
  readonly checkedAt: string;
}

export class CheckpointWatch {
  private last: Checkpoint | null = null;
  readonly seen: SeenCheckpoint[] = [];

  constructor(
    private readonly client: ServerClient,
    private readonly log: () => LoadedLog | null,
    private readonly onJudged: () => void,
    private readonly server: string,
  ) {}

  private storageKey(keyId: string): string {
    return `perpetua.lastCheckpoint.${this.server}.${keyId}`;
  }

  /** The latest judgement: a fault once one is found, else the last checkpoint's. */
  get latest(): Judgement | null {
    return this.seen.find((s) => s.judgement.kind !== 'consistent')?.judgement ?? this.seen.at(-1)?.judgement ?? null;
  }

  private get faulted(): boolean {
    return this.seen.some((s) => s.judgement.kind !== 'consistent');
  }

  /** Checks `first` (the export's own checkpoint), then polls until `signal` aborts. */
  async run(first: Checkpoint | null, signal: AbortSignal): Promise<void> {
    if (first) this.check(first, signal).catch(() => undefined);
    while (!signal.aborted && !this.faulted) {
      await sleep(CHECKPOINT_POLL_MS, signal);
      if (signal.aborted) return;
      try {
        const next = await this.client.latestCheckpoint();
        if (next) await this.check(next, signal);
      } catch {
        // The server is away (the tail says so): asked again at the next poll.
      }
    }
  }

  private async check(next: Checkpoint, signal: AbortSignal): Promise<void> {
    const log = this.log();
    const last = this.last ?? readStored(this.storageKey(next.keyId));
    if (!log || signal.aborted || this.faulted) return;
    if (last && last.treeSize === next.treeSize && last.rootHash === next.rootHash) return;
    const report = log.checkCheckpoint(next);
    let proofHolds: boolean | null = null;
    if (last && report.signatureError === null && next.treeSize > last.treeSize) {
      const proof = await this.client.consistencyProof(last.treeSize, next.treeSize);
      // The roots are the signed ones held here, never the ones the server puts in the proof.
      proofHolds = verifyConsistencyProof(
        JSON.stringify({
          first: last.treeSize,
          second: next.treeSize,
          firstRoot: last.rootHash,
          secondRoot: next.rootHash,
          proof: proof.proof,
        }),
      );
    }
    if (signal.aborted) return;
    const judgement = judge(last, {
      next,
      signatureError: report.signatureError,
      coverage: report.coverage,
      proofHolds,
    });
    this.seen.push({ checkpoint: next, judgement, checkedAt: new Date().toISOString() });
    if (judgement.kind === 'consistent') {
      this.last = next;
      localStorage.setItem(this.storageKey(next.keyId), JSON.stringify(next));
    }
    this.onJudged();
  }
}

function readStored(key: string): Checkpoint | null {
  try {
    const stored = JSON.parse(localStorage.getItem(key) ?? 'null') as Checkpoint | null;
    return stored && typeof stored.treeSize === 'number' && typeof stored.rootHash === 'string' ? stored : null;
  } catch {
    return null;
  }
}
