// The verification report in a dialog: its result and main facts, the whole JSON, a download
// of it, and printing (the print stylesheet prints the report alone).

import { buildReport, type ReportInput, reportFileName } from '../model/report';
import { h, replace } from './dom';

export class ReportDialog {
  readonly element: HTMLDialogElement;
  private readonly body = h('div', { class: 'report-body' });
  private url: string | null = null;

  constructor() {
    this.element = h('dialog', { class: 'report-dialog', attrs: { 'aria-label': 'Verification report' } }, this.body);
    this.element.addEventListener('close', () => this.revoke());
  }

  open(input: ReportInput): void {
    const report = buildReport(input);
    const text = `${JSON.stringify(report, null, 2)}\n`;
    this.revoke();
    this.url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const fact = (term: string, value: string): HTMLElement[] => [
      h('dt', { text: term }),
      h('dd', { class: 'mono', text: value }),
    ];
    const cp = input.checkpoint?.checkpoint ?? null;
    replace(
      this.body,
      h('h2', { text: 'Verification report' }),
      h('p', { class: 'report-result', data: { result: String(report['result']) } }, String(report['result'])),
      h('p', { text: `${input.verdict.text}${input.verdict.detail ? ` — ${input.verdict.detail}` : ''}` }),
      h(
        'dl',
        { class: 'envelope' },
        ...fact('Source', input.source),
        ...fact('Events', String(input.events.count)),
        ...fact('Head', input.head ? `position ${input.head.position}, hash ${input.head.hash}` : '—'),
        ...fact('Checkpoint', cp ? `${cp.treeSize} events, signed ${cp.timestamp}, root ${cp.rootHash}` : 'none'),
        ...fact('Signing key', cp ? `${cp.keyId} (${cp.publicKey})` : '—'),
        ...fact('Generated', String(report['generatedAt'])),
      ),
      h('pre', { class: 'report-json', text }),
      h(
        'div',
        { class: 'actions' },
        h('a', {
          class: 'button',
          text: 'Download JSON',
          attrs: { href: this.url, download: reportFileName(input.generatedAt) },
        }),
        h('button', { text: 'Print', on: { click: () => window.print() } }),
        h('button', { text: 'Close', on: { click: () => this.element.close() } }),
      ),
    );
    document.body.classList.add('printing-report');
    this.element.showModal();
  }

  private revoke(): void {
    document.body.classList.remove('printing-report');
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }
}
