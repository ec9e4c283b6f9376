// An order's receipt opened from a file (`GET /v1/orders/{orderId}/receipt`, saved): its
// events, each with an inclusion proof under a signed checkpoint, checked here by the wasm
// core with nothing else — neither the log nor the server. With the operator's published
// public key typed in, a receipt signed by any other key is refused.

import { verifyInclusionProof, verifyReceipt } from 'perpetua-wasm';
import type { StoredEvent } from '../../data/types';
import type { Checkpoint } from '../../model/consistency';
import { formatCount, shortId } from '../../model/format';
import { h, replace } from '../dom';

/** A receipt as served: its checkpoint, and its events with their proofs. */
export interface Receipt {
  readonly checkpoint: Checkpoint;
  readonly events: readonly { readonly event: StoredEvent; readonly proof: readonly string[] }[];
}

/** `verifyReceipt`'s answer. */
export interface ReceiptCheck {
  readonly ok: boolean;
  readonly eventsBytesChecked: number | null;
  readonly error: string | null;
}

/** The receipt a file holds, or null when it holds something else (an export). */
export function asReceipt(text: string): Receipt | null {
  if (!text.trimStart().startsWith('{')) return null;
  try {
    const value = JSON.parse(text) as Partial<Receipt> | null;
    return value && typeof value.checkpoint === 'object' && Array.isArray(value.events) ? (value as Receipt) : null;
  } catch {
    return null;
  }
}

export class ReceiptView {
  readonly element = h('section', { class: 'view receipt-view', data: { view: 'receipt' }, tabIndex: -1 });
  private readonly keyInput = h('input', {
    attrs: {
      type: 'text',
      placeholder: "The operator's public key (64 hex digits), to trust only it",
      'aria-label': 'Trusted public key',
      spellcheck: 'false',
      autocomplete: 'off',
    },
    class: 'mono',
  });
  private text = '';
  private name = '';

  constructor(private readonly onChecked: (check: ReceiptCheck, receipt: Receipt) => void) {}

  /** Checks the receipt `text` (the file `name`) and shows it. */
  show(text: string, receipt: Receipt, name: string): void {
    this.text = text;
    this.name = name;
    this.render(receipt);
  }

  /** Each event's inclusion proof on its own, under the checkpoint's root (the proof column
   * says whether it leads there): its leaf is `SHA-256(0x00 ‖ hash)`, computed by the browser. */
  private async checkProofs(receipt: Receipt): Promise<void> {
    for (const { event, proof } of receipt.events) {
      const hash = Uint8Array.from(event.hash.match(/../g) ?? [], (byte) => parseInt(byte, 16));
      const leaf = new Uint8Array(await crypto.subtle.digest('SHA-256', Uint8Array.of(0, ...hash)));
      const json = JSON.stringify({
        position: event.position,
        leafIndex: event.position - 1,
        treeSize: receipt.checkpoint.treeSize,
        eventHash: event.hash,
        leafHash: Array.from(leaf, (b) => b.toString(16).padStart(2, '0')).join(''),
        rootHash: receipt.checkpoint.rootHash,
        proof,
      });
      const start = performance.now();
      let holds = false;
      try {
        holds = verifyInclusionProof(json);
      } catch {
        holds = false;
      }
      performance.measure('verify-inclusion', { start, end: performance.now() });
      const cell = this.element.querySelector(`[data-proof="${event.position}"]`);
      if (cell)
        cell.textContent = `${proof.length} hashes ${holds ? '✓ lead to the root' : '✗ do not lead to the root'}`;
    }
  }

  focus(): void {
    this.element.focus({ preventScroll: true });
  }

  private render(receipt: Receipt): void {
    const keys = this.keyInput.value.trim() === '' ? [] : this.keyInput.value.trim().split(/[\s,]+/);
    let check: ReceiptCheck;
    const start = performance.now();
    try {
      // The file's own text: re-serialized JSON would reorder the payloads' keys.
      check = JSON.parse(verifyReceipt(this.text, keys)) as ReceiptCheck;
      performance.measure('verify-receipt', { start, end: performance.now() });
    } catch (error) {
      check = { ok: false, eventsBytesChecked: null, error: error instanceof Error ? error.message : String(error) };
    }
    this.onChecked(check, receipt);
    void this.checkProofs(receipt);
    const cp = receipt.checkpoint;
    const under = `the checkpoint of ${formatCount(cp.treeSize)} events signed ${cp.timestamp} by key ${cp.keyId}`;
    const result = check.ok
      ? `✓ Receipt verified: ${formatCount(receipt.events.length)} events, each included under ${under}` +
        (keys.length > 0 ? ', a trusted key' : ' (compare the key id with the operator’s published one)')
      : `✗ Receipt does not verify: ${check.error ?? 'unknown error'}`;
    const again = h('button', { text: 'Check again', on: { click: () => this.render(receipt) } });
    replace(
      this.element,
      h('h2', {}, 'Order receipt ', h('span', { class: 'hint', text: this.name })),
      h('p', { class: 'receipt-result', data: { result: check.ok ? 'ok' : 'bad' }, text: result }),
      h('label', { class: 'receipt-key' }, 'Trusted key ', this.keyInput, ' ', again),
      h(
        'dl',
        { class: 'envelope' },
        ...(
          [
            ['Tree size', String(cp.treeSize)],
            ['Root', cp.rootHash],
            ['Chain hash', cp.chainHash],
            ['Signed', cp.timestamp],
            ['Key id', cp.keyId],
            ['Public key', cp.publicKey],
          ] as const
        ).flatMap(([term, value]) => [h('dt', { text: term }), h('dd', { class: 'mono', text: value })]),
      ),
      h(
        'table',
        { class: 'receipt-events' },
        h(
          'thead',
          {},
          h('tr', {}, ...['Position', 'Event', 'Stream', 'Version', 'Proof'].map((t) => h('th', { text: t }))),
        ),
        h(
          'tbody',
          {},
          ...receipt.events.map(({ event, proof }) =>
            h(
              'tr',
              {},
              h('td', { class: 'mono', text: String(event.position) }),
              h('td', { text: event.eventType }),
              h('td', { class: 'mono', text: `${event.aggregateType} ${shortId(event.aggregateId)}` }),
              h('td', { text: `v${event.version}` }),
              h('td', { class: 'hint', data: { proof: String(event.position) }, text: `${proof.length} hashes` }),
            ),
          ),
        ),
      ),
    );
  }
}
