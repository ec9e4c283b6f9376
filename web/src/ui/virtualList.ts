// A list of fixed-height rows of which only the visible ones are in the DOM, so 100,000+
// rows scroll smoothly. Keyboard: arrows, Page Up/Down, Home/End move the selection, Enter
// opens the selected row. Rows are reused elements, positioned with transforms, so
// scrolling never changes the layout of anything around the list.

import { isNavigationKey, moveSelection, scrollToReveal, visibleWindow } from '../model/virtual';
import { h } from './dom';

export interface VirtualListOptions {
  readonly label: string;
  readonly rowHeight: number;
  readonly className?: string;
  /** Fills a row element for row `index` (the element is reused for other rows). */
  renderRow(element: HTMLElement, index: number): void;
  onSelect?(index: number): void;
  onOpen?(index: number): void;
  /** A single click opens the row (lists whose rows are links); otherwise it selects, and a
   * double click opens. */
  readonly openOnClick?: boolean;
}

const OVERSCAN = 8;
let lists = 0;

export class VirtualList {
  readonly element: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private count = 0;
  private selected = -1;
  private viewportHeight = 0;
  private readonly rendered = new Map<number, HTMLElement>();
  private frame = 0;
  /** Prefix of the rows' element ids (for aria-activedescendant). */
  private readonly idPrefix = `vlist${(lists += 1)}-row`;

  constructor(private readonly options: VirtualListOptions) {
    this.spacer = h('div', { class: 'vlist-spacer' });
    this.element = h(
      'div',
      {
        class: `vlist ${options.className ?? ''}`,
        role: 'listbox',
        tabIndex: 0,
        attrs: { 'aria-label': options.label },
        on: {
          scroll: () => this.schedule(),
          keydown: (event) => this.onKey(event),
          click: (event) => this.onClick(event, false),
          dblclick: (event) => {
            if (!options.openOnClick) this.onClick(event, true);
          },
        },
      },
      this.spacer,
    );
    new ResizeObserver(() => {
      this.viewportHeight = this.element.clientHeight;
      this.schedule();
    }).observe(this.element);
  }

  get rowCount(): number {
    return this.count;
  }

  get selectedIndex(): number {
    return this.selected;
  }

  /** Sets the number of rows; the selection is kept when still in range. */
  setCount(count: number): void {
    this.count = count;
    if (this.selected >= count) this.selected = -1;
    this.spacer.style.height = `${count * this.options.rowHeight}px`;
    this.invalidate();
  }

  /** True when the list is scrolled to its end (a live tail keeps it there). */
  isAtEnd(): boolean {
    return this.element.scrollTop + this.element.clientHeight >= this.element.scrollHeight - this.options.rowHeight;
  }

  scrollToEnd(): void {
    this.element.scrollTop = this.element.scrollHeight;
    this.schedule();
  }

  /** Selects a row (without calling onSelect) and scrolls it into view. */
  select(index: number, notify = false): void {
    this.selected = index;
    if (index >= 0) {
      const height = this.viewportHeight || this.element.clientHeight;
      this.element.scrollTop = scrollToReveal(index, this.element.scrollTop, height, this.options.rowHeight);
    }
    this.schedule();
    if (notify && index >= 0) this.options.onSelect?.(index);
  }

  /** Re-renders the visible rows (their data changed). */
  invalidate(): void {
    for (const element of this.rendered.values()) element.remove();
    this.rendered.clear();
    this.schedule();
  }

  focus(): void {
    this.element.focus({ preventScroll: true });
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Renders now (the first render of a freshly loaded log does not wait for a frame). */
  render(): void {
    const height = this.viewportHeight || this.element.clientHeight;
    const { first, last } = visibleWindow(this.element.scrollTop, height, this.options.rowHeight, this.count, OVERSCAN);
    for (const [index, element] of this.rendered) {
      if (index < first || index > last) {
        element.remove();
        this.rendered.delete(index);
      }
    }
    for (let index = first; index <= last; index += 1) {
      let element = this.rendered.get(index);
      if (!element) {
        element = h('div', { class: 'vlist-row', role: 'option', id: `${this.idPrefix}${index}` });
        element.style.transform = `translateY(${index * this.options.rowHeight}px)`;
        element.dataset['index'] = String(index);
        this.options.renderRow(element, index);
        this.rendered.set(index, element);
        this.element.appendChild(element);
      }
      const isSelected = index === this.selected;
      element.classList.toggle('selected', isSelected);
      element.setAttribute('aria-selected', String(isSelected));
    }
    // Screen readers follow the selection while the focus stays on the list.
    if (this.rendered.has(this.selected)) {
      this.element.setAttribute('aria-activedescendant', `${this.idPrefix}${this.selected}`);
    } else {
      this.element.removeAttribute('aria-activedescendant');
    }
  }

  private pageRows(): number {
    return Math.max(1, Math.floor((this.viewportHeight || this.element.clientHeight) / this.options.rowHeight));
  }

  private onKey(event: KeyboardEvent): void {
    if (isNavigationKey(event.key)) {
      event.preventDefault();
      const next = moveSelection(this.selected, event.key, this.count, this.pageRows());
      if (next !== this.selected) this.select(next, true);
    } else if (event.key === 'Enter' && this.selected >= 0) {
      event.preventDefault();
      this.options.onOpen?.(this.selected);
    }
  }

  private onClick(event: MouseEvent, open: boolean): void {
    const row = (event.target as Element).closest<HTMLElement>('.vlist-row');
    const index = Number(row?.dataset['index'] ?? -1);
    if (!row || index < 0) return;
    if (index !== this.selected) this.select(index, true);
    this.focus();
    if (open || this.options.openOnClick) this.options.onOpen?.(index);
  }
}
