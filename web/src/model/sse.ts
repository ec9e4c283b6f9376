// An incremental parser of a `text/event-stream` body (the HTML standard's algorithm), fed
// with decoded chunks as they arrive from `fetch`: EventSource cannot send an Authorization
// header, so the live tail reads the stream itself.

/** One dispatched message. `event` is "message" when the server named none. */
export interface SseMessage {
  readonly event: string;
  readonly data: string;
  /** The last event id seen so far (the stream's, not only this message's), or "" if none. */
  readonly lastEventId: string;
}

export class SseParser {
  private buffer = '';
  private eventType = '';
  private data: string[] = [];
  private hasData = false;
  private lastEventId = '';
  /** The reconnection time the server asked for (`retry:`), in milliseconds. */
  retryMs: number | null = null;

  /** Feeds a chunk; returns the messages completed by it. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const end = nextLineEnd(this.buffer, start);
      if (end === -1) break;
      const line = this.buffer.slice(start, end);
      const message = this.line(line);
      if (message) messages.push(message);
      start = end + (this.buffer.startsWith('\r\n', end) ? 2 : 1);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const message = this.hasData
      ? { event: this.eventType || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId }
      : null;
    this.eventType = '';
    this.data = [];
    this.hasData = false;
    return message;
  }
}

/** Index of the next "\r" or "\n" at or after `from`, or -1. A lone "\r" at the very end
 * is not yet a line end: it may be the first half of "\r\n". */
function nextLineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 10) return i;
    if (c === 13) return i + 1 < text.length ? i : -1;
  }
  return -1;
}
