// The keyboard help overlay (`?`): every key the viewer answers to.

import { h } from './dom';

const KEYS: readonly (readonly [string, string])[] = [
  ['/', 'Find: an id, a client order id, a symbol or #position'],
  ['Esc', 'Leave the search box (back to the list); close a dialog'],
  ['↑ ↓', 'Previous / next event in a list'],
  ['Page Up / Page Down', 'A page of events up / down'],
  ['Home / End', 'First / last event'],
  ['Enter', 'Open the selected event (its stream at that version)'],
  ['← →', 'On the "as of" slider: the previous / next event of the stream'],
  ['r', 'The verification report (download or print)'],
  ['t', 'Switch between the light and the dark theme'],
  ['?', 'This help'],
];

export function helpDialog(): HTMLDialogElement {
  const dialog: HTMLDialogElement = h(
    'dialog',
    { class: 'help-dialog', attrs: { 'aria-label': 'Keyboard help' } },
    h('h2', { text: 'Keys' }),
    h(
      'dl',
      { class: 'keys' },
      ...KEYS.flatMap(([key, what]) => [h('dt', {}, h('kbd', { text: key })), h('dd', { text: what })]),
    ),
    h('div', { class: 'actions' }, h('button', { text: 'Close', on: { click: () => dialog.close() } })),
  );
  return dialog;
}
