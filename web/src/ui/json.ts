// JSON rendered as indented lines; lines whose value changed since the previous version are
// highlighted (the diff's paths).

import { changeKind, jsonLines } from '../model/jsonview';
import { h } from './dom';

export function jsonBlock(value: unknown, changed: ReadonlySet<string>, label: string): HTMLElement {
  const block = h('pre', { class: 'json', attrs: { 'aria-label': label } });
  for (const line of jsonLines(value)) {
    const kind = changeKind(line.path, changed);
    const element = h(
      'div',
      { class: kind ? `json-line ${kind}` : 'json-line', data: { path: line.path } },
      '  '.repeat(line.indent),
      line.key ? h('span', { class: 'json-key', text: line.key }) : null,
      h('span', { class: 'json-value', text: line.text }),
      line.comma ? ',' : '',
    );
    block.appendChild(element);
  }
  return block;
}
