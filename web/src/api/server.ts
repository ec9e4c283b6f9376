// The live server (same origin as the viewer): the whole log as JSON Lines, then the live
// tail as server-sent events read with fetch (EventSource cannot send the Authorization
// header). Only reads: the viewer never writes to the store.

import { SseParser } from '../model/sse';
import type { components } from './schema.gen';

type Schemas = components['schemas'];

export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The error body the server sends, `{"error":{"code","message"}}`, or a plain one. */
export async function errorOf(response: Response): Promise<ServerError> {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    // The server's error body (its schema), read defensively: a proxy may answer instead.
    const body = (await response.json()) as Partial<Schemas['Error']> | null;
    if (typeof body?.error?.code === 'string') code = body.error.code;
    if (typeof body?.error?.message === 'string') message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ServerError(response.status, code, message);
}

export interface TailHandlers {
  /** Stored events (one JSON object per line, in order), as they arrive. */
  onEvents(lines: string[]): void;
  /** The connection opened (true) or dropped (false). */
  onConnected(connected: boolean): void;
}

export class ServerClient {
  constructor(
    private readonly token: string,
    private readonly baseUrl = '',
    /** Wait before reconnecting a dropped live tail. */
    private readonly reconnectMs = 1_000,
  ) {}

  private headers(accept: string): HeadersInit {
    return { Authorization: `Bearer ${this.token}`, Accept: accept };
  }

  /** The whole log (or the range asked for) as JSON Lines bytes. */
  async exportLog(range: { fromPosition?: number; toPosition?: number } = {}): Promise<Uint8Array> {
    const params = new URLSearchParams();
    if (range.fromPosition !== undefined) params.set('fromPosition', String(range.fromPosition));
    if (range.toPosition !== undefined) params.set('toPosition', String(range.toPosition));
    const query = params.size > 0 ? `?${params}` : '';
    const response = await fetch(`${this.baseUrl}/v1/export${query}`, {
      headers: this.headers('application/x-ndjson'),
    });
    if (!response.ok) throw await errorOf(response);
    return new Uint8Array(await response.arrayBuffer());
  }

  /** `GET /v1/audit/checkpoints/latest`: the newest signed checkpoint; null when none was
   * signed yet (404 `NO_CHECKPOINT`). */
  async latestCheckpoint(): Promise<Schemas['Checkpoint'] | null> {
    const response = await fetch(`${this.baseUrl}/v1/audit/checkpoints/latest`, {
      headers: this.headers('application/json'),
      cache: 'no-store',
    });
    if (response.status === 404) {
      const error = await errorOf(response);
      if (error.code === 'NO_CHECKPOINT') return null;
      throw error;
    }
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as Schemas['Checkpoint'];
  }

  /** `GET /v1/audit/proofs/consistency`: the proof that the tree of `second` events extends
   * the tree of `first`. */
  async consistencyProof(first: number, second: number): Promise<Schemas['ConsistencyProof']> {
    const response = await fetch(`${this.baseUrl}/v1/audit/proofs/consistency?first=${first}&second=${second}`, {
      headers: this.headers('application/json'),
      cache: 'no-store',
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as Schemas['ConsistencyProof'];
  }

  /**
   * Follows the live tail from `fromPosition` until `signal` aborts, reconnecting after a
   * dropped connection from the position after the last event received. Events are handed
   * over in batches (everything that arrived in one read of the stream).
   */
  async tail(fromPosition: number, handlers: TailHandlers, signal: AbortSignal): Promise<void> {
    let next = fromPosition;
    while (!signal.aborted) {
      try {
        next = await this.tailOnce(next, handlers, signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof ServerError && (error.status === 401 || error.status === 403)) throw error;
      }
      if (signal.aborted) break;
      handlers.onConnected(false);
      await sleep(this.reconnectMs, signal);
    }
  }

  /** One connection of the tail; returns the next position to ask for. */
  private async tailOnce(fromPosition: number, handlers: TailHandlers, signal: AbortSignal): Promise<number> {
    const url = `${this.baseUrl}/v1/events/live?fromPosition=${fromPosition}`;
    const response = await fetch(url, { headers: this.headers('text/event-stream'), signal, cache: 'no-store' });
    if (!response.ok || !response.body) throw await errorOf(response);
    handlers.onConnected(true);
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let next = fromPosition;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return next;
      const lines: string[] = [];
      for (const message of parser.push(value)) {
        if (message.event !== 'event') continue;
        lines.push(message.data);
        const position = Number(message.lastEventId);
        if (Number.isSafeInteger(position) && position >= next) next = position + 1;
      }
      if (lines.length > 0) handlers.onEvents(lines);
    }
  }
}

/** `GET /healthz`: true when a Perpetua server answers at this origin. */
export async function serverIsUp(baseUrl = ''): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/healthz`, { cache: 'no-store' });
    if (!response.ok) return false;
    const body = (await response.json()) as Partial<Schemas['Health']> | null;
    return body?.status === 'ok';
  } catch {
    return false;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
