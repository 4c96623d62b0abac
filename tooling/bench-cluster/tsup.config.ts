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
  // etcd3 loads its .proto files from its own folder at run time: never bundle it.
  external: ['etcd3'],
});
