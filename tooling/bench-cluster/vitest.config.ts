import { defineProject } from 'vitest/config';

const conditions = ['@paxkv/source', 'module', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    name: 'bench-cluster',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    // The cluster tests start real servers: one file at a time keeps them off each other's cores.
    fileParallelism: false,
    hookTimeout: 60_000,
  },
});
