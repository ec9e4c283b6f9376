// The arithmetic of a virtualized list of fixed-height rows: which rows to render for a
// scroll offset, where to scroll to reveal a row, and how keys move the selection. Kept
// apart from the DOM so it is tested on its own.

/** Rows `first` to `last` (inclusive) should be in the DOM; `last < first` when empty. */
export interface RowWindow {
  readonly first: number;
  readonly last: number;
}

/** The rows visible at `scrollTop`, plus `overscan` rows on each side, clamped to the list. */
export function visibleWindow(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  rowCount: number,
  overscan: number,
): RowWindow {
  if (rowCount === 0 || rowHeight <= 0) return { first: 0, last: -1 };
  const top = Math.max(0, scrollTop);
  const firstVisible = Math.min(rowCount - 1, Math.floor(top / rowHeight));
  const lastVisible = Math.min(rowCount - 1, Math.ceil((top + Math.max(0, viewportHeight)) / rowHeight) - 1);
  return {
    first: Math.max(0, firstVisible - overscan),
    last: Math.min(rowCount - 1, Math.max(firstVisible, lastVisible) + overscan),
  };
}

/** The scroll offset that shows row `index` whole, moving as little as possible. */
export function scrollToReveal(index: number, scrollTop: number, viewportHeight: number, rowHeight: number): number {
  const rowTop = index * rowHeight;
  const rowBottom = rowTop + rowHeight;
  if (rowTop < scrollTop) return rowTop;
  if (rowBottom > scrollTop + viewportHeight) return Math.max(0, rowBottom - viewportHeight);
  return scrollTop;
}

/** Keys that move the selection in a list. */
export type NavigationKey = 'ArrowUp' | 'ArrowDown' | 'PageUp' | 'PageDown' | 'Home' | 'End';

export function isNavigationKey(key: string): key is NavigationKey {
  return ['ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'Home', 'End'].includes(key);
}

/** The selected row after a key, `pageRows` rows to a page; -1 (nothing) in an empty list.
 * With nothing selected yet, any key selects the first row (End the last). */
export function moveSelection(current: number, key: NavigationKey, rowCount: number, pageRows: number): number {
  if (rowCount === 0) return -1;
  const page = Math.max(1, pageRows - 1);
  if (current < 0) return key === 'End' ? rowCount - 1 : 0;
  const next = {
    ArrowUp: current - 1,
    ArrowDown: current + 1,
    PageUp: current - page,
    PageDown: current + page,
    Home: 0,
    End: rowCount - 1,
  }[key];
  return Math.min(rowCount - 1, Math.max(0, next));
}
