import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Default grace period between SIGTERM and SIGKILL when stopping a server: 5,000 ms. */
export const DEFAULT_STOP_GRACE_MS = 5_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave servers behind, whatever way this process ends.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** A server process started by the benchmark, with its output going to a log file. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** True until the process has exited. */
  isAlive(): boolean;
}

/**
 * Spawns a server process whose stdout and stderr go to `logFile`; it is SIGKILLed if this process
 * exits first.
 * @throws Error when the executable cannot be started (missing binary).
 */
export async function startServer(
  name: string,
  command: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerProcess> {
  installExitHook();
  const log = createWriteStream(logFile, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    log.once('open', () => resolve());
    log.once('error', reject);
  });
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let alive = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  exited.then(
    () => log.end(),
    () => log.end(),
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e) => {
      alive = false;
      reject(new Error(`could not start ${command}: ${e.message}`));
    });
  });
  live.add(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command}: no pid`);
  return { name, pid, child, logFile, exited, isAlive: () => alive };
}

/**
 * Stops a server: SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited.
 */
export async function stopServer(server: ServerProcess, graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
  if (!server.isAlive()) return;
  server.child.kill('SIGTERM');
  const done = await Promise.race([server.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
}

/** Sends SIGKILL and resolves once the process is gone. */
export async function killServer(server: ServerProcess): Promise<void> {
  if (!server.isAlive()) return;
  server.child.kill('SIGKILL');
  await server.exited;
}

/** Thrown by a {@link waitFor} probe to stop waiting at once (a server died: waiting longer is useless). */
export class WaitAbortedError extends Error {
  override readonly name = 'WaitAbortedError';
}

/**
 * Polls `probe` every `intervalMs` until it resolves true or `timeoutMs` passes. A probe that throws
 * {@link WaitAbortedError} ends the wait with that error; other errors are retried.
 * @throws Error carrying `what` and the last probe error when the time is up.
 */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (e) {
      if (e instanceof WaitAbortedError) throw e;
      lastError = e;
    }
    await sleep(intervalMs);
  }
  const why = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** Interval between the connection attempts of {@link waitPortOpen}: 5 ms. */
export const PORT_POLL_MS = 5;

/**
 * Resolves once `host:port` accepts a TCP connection (polled every {@link PORT_POLL_MS}), with the
 * `performance.now()` of that moment: when a restarted server is "up" for the restart figures.
 * @throws WaitAbortedError when `alive()` turns false (the process died); Error after `timeoutMs`.
 */
export async function waitPortOpen(
  host: string,
  port: number,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!alive()) throw new WaitAbortedError(`${host}:${port}: the process exited before it listened`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (open) return performance.now();
    await sleep(PORT_POLL_MS);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${host}:${port} to accept connections`);
}
