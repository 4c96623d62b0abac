import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/matchers.ts', 'src/cli.ts', 'src/worker.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  dts: { compilerOptions: { ignoreDeprecations: '6.0', composite: false } },
  sourcemap: true,
  clean: true,
});
