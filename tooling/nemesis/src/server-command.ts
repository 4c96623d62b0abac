import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** How to start one `paxkv-server` process: `spawn(command, [...args, ...flags])`. */
export interface ServerCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Where the program comes from, for the start-up line. */
  readonly description: string;
}

/** The repository root (this file is `tooling/nemesis/src/server-command.ts`, or its build under `dist`). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Thrown when no way to start `paxkv-server` exists; the message says what to do. */
export class ServerNotFoundError extends Error {
  override readonly name = 'ServerNotFoundError';
}

/**
 * Locates the server: its TypeScript source run through tsx (no build needed; the default, so the nemesis
 * tests the code in the tree), or the built `apps/server/dist/main.js` when `preferDist` is set or tsx is
 * missing.
 * @throws ServerNotFoundError when neither is available.
 */
export function resolveServerCommand(
  preferDist = process.env.PAXKV_NEMESIS_SERVER === 'dist',
): ServerCommand {
  const root = repoRoot();
  const source = join(root, 'apps', 'server', 'src', 'main.ts');
  const dist = join(root, 'apps', 'server', 'dist', 'main.js');
  if (preferDist && existsSync(dist)) return { command: process.execPath, args: [dist], description: dist };
  if (existsSync(source)) {
    try {
      const tsx = createRequire(join(root, 'package.json')).resolve('tsx');
      return {
        command: process.execPath,
        args: ['--conditions=@paxkv/source', '--import', pathToFileURL(tsx).href, source],
        description: `${source} (tsx)`,
      };
    } catch {
      // fall through to the build
    }
  }
  if (existsSync(dist)) return { command: process.execPath, args: [dist], description: dist };
  throw new ServerNotFoundError(
    `cannot find paxkv-server: neither ${source} with tsx nor ${dist}; run pnpm install / pnpm build`,
  );
}

/**
 * TESTING ONLY: the same command with the kvstore's test-only `unsafeMutation` switched on in every replica
 * group (see `testing/unsafe-preload.ts`). Needs the source command (tsx), since the preload is TypeScript.
 * @returns the command and the environment the servers need.
 */
export function withUnsafeMutation(
  command: ServerCommand,
  mutation: string,
): { command: ServerCommand; env: Record<string, string> } {
  const tsxIndex = command.args.indexOf('--import');
  if (tsxIndex < 0)
    throw new ServerNotFoundError('an unsafe mutation needs the server run from source through tsx');
  const preload = pathToFileURL(
    join(repoRoot(), 'tooling', 'nemesis', 'src', 'testing', 'unsafe-preload.ts'),
  ).href;
  const args = [...command.args];
  args.splice(tsxIndex + 2, 0, '--import', preload);
  return {
    command: {
      command: command.command,
      args,
      description: `${command.description} + TESTING ONLY mutation ${mutation}`,
    },
    env: { PAXKV_NEMESIS_UNSAFE_MUTATION: mutation, PAXKV_UNSAFE_MUTATION: mutation },
  };
}
