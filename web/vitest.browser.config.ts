import { defineConfig } from 'vitest/config';

// The browser tests: playwright-core drives Debian's Chromium against the built viewer
// (web/dist), served by `perpetua serve` (PERPETUA_URL) or, offline, by Vite's preview
// server. One file at a time: they share one Chromium and the machine has two cores.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
