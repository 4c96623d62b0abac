import { defineProject } from 'vitest/config';

const conditions = ['@paxkv/source', 'module', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'bench-cluster',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    // The cluster tests start real servers; they share the run's two workers with every other file (a
    // project of its own with one worker would run alone after all the others: see ../../vitest.config.ts).
    hookTimeout: 60_000,
  },
});
