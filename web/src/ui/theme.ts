// The colour theme: light or dark, chosen with the header's button and kept in this browser;
// until chosen, the system's preference. The stylesheet keys off `<html data-theme>`.

const THEME_KEY = 'perpetua.theme';
export type Theme = 'light' | 'dark';

/** The theme in force: the one chosen here, else the system's. */
export function currentTheme(): Theme {
  const chosen = localStorage.getItem(THEME_KEY);
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme): void {
  document.documentElement.dataset['theme'] = theme;
}

/** Switches to the other theme and keeps the choice. */
export function toggleTheme(): Theme {
  const next: Theme = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  return next;
}
