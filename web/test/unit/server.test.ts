import { afterEach, describe, expect, it, vi } from 'vitest';
import { errorOf, ServerClient, ServerError } from '../../src/api/server';

/** A response whose body arrives in the given chunks. */
function streamed(chunks: string[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

function message(position: number): string {
  return `event: event\nid: ${position}\ndata: {"position":${position}}\n\n`;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('errorOf', () => {
  it('reads the server error body', async () => {
    const response = new Response(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'bad token' } }), {
      status: 401,
    });
    const error = await errorOf(response);
    expect(error).toBeInstanceOf(ServerError);
    expect([error.status, error.code, error.message]).toEqual([401, 'UNAUTHORIZED', 'bad token']);
  });

  it('falls back to the status when the body is not the error shape', async () => {
    const error = await errorOf(new Response('oops', { status: 502, statusText: 'Bad Gateway' }));
    expect([error.code, error.message]).toEqual(['HTTP_502', 'Bad Gateway']);
  });
});

describe('ServerClient', () => {
  it('exports the log with the bearer token', async () => {
    const fetchMock = vi.fn(async () => new Response('{"position":1}\n'));
    vi.stubGlobal('fetch', fetchMock);
    const bytes = await new ServerClient('secret').exportLog({ fromPosition: 5 });
    expect(new TextDecoder().decode(bytes)).toBe('{"position":1}\n');
    expect(fetchMock).toHaveBeenCalledWith('/v1/export?fromPosition=5', {
      headers: { Authorization: 'Bearer secret', Accept: 'application/x-ndjson' },
    });
  });

  it('follows the tail across a dropped connection, resuming after the last id', async () => {
    const urls: string[] = [];
    const connections = [
      // Split mid-message and with a keep-alive comment, then the server drops the stream.
      () => streamed([message(7).slice(0, 9), message(7).slice(9) + ': keep-alive\n\n', message(8)]),
      () => streamed([message(9)]),
    ];
    const controller = new AbortController();
    const received: string[] = [];
    const states: boolean[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) => {
        urls.push(url);
        const next = connections.shift();
        if (!next) {
          controller.abort();
          throw new DOMException('aborted', 'AbortError');
        }
        return next();
      }),
    );
    await new ServerClient('t', '', 0).tail(
      7,
      {
        onEvents: (lines) => received.push(...lines),
        onConnected: (connected) => states.push(connected),
      },
      controller.signal,
    );
    expect(received).toEqual(['{"position":7}', '{"position":8}', '{"position":9}']);
    expect(urls).toEqual([
      '/v1/events/live?fromPosition=7',
      '/v1/events/live?fromPosition=9',
      '/v1/events/live?fromPosition=10',
    ]);
    expect(states).toEqual([true, false, true, false]);
  });

  it('stops the tail when the token is refused', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('{"error":{"code":"FORBIDDEN","message":"no"}}', { status: 403 })),
    );
    const tail = new ServerClient('t', '', 0).tail(
      1,
      { onEvents: () => {}, onConnected: () => {} },
      new AbortController().signal,
    );
    await expect(tail).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
  });
});
