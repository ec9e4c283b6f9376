import { describe, expect, it } from 'vitest';
import { lineChunks } from '../../src/model/chunks';

const encode = (text: string) => new TextEncoder().encode(text);
const cut = (text: string, size: number) => {
  const bytes = encode(text);
  return lineChunks(bytes, size).map(([start, end]) => new TextDecoder().decode(bytes.subarray(start, end)));
};

describe('lineChunks', () => {
  it('cuts JSON Lines at line ends, about size bytes a part, covering every byte', () => {
    const text = '{"a":1}\n{"b":22}\n{"c":333}\n{"d":4}';
    expect(cut(text, 10)).toEqual(['{"a":1}\n{"b":22}\n', '{"c":333}\n', '{"d":4}']);
    expect(cut(text, 1)).toEqual(['{"a":1}\n', '{"b":22}\n', '{"c":333}\n', '{"d":4}']);
    expect(cut(text, 1000)).toEqual([text]);
    expect(cut(`${text}\n`, 8)).toEqual(['{"a":1}\n', '{"b":22}\n', '{"c":333}\n', '{"d":4}\n']);
  });

  it('keeps a JSON array whole, and an empty file as one empty part', () => {
    expect(cut('  [{"a":1},\n{"b":2}]', 4)).toEqual(['  [{"a":1},\n{"b":2}]']);
    expect(lineChunks(new Uint8Array(0), 4)).toEqual([[0, 0]]);
  });
});
