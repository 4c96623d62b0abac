/**
 * Runs the real `paxkv` program from source (node + tsx on `src/main.ts`) in its own process, with
 * servers it starts run from source too, for the end-to-end tests.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** What a run of `paxkv` did. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `paxkv args` with `input` on stdin; `env` is added to this process's (PAXKV_SERVERS cleared). */
export function runCliProcess(
  args: readonly string[],
  options: { readonly input?: string; readonly env?: Record<string, string>; readonly cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolveRun) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@paxkv/source', '--import', tsx, CLI_MAIN, ...args],
      {
        env: { ...process.env, PAXKV_SERVERS: '', PAXKV_SERVER_FROM_SOURCE: '1', ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
