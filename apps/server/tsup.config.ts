import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/main.ts', 'src/certs.ts', 'src/launcher.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  banner: { js: '#!/usr/bin/env node' },
  dts: {
    entry: ['src/certs.ts', 'src/launcher.ts'],
    compilerOptions: { ignoreDeprecations: '6.0', composite: false },
  },
  sourcemap: true,
  clean: true,
});
