// A JSON value laid out as indented lines, each knowing the path of the value it shows
// (`/state/balance`, the paths of the wasm diff), so the state view can highlight what
// changed since the previous version.

export interface JsonLine {
  readonly indent: number;
  /** `"key": ` or "" for array items and the root. */
  readonly key: string;
  /** The value's text, or an opening/closing bracket. */
  readonly text: string;
  /** A trailing comma. */
  readonly comma: boolean;
  /** The path of the value on this line ("" for the root, brackets carry their container's). */
  readonly path: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function jsonLines(value: unknown): JsonLine[] {
  const lines: JsonLine[] = [];
  walk(value as Json, '', 0, '', false, lines);
  return lines;
}

function walk(value: Json, path: string, indent: number, key: string, comma: boolean, out: JsonLine[]): void {
  if (Array.isArray(value) || (value !== null && typeof value === 'object')) {
    const entries: [string, Json][] = Array.isArray(value)
      ? value.map((v, i) => [String(i), v])
      : Object.entries(value);
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    if (entries.length === 0) {
      out.push({ indent, key, text: open + close, comma, path });
      return;
    }
    out.push({ indent, key, text: open, comma: false, path });
    entries.forEach(([k, v], i) => {
      const childKey = Array.isArray(value) ? '' : `${JSON.stringify(k)}: `;
      walk(v, `${path}/${escapePointer(k)}`, indent + 1, childKey, i < entries.length - 1, out);
    });
    out.push({ indent, key: '', text: close, comma, path });
    return;
  }
  out.push({ indent, key, text: JSON.stringify(value), comma, path });
}

/** JSON Pointer escaping of a key (`~` and `/`), as the diff's paths use plain keys that
 * never contain them; kept so a path is unambiguous either way. */
function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** How a line relates to the changed paths: the value itself (or a value inside a changed
 * container) changed, or it is a container holding a change, or neither. */
export function changeKind(path: string, changed: ReadonlySet<string>): 'changed' | 'contains' | null {
  if (changed.has(path)) return 'changed';
  for (const c of changed) {
    if (path.startsWith(`${c}/`)) return 'changed';
  }
  for (const c of changed) {
    if (c.startsWith(path === '' ? '/' : `${path}/`)) return 'contains';
  }
  return null;
}
