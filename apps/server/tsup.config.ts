import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/main.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  banner: { js: '#!/usr/bin/env node' },
  sourcemap: true,
  clean: true,
});
