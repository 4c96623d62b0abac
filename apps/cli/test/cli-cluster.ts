/**
 * A local cluster started the way a user starts one, for the end-to-end tests: `paxkv cluster start
 * --detach` run as its own process in a fresh temporary directory (the cluster in `<dir>/.paxkv`), and
 * its teardown (`cluster stop`, then SIGKILL of anything left, also when the test process exits).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, readClusterFile } from '../src/cluster.js';
import { type CliRun, runCliProcess } from './cli-process.js';
import { runCliCaptured } from './run-cli.js';

/** A cluster started by {@link startCliCluster}. */
export interface CliCluster {
  /** The working directory of every command (the cluster is in `<dir>/.paxkv`). */
  readonly dir: string;
  /** The cluster directory, `<dir>/.paxkv`. */
  readonly clusterDir: string;
  /** `paxkv <args>` as its own process, from {@link dir}. */
  cli(args: readonly string[]): Promise<CliRun>;
  /** `paxkv <args>` in this process (the same code path, without tsx start-up), from {@link dir}. */
  quick(args: readonly string[]): Promise<CliRun>;
  /** `cluster stop`, SIGKILL of any server left, the directory removed. */
  destroy(): Promise<void>;
}

/**
 * Runs `paxkv cluster start --detach <startArgs>` in a new temporary directory (name prefix `prefix`)
 * and resolves once it exited 0.
 * @throws Error with the command's output when it failed
 */
export async function startCliCluster(prefix: string, startArgs: readonly string[]): Promise<CliCluster> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const clusterDir = join(dir, '.paxkv');
  const killAll = () => {
    for (const n of readClusterFile(clusterDir)?.nodes ?? []) {
      if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
    }
  };
  process.on('exit', killAll);
  const cluster: CliCluster = {
    dir,
    clusterDir,
    cli: (args) => runCliProcess(args, { cwd: dir }),
    quick: (args) => runCliCaptured(args, { PAXKV_SERVERS: '' }, dir),
    destroy: async () => {
      await runCliProcess(['cluster', 'stop'], { cwd: dir });
      killAll();
      process.off('exit', killAll);
      // PAXKV_TEST_KEEP_DIRS=1 keeps the directory (servers' logs and data) for a failure's cause.
      if (process.env.PAXKV_TEST_KEEP_DIRS !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
  const started = await cluster.cli(['cluster', 'start', '--detach', ...startArgs]);
  if (started.code !== 0) {
    await cluster.destroy();
    throw new Error(
      `paxkv cluster start failed (exit ${started.code}):\n${started.stdout}\n${started.stderr}`,
    );
  }
  return cluster;
}
