import { describe, expect, it } from 'vitest';
import { moveSelection, scrollToReveal, visibleWindow } from '../../src/model/virtual';

describe('visibleWindow', () => {
  it('covers the viewport plus the overscan, clamped to the list', () => {
    expect(visibleWindow(0, 260, 26, 100_000, 8)).toEqual({ first: 0, last: 17 });
    expect(visibleWindow(26 * 1000, 260, 26, 100_000, 8)).toEqual({ first: 992, last: 1017 });
    expect(visibleWindow(26 * 99_995, 260, 26, 100_000, 8)).toEqual({ first: 99_987, last: 99_999 });
  });

  it('includes a row partly visible at the bottom', () => {
    expect(visibleWindow(13, 26, 26, 10, 0)).toEqual({ first: 0, last: 1 });
    expect(visibleWindow(0, 27, 26, 10, 0)).toEqual({ first: 0, last: 1 });
    expect(visibleWindow(0, 26, 26, 10, 0)).toEqual({ first: 0, last: 0 });
  });

  it('is empty for an empty list and survives a scroll past the end', () => {
    expect(visibleWindow(0, 500, 26, 0, 8)).toEqual({ first: 0, last: -1 });
    expect(visibleWindow(1e9, 500, 26, 3, 8)).toEqual({ first: 0, last: 2 });
  });
});

describe('scrollToReveal', () => {
  it('moves as little as possible', () => {
    expect(scrollToReveal(5, 0, 260, 26)).toBe(0);
    expect(scrollToReveal(10, 0, 260, 26)).toBe(26);
    expect(scrollToReveal(3, 260, 260, 26)).toBe(78);
  });
});

describe('moveSelection', () => {
  it('moves by one, by a page, to the ends, and stays in range', () => {
    expect(moveSelection(5, 'ArrowDown', 10, 4)).toBe(6);
    expect(moveSelection(9, 'ArrowDown', 10, 4)).toBe(9);
    expect(moveSelection(0, 'ArrowUp', 10, 4)).toBe(0);
    expect(moveSelection(0, 'PageDown', 10, 4)).toBe(3);
    expect(moveSelection(8, 'PageDown', 10, 4)).toBe(9);
    expect(moveSelection(5, 'Home', 10, 4)).toBe(0);
    expect(moveSelection(5, 'End', 10, 4)).toBe(9);
  });

  it('selects the first row (the last with End) when nothing is selected', () => {
    expect(moveSelection(-1, 'ArrowDown', 10, 4)).toBe(0);
    expect(moveSelection(-1, 'ArrowUp', 10, 4)).toBe(0);
    expect(moveSelection(-1, 'End', 10, 4)).toBe(9);
    expect(moveSelection(-1, 'ArrowDown', 0, 4)).toBe(-1);
  });
});
