import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolveServerCommand as resolveServer, type ServerCommand } from '@paxkv/server/launcher';

export type { ServerCommand } from '@paxkv/server/launcher';

/** The repository root (this file is `tooling/nemesis/src/server-command.ts`, or its build under `dist`). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Thrown when an unsafe mutation is asked of a server that does not run from source; says what to do. */
export class ServerNotFoundError extends Error {
  override readonly name = 'ServerNotFoundError';
}

/**
 * Locates the server (`@paxkv/server/launcher`): its TypeScript source run through tsx (no build needed;
 * the default, so the nemesis tests the code in the tree), or the built `dist/main.js` when `preferDist`
 * is set (`PAXKV_NEMESIS_SERVER=dist`) or tsx is missing.
 * @throws ServerBinaryNotFoundError when neither is available.
 */
export function resolveServerCommand(
  preferDist = process.env.PAXKV_NEMESIS_SERVER === 'dist',
): ServerCommand {
  return resolveServer({ preferSource: !preferDist });
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
    throw new ServerNotFoundError(
      'an unsafe mutation needs the server run from source through tsx: unset PAXKV_NEMESIS_SERVER=dist',
    );
  const preload = pathToFileURL(
    join(repoRoot(), 'tooling', 'nemesis', 'src', 'testing', 'unsafe-preload.ts'),
  ).href;
  const args = [...command.args];
  args.splice(tsxIndex + 2, 0, '--import', preload);
  return {
    command: { ...command, args },
    env: { PAXKV_NEMESIS_UNSAFE_MUTATION: mutation, PAXKV_UNSAFE_MUTATION: mutation },
  };
}

/**
 * Why `paxkv-server --help` cannot run (the e2e tests skip, saying so), or undefined when it can.
 */
export function serverStartProblem(): string | undefined {
  try {
    const cmd = resolveServerCommand();
    const r = spawnSync(cmd.command, [...cmd.args, '--help'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0)
      return `paxkv-server --help exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout).slice(0, 300)}`;
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
