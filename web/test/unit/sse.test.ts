import { describe, expect, it } from 'vitest';
import { SseParser } from '../../src/model/sse';

describe('SseParser', () => {
  it('parses the live tail format: event, id and one line of data per message', () => {
    const parser = new SseParser();
    const messages = parser.push(
      'event: event\nid: 7\ndata: {"position":7}\n\nevent: event\nid: 8\ndata: {"position":8}\n\n',
    );
    expect(messages).toEqual([
      { event: 'event', data: '{"position":7}', lastEventId: '7' },
      { event: 'event', data: '{"position":8}', lastEventId: '8' },
    ]);
  });

  it('joins messages split anywhere across chunks, including inside a CRLF', () => {
    const text = 'event: event\r\nid: 12\r\ndata: {"a":1}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut += 1) {
      const parser = new SseParser();
      const messages = [...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))];
      expect(messages, `cut at ${cut}`).toEqual([{ event: 'event', data: '{"a":1}', lastEventId: '12' }]);
    }
  });

  it('ignores comments (keep-alives) and dispatches nothing for a message without data', () => {
    const parser = new SseParser();
    expect(parser.push(': keep-alive\n\n:\n\nevent: event\n\n')).toEqual([]);
    expect(parser.push('data: x\n\n')).toEqual([{ event: 'message', data: 'x', lastEventId: '' }]);
  });

  it('joins several data lines with newlines and strips one leading space only', () => {
    const parser = new SseParser();
    expect(parser.push('data:a\ndata:  b\ndata\n\n')).toEqual([{ event: 'message', data: 'a\n b\n', lastEventId: '' }]);
  });

  it('keeps the last event id across messages and reads retry', () => {
    const parser = new SseParser();
    parser.push('id: 3\ndata: x\n\nretry: 2500\ndata: y\n\n');
    expect(parser.retryMs).toBe(2500);
    expect(parser.push('data: z\n\n')).toEqual([{ event: 'message', data: 'z', lastEventId: '3' }]);
  });

  it('waits for the blank line before dispatching', () => {
    const parser = new SseParser();
    expect(parser.push('event: event\ndata: {"p":1}\n')).toEqual([]);
    expect(parser.push('\n')).toHaveLength(1);
  });
});
