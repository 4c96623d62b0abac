import { defineProject } from 'vitest/config';

// Repository-level tests (the README examples of every package).
export default defineProject({
  test: {
    name: 'repo',
    include: ['**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
