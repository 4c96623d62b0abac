/**
 * Test helper: runs `runCli` in this process with its output captured (stdin empty).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../src/cli.js';

/** What one in-process `paxkv` run printed and returned. */
export interface CapturedRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `paxkv <args>` in this process. `env` is the whole environment the CLI sees (default: no
 * `PAXKV_SERVERS`); `cwd` defaults to a fresh temporary directory.
 */
export async function runCliCaptured(
  args: readonly string[],
  env: Readonly<Record<string, string>> = { PAXKV_SERVERS: '' },
  cwd: string = mkdtempSync(join(tmpdir(), 'paxkv-cli-x-')),
): Promise<CapturedRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await runCli([...args], { stdout, stderr, stdin: new PassThrough(), env, cwd });
  return { code, stdout: out, stderr: err };
}
