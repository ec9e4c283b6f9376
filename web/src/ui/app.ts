// The viewer's shell: the header (views, search, chain badge, source), opening a file or
// connecting to the server, the live tail, and routing between the views.

import { ServerClient, ServerError, serverIsUp } from '../api/server';
import { LoadedLog, loadWasm, verifyUndecodable, yieldToPage } from '../data/log';
import { formatBytes, formatCount } from '../model/format';
import { NO_FILTER } from '../model/filter';
import { parseRoute, type Route, routeOf, routeToHash } from '../model/routes';
import { parseQuery, resolveQuery } from '../model/search';
import { describeTail } from '../model/timeline';
import type { CheckpointReport } from '../data/types';
import { Badge, badgeText, type BadgeState } from './badge';
import { CheckpointWatch } from './checkpointWatch';
import { helpDialog } from './helpDialog';
import { ReportDialog } from './reportDialog';
import { applyTheme, currentTheme, toggleTheme } from './theme';
import { asReceipt, ReceiptView } from './views/receiptView';
import { h, replace } from './dom';
import { AccountView } from './views/accountView';
import { CausationView } from './views/causationView';
import { LogView } from './views/logView';
import { StreamView } from './views/streamView';

const TOKEN_KEY = 'perpetua.auditorToken';
/** The live tail hands events to the log at most this often (one wasm call per batch). */
const TAIL_BATCH_MS = 200;
/** Events verified at a time while a log opens (some tens of milliseconds in wasm). */
const VERIFY_SLICE = 8_000;
/** A file this small may be an order's receipt (one JSON object); larger ones are logs. */
const RECEIPT_MAX_BYTES = 4 << 20;

type ViewName = Route['name'];

export class App {
  private log: LoadedLog | null = null;
  /** The loaded file's checkpoint, checked once at load (a live tail carries none). */
  private checkpoint: CheckpointReport | null = null;
  private route: Route | null = null;
  private tail: AbortController | null = null;
  private pendingLines: string[] = [];
  private flushTimer = 0;
  private appended = 0;
  private readonly badge = new Badge((position) => this.go({ name: 'log', filter: NO_FILTER, at: position }));
  /** What the badge shows, for the report. */
  private badgeState: BadgeState = { kind: 'empty' };
  /** The loaded log's source, as the header names it. */
  private sourceLabel = '';
  private watch: CheckpointWatch | null = null;
  private readonly reportDialog = new ReportDialog();
  private readonly help = helpDialog();
  private readonly receiptView = new ReceiptView((check, receipt) =>
    this.setBadge({
      kind: 'receipt',
      ok: check.ok,
      detail: check.ok
        ? `${receipt.events.length} events under the checkpoint of ${receipt.checkpoint.treeSize}, key ${receipt.checkpoint.keyId}`
        : (check.error ?? ''),
    }),
  );
  private receiptShown = false;
  /** Counts loads: a load overtaken by a later one (another file chosen meanwhile) stops. */
  private loads = 0;
  private readonly reportButton = h('button', {
    id: 'report-button',
    text: 'Report',
    title: 'The verification report: download it as JSON or print it (r)',
    attrs: { disabled: '' },
    on: { click: () => this.openReport() },
  });
  private readonly logView = new LogView((route) => this.go(route));
  private readonly streamView = new StreamView((route) => this.go(route));
  private readonly causationView = new CausationView((route) => this.go(route));
  private readonly accountView = new AccountView();
  private readonly views: Record<ViewName, { element: HTMLElement; focus(): void }> = {
    log: this.logView,
    stream: this.streamView,
    causation: this.causationView,
    account: this.accountView,
  };
  private readonly tabs: Record<ViewName, HTMLAnchorElement>;
  /** Per view, the address it had when last shown (its tab goes back there). */
  private readonly lastHash: Record<ViewName, string | null> = {
    log: '#/log',
    stream: null,
    causation: null,
    account: null,
  };
  private readonly source = h('span', { class: 'source', role: 'status' });
  private readonly searchInput = h('input', {
    id: 'search',
    attrs: {
      type: 'search',
      placeholder: 'Find an id, a client order id, a symbol or #position  ( / )',
      'aria-label': 'Find',
      autocomplete: 'off',
      spellcheck: 'false',
    },
  });
  private readonly searchMessage = h('span', { class: 'search-message', role: 'alert' });
  private readonly fileInput = h('input', {
    attrs: {
      type: 'file',
      accept: '.jsonl,.ndjson,.json,application/json,application/x-ndjson',
      'aria-label': 'Open a log file',
    },
    class: 'visually-hidden',
  });
  private readonly tokenInput = h('input', {
    attrs: { type: 'password', autocomplete: 'off', 'aria-label': 'Auditor token', placeholder: 'Auditor token' },
  });
  private readonly connectMessage = h('p', { class: 'connect-message', role: 'alert' });
  private readonly connectDialog: HTMLDialogElement;
  private readonly home: HTMLElement;
  private readonly main = h('main', { id: 'main' });
  private readonly serverStatus = h('p', { class: 'hint server-status', text: 'Looking for a Perpetua server here…' });

  constructor(private readonly root: HTMLElement) {
    this.tabs = {
      log: this.tab('Log', 'log'),
      stream: this.tab('Stream', 'stream'),
      causation: this.tab('Causation', 'causation'),
      account: this.tab('Account', 'account'),
    };
    this.fileInput.addEventListener('change', () => {
      const file = this.fileInput.files?.[0];
      if (file) void this.openFile(file);
      this.fileInput.value = '';
    });
    this.connectDialog = this.buildConnectDialog();
    this.home = this.buildHome();
  }

  async start(): Promise<void> {
    const search = h(
      'form',
      {
        class: 'search',
        role: 'search',
        on: {
          submit: (e) => {
            e.preventDefault();
            this.search();
          },
        },
      },
      this.searchInput,
      this.searchMessage,
    );
    const header = h(
      'header',
      { class: 'bar' },
      h('h1', {}, 'Perpetua ', h('span', { text: 'audit' })),
      h('nav', { class: 'tabs', attrs: { 'aria-label': 'Views' } }, ...Object.values(this.tabs)),
      search,
      this.badge.element,
      this.reportButton,
      this.source,
      h('button', { text: 'Open file…', on: { click: () => this.fileInput.click() } }),
      h('button', { id: 'connect', text: 'Connect…', on: { click: () => this.openConnect() } }),
      h('button', {
        class: 'icon-button',
        text: '◐',
        title: 'Light or dark theme (t)',
        attrs: { 'aria-label': 'Switch theme' },
        on: { click: () => toggleTheme() },
      }),
      h('button', {
        class: 'icon-button',
        text: '?',
        title: 'Keys (?)',
        attrs: { 'aria-label': 'Keyboard help' },
        on: { click: () => this.help.showModal() },
      }),
      this.fileInput,
    );
    applyTheme(currentTheme());
    replace(this.root, header, this.main, this.connectDialog, this.reportDialog.element, this.help);
    this.main.append(this.home, this.receiptView.element, ...Object.values(this.views).map((v) => v.element));
    this.installDrop();
    window.addEventListener('hashchange', (event) => {
      // The view being left may have moved its selection with replaceState since it was
      // opened: its tab returns to the address as it was last.
      if (this.route) this.lastHash[this.route.name] = new URL(event.oldURL).hash || routeToHash(this.route);
      this.onRoute();
    });
    window.addEventListener('keydown', (event) => this.onGlobalKey(event));
    this.showOnly(null);
    await loadWasm();
    const up = await serverIsUp();
    this.serverStatus.textContent = up
      ? `A Perpetua server answers at ${location.host}.`
      : `No Perpetua server answers at ${location.host}: files can still be opened.`;
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token && up) await this.connect(token);
  }

  private tab(label: string, name: ViewName): HTMLAnchorElement {
    return h('a', {
      class: 'tab',
      text: label,
      data: { tab: name },
      attrs: { href: '#' },
      on: {
        click: (event) => {
          event.preventDefault();
          const hash = this.lastHash[name];
          if (hash && this.log) location.hash = hash;
        },
      },
    });
  }

  private buildHome(): HTMLElement {
    const drop = h(
      'div',
      { class: 'drop-zone' },
      h('h2', { text: 'Open an exported log' }),
      h(
        'p',
        {},
        'Drop a JSON Lines file here (as written by ',
        h('code', { text: 'perpetua demo' }),
        ', ',
        h('code', { text: 'perpetua export' }),
        " or the server's ",
        h('code', { text: '/v1/export' }),
        '), or',
      ),
      h('button', { text: 'Choose a file…', on: { click: () => this.fileInput.click() } }),
      h('p', {
        class: 'hint',
        text: 'Everything is replayed and verified in this browser, with the same core the server runs; nothing is uploaded.',
      }),
    );
    const server = h(
      'div',
      { class: 'server-panel' },
      h('h2', { text: 'Or connect to this server' }),
      h('p', { text: 'Loads the whole log with an auditor token, then follows new events live.' }),
      this.serverStatus,
      h('button', { text: 'Connect…', on: { click: () => this.openConnect() } }),
    );
    return h('section', { class: 'view home', data: { view: 'home' } }, drop, server);
  }

  private buildConnectDialog(): HTMLDialogElement {
    const form = h(
      'form',
      {
        attrs: { method: 'dialog' },
        on: {
          submit: (event) => {
            event.preventDefault();
            void this.connect(this.tokenInput.value.trim());
          },
        },
      },
      h('h2', { text: 'Connect to the server' }),
      h('label', {}, 'Auditor token', this.tokenInput),
      h('p', { class: 'hint', text: 'Kept in this tab only (sessionStorage).' }),
      this.connectMessage,
      h(
        'div',
        { class: 'actions' },
        h('button', { text: 'Connect', attrs: { type: 'submit' } }),
        h('button', { text: 'Cancel', attrs: { type: 'button' }, on: { click: () => this.connectDialog.close() } }),
      ),
    );
    return h('dialog', { class: 'connect-dialog' }, form);
  }

  private openConnect(): void {
    this.tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
    this.connectMessage.textContent = '';
    this.connectDialog.showModal();
    this.tokenInput.focus();
  }

  private installDrop(): void {
    window.addEventListener('dragover', (event) => {
      event.preventDefault();
      document.body.classList.add('dragging');
    });
    window.addEventListener('dragleave', (event) => {
      if (event.relatedTarget === null) document.body.classList.remove('dragging');
    });
    window.addEventListener('drop', (event) => {
      event.preventDefault();
      document.body.classList.remove('dragging');
      const file = event.dataTransfer?.files[0];
      if (file) void this.openFile(file);
    });
  }

  async openFile(file: File): Promise<void> {
    this.stopTail();
    performance.mark('load-start');
    const bytes = new Uint8Array(await file.arrayBuffer());
    performance.measure('read-file', 'load-start');
    const label = `${file.name} · ${formatBytes(file.size)}`;
    // A receipt is one JSON object; an export is JSON Lines (or an array of events).
    const text = bytes.length < RECEIPT_MAX_BYTES ? new TextDecoder().decode(bytes) : '';
    const receipt = asReceipt(text);
    if (receipt) {
      await loadWasm();
      this.replaceLog(null);
      this.receiptShown = true;
      this.source.textContent = `${label} · order receipt`;
      this.receiptView.show(text, receipt, file.name);
      this.showOnly(null);
      this.receiptView.focus();
      return;
    }
    await this.load(bytes, label);
  }

  /** Loads a log: parse and decode in wasm, render the list at once, verify the chain once
   * it is on screen (the badge says "verifying" meanwhile). The `first-render` and `verified`
   * measures run from the `load-start` mark: the file chosen, or the log downloaded. */
  private async load(bytes: Uint8Array, sourceLabel: string): Promise<boolean> {
    const generation = ++this.loads;
    this.receiptShown = false;
    this.sourceLabel = sourceLabel;
    this.setBadge({ kind: 'verifying' });
    this.source.textContent = `Loading ${sourceLabel}…`;
    await loadWasm();
    await nextFrame();
    let log: LoadedLog;
    const parseStart = performance.now();
    try {
      log = await LoadedLog.load(bytes, (parsed, total) => {
        if (generation !== this.loads) return;
        const percent = Math.floor((100 * parsed) / total);
        this.source.textContent = `Loading ${sourceLabel}… ${percent}%`;
      });
      performance.measure('parse-log', { start: parseStart, end: performance.now() });
      if (generation !== this.loads) {
        log.free();
        return false;
      }
    } catch (error) {
      if (generation !== this.loads) return false;
      this.replaceLog(null);
      this.source.textContent = `Cannot load ${sourceLabel}: ${message(error)}`;
      this.source.title = this.source.textContent;
      this.showUndecodable(bytes);
      return false;
    }
    const showStart = performance.now();
    this.replaceLog(log);
    performance.measure('replace-log', { start: showStart, end: performance.now() });
    this.source.textContent = `${sourceLabel} · ${formatCount(log.length)} events`;
    this.source.title = this.source.textContent;
    this.route = null;
    const routeStart = performance.now();
    this.onRoute();
    performance.measure('show-view', { start: routeStart, end: performance.now() });
    await afterPaint();
    performance.measure('first-render', 'load-start');
    const verifyStart = performance.now();
    if (!(await this.verifyInSlices(log))) return false;
    performance.measure('verify-chain', { start: verifyStart, end: performance.now() });
    performance.measure('verified', 'load-start');
    return true;
  }

  /** Verifies a freshly loaded log a slice at a time, the badge counting, then shows the
   * verdict; false when another log replaced it meanwhile. */
  private async verifyInSlices(log: LoadedLog): Promise<boolean> {
    for (;;) {
      const report = log.verifySome(VERIFY_SLICE);
      if (report.pending === 0 || report.firstBadPosition !== null) break;
      this.setBadge({ kind: 'verifying', checked: log.length - report.pending, total: log.length });
      await yieldToPage();
      if (this.log !== log) return false;
    }
    this.verify();
    return true;
  }

  /** Hands a new log (or none) to every view, then frees the one it replaces (the views
   * never hold a freed wasm object). */
  private replaceLog(log: LoadedLog | null): void {
    const old = this.log;
    this.log = log;
    this.checkpoint = log?.checkpoint() ?? null;
    for (const view of [this.logView, this.streamView, this.causationView, this.accountView]) view.setLog(log);
    if (old !== log) old?.free();
  }

  private showUndecodable(bytes: Uint8Array): void {
    try {
      this.setBadge({ kind: 'report', report: verifyUndecodable(bytes), badEvent: null });
    } catch (error) {
      this.setBadge({ kind: 'error', message: message(error) });
    }
    this.showOnly(null);
  }

  private verify(): void {
    const log = this.log;
    if (!log) return;
    const before = log.verification;
    const report = log.verify();
    const row = report.firstBadPosition === null ? -1 : log.columns.rowOfPosition(report.firstBadPosition);
    const badEvent = row === -1 ? null : log.event(row);
    this.setBadge({ kind: 'report', report, badEvent, checkpoint: this.checkpoint, live: this.watch?.latest ?? null });
    // The views were drawn before the chain was checked: once it breaks, they mark what it
    // no longer vouches for.
    if ((before?.firstBadPosition ?? null) !== report.firstBadPosition) {
      for (const view of [this.logView, this.streamView, this.causationView, this.accountView]) view.trustChanged();
    }
  }

  private setBadge(state: BadgeState): void {
    this.badgeState = state;
    this.badge.set(state);
    const reportable = state.kind === 'report' && this.log !== null;
    this.reportButton.toggleAttribute('disabled', !reportable);
  }

  /** The verification report of the loaded log, in its dialog. */
  private openReport(): void {
    const log = this.log;
    const state = this.badgeState;
    if (!log || state.kind !== 'report') return;
    const last = log.length - 1;
    const head = last >= 0 ? log.event(last) : null;
    const { text, detail } = badgeText(state);
    this.reportDialog.open({
      source: this.sourceLabel,
      generatedAt: new Date(),
      events: {
        count: log.length,
        firstPosition: log.columns.positions[0] ?? null,
        lastPosition: log.columns.positions[last] ?? null,
      },
      head: head ? { position: head.position, hash: head.hash } : null,
      chain: state.report,
      checkpoint: this.checkpoint,
      live: this.watch?.seen ?? [],
      verdict: { text, detail },
    });
  }

  private async connect(token: string): Promise<void> {
    if (token === '') {
      this.connectMessage.textContent = 'Type the auditor token.';
      return;
    }
    this.stopTail();
    this.connectMessage.textContent = 'Loading the log…';
    const client = new ServerClient(token);
    let bytes: Uint8Array;
    try {
      bytes = await client.exportLog();
    } catch (error) {
      this.connectMessage.textContent =
        error instanceof ServerError ? `${error.code}: ${error.message}` : message(error);
      if (!this.connectDialog.open) this.openConnect();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    performance.mark('load-start');
    if (this.connectDialog.open) this.connectDialog.close();
    if (!(await this.load(bytes, `server ${location.host}`))) return;
    this.startTail(client);
  }

  private startTail(client: ServerClient): void {
    const log = this.log;
    if (!log) return;
    const controller = new AbortController();
    this.tail = controller;
    this.appended = 0;
    this.watch = new CheckpointWatch(
      client,
      () => this.log,
      () => this.verify(),
      location.host,
    );
    void this.watch.run(this.checkpoint?.checkpoint ?? null, controller.signal);
    const from = (log.columns.positions[log.length - 1] ?? 0) + 1;
    const status = (connected: boolean): void => {
      this.source.dataset['live'] = connected ? 'on' : 'off';
      const events = formatCount(this.log?.length ?? 0);
      this.source.textContent = `${describeTail(connected, this.appended)} · ${events} events · ${location.host}`;
      this.source.title = this.source.textContent;
    };
    client
      .tail(
        from,
        {
          onConnected: status,
          onEvents: (lines) => {
            this.pendingLines.push(...lines);
            this.flushTimer ||= window.setTimeout(() => this.flushTail(status), TAIL_BATCH_MS);
          },
        },
        controller.signal,
      )
      .catch((error: unknown) => {
        this.source.dataset['live'] = 'off';
        this.source.textContent = `Live tail stopped: ${message(error)}`;
      });
  }

  private flushTail(status: (connected: boolean) => void): void {
    this.flushTimer = 0;
    const log = this.log;
    const lines = this.pendingLines;
    this.pendingLines = [];
    if (!log || lines.length === 0) return;
    try {
      this.appended += log.append(lines.join('\n'));
    } catch (error) {
      // A gap or an event that does not decode is a fault to show, never to skip over.
      this.stopTail();
      this.source.dataset['live'] = 'off';
      this.source.textContent = `Live tail stopped: ${message(error)}`;
      this.source.title = this.source.textContent;
      return;
    }
    status(true);
    this.verify();
    this.logView.logGrew();
    if (this.route?.name === 'stream') this.streamView.logGrew();
    if (this.route?.name === 'causation') this.causationView.logGrew();
    if (this.route?.name === 'account') this.accountView.logGrew();
  }

  private stopTail(): void {
    this.tail?.abort();
    this.tail = null;
    this.watch = null;
    window.clearTimeout(this.flushTimer);
    this.flushTimer = 0;
    this.pendingLines = [];
    delete this.source.dataset['live'];
  }

  private go(route: Route): void {
    const hash = routeToHash(route);
    if (location.hash === hash) this.onRoute();
    else location.hash = hash;
  }

  private onRoute(): void {
    const log = this.log;
    if (!log) {
      this.showOnly(null);
      return;
    }
    const route = parseRoute(location.hash, log.columns.eventTypeNames);
    const changedView = this.route?.name !== route.name;
    this.route = route;
    this.lastHash[route.name] = routeToHash(route);
    this.showOnly(route.name);
    switch (route.name) {
      case 'log':
        this.logView.show(route);
        break;
      case 'stream':
        this.streamView.show(route);
        break;
      case 'causation':
        this.causationView.show(route);
        break;
      case 'account':
        this.accountView.show(route);
        break;
    }
    if (changedView && document.activeElement !== this.searchInput) this.views[route.name].focus();
  }

  private showOnly(name: ViewName | null): void {
    this.home.hidden = name !== null || this.receiptShown;
    this.receiptView.element.hidden = !this.receiptShown || name !== null;
    for (const [key, view] of Object.entries(this.views)) view.element.hidden = key !== name;
    for (const [key, tab] of Object.entries(this.tabs)) {
      const enabled = this.log !== null && this.lastHash[key as ViewName] !== null;
      tab.classList.toggle('active', key === name);
      tab.setAttribute('aria-disabled', String(!enabled));
      if (key === name) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
  }

  private search(): void {
    const log = this.log;
    if (!log) {
      this.searchMessage.textContent = 'Open a log first.';
      return;
    }
    const target = resolveQuery(parseQuery(this.searchInput.value), log);
    this.searchMessage.textContent =
      target.view === 'none' ? target.message : target.view === 'stream' ? (target.note ?? '') : '';
    const route = routeOf(target);
    if (route) this.go(route);
  }

  private onGlobalKey(event: KeyboardEvent): void {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
    const dialogOpen = document.querySelector('dialog[open]') !== null;
    if (event.key === '/' && !typing && !dialogOpen) {
      event.preventDefault();
      this.searchInput.focus();
      this.searchInput.select();
    } else if (event.key === '?' && !typing && !dialogOpen) {
      this.help.showModal();
    } else if (event.key === 'r' && !typing && !dialogOpen && !event.ctrlKey && !event.metaKey) {
      this.openReport();
    } else if (event.key === 't' && !typing && !dialogOpen && !event.ctrlKey && !event.metaKey) {
      toggleTheme();
    } else if (event.key === 'Escape' && event.target === this.searchInput && this.route) {
      this.views[this.route.name].focus();
    }
  }
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

/** Resolves once what was rendered before has been painted (the task after the next frame). */
function afterPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
