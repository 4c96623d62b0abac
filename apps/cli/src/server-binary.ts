/**
 * Locates the `paxkv-server` program: the built `dist/main.js` of the `@paxkv/server` package, or (when
 * `PAXKV_SERVER_FROM_SOURCE=1`, or when no build exists) its TypeScript source run through tsx.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** How to start one server process: `spawn(command, [...args, ...serverFlags])`. */
export interface ServerCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** `dist` or `source`, for the start-up message. */
  readonly kind: 'dist' | 'source';
}

/** Thrown when neither a build nor the source of `paxkv-server` can be found; says how to fix it. */
export class ServerBinaryNotFoundError extends Error {
  override readonly name = 'ServerBinaryNotFoundError';
}

/**
 * Finds the server program. `preferSource` (default: `PAXKV_SERVER_FROM_SOURCE=1`) runs
 * `src/main.ts` with `node --conditions=@paxkv/source --import tsx`, which needs no build.
 */
export function resolveServerCommand(
  preferSource: boolean = process.env.PAXKV_SERVER_FROM_SOURCE === '1',
): ServerCommand {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve('@paxkv/server/package.json'));
  } catch {
    throw new ServerBinaryNotFoundError(
      'cannot find the @paxkv/server package: install it next to @paxkv/cli (npm i @paxkv/server) or run from the paxkv repository',
    );
  }
  const dist = join(pkgDir, 'dist', 'main.js');
  const source = join(pkgDir, 'src', 'main.ts');
  if ((preferSource || !existsSync(dist)) && existsSync(source)) {
    let tsx: string;
    try {
      tsx = createRequire(source).resolve('tsx');
    } catch {
      if (existsSync(dist)) return { command: process.execPath, args: [dist], kind: 'dist' };
      throw new ServerBinaryNotFoundError(
        'paxkv-server is not built and tsx is not installed: run `pnpm build` (or `pnpm install` for tsx)',
      );
    }
    // tsx's package entry (dist/loader.mjs) registers its loader when imported through --import.
    return {
      command: process.execPath,
      args: ['--conditions=@paxkv/source', '--import', pathToFileURL(tsx).href, source],
      kind: 'source',
    };
  }
  if (existsSync(dist)) return { command: process.execPath, args: [dist], kind: 'dist' };
  throw new ServerBinaryNotFoundError(`paxkv-server is not built (${dist} is missing): run \`pnpm build\``);
}
