import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster, TargetOptions } from './cluster.js';
import { keyOf, makeValue, XorShift32 } from './workload.js';

/** Parameters of the stability figure (see `BenchOptions` for the defaults). */
export interface StabilitySpec {
  /** CPU hogs (`yes > /dev/null` processes) running beside the cluster during the window. */
  readonly hogs: number;
  /** Length of the fault-free window in which leader changes are counted. */
  readonly windowMs: number;
  /** Closed-loop put load during the window. */
  readonly concurrency: number;
  readonly keySpace: number;
  readonly valueBytes: number;
  readonly target: TargetOptions;
}

/** The stability figure of one system. */
export interface StabilityResult {
  readonly hogs: number;
  readonly windowMs: number;
  /**
   * Leader changes the members counted during the window (the sum of their own counters: paxkv
   * every partition's, etcd the one group's); with no fault injected every one is spurious.
   */
  readonly leaderChanges: number;
  /** Puts acknowledged per second during the window, and puts that failed. */
  readonly opsPerSec: number;
  readonly errors: number;
}

const hogs = new Set<ChildProcess>();
let hookInstalled = false;

/** Starts `n` CPU hogs (`yes`, output discarded); they are killed if this process exits first. */
export function startHogs(n: number): ChildProcess[] {
  if (!hookInstalled) {
    hookInstalled = true;
    process.on('exit', () => {
      for (const h of hogs) h.kill('SIGKILL');
    });
  }
  const out: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const h = spawn('yes', [], { stdio: ['ignore', 'ignore', 'ignore'] });
    h.on('error', () => {});
    hogs.add(h);
    h.once('exit', () => hogs.delete(h));
    out.push(h);
  }
  return out;
}

/** Kills the hogs started by {@link startHogs} and waits for them to exit. */
export async function stopHogs(list: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    list.map(
      (h) =>
        new Promise<void>((resolve) => {
          if (h.exitCode !== null || h.signalCode !== null) return resolve();
          h.once('exit', () => resolve());
          h.kill('SIGKILL');
        }),
    ),
  );
}

/**
 * The stability figure: with `hogs` CPU hogs saturating the machine and a steady put load, a window
 * with no fault at all; every leader change the members count in it is spurious (timeouts too short
 * for a loaded machine). The load starts with the hogs; the window opens after one second of both.
 */
export async function measureStability(cluster: LocalCluster, spec: StabilitySpec): Promise<StabilityResult> {
  const value = makeValue('stability:', spec.valueBytes);
  const target = await cluster.createTarget(spec.target);
  const running = startHogs(spec.hogs);
  let stopped = false;
  let counting = false;
  let ops = 0;
  let errors = 0;
  const worker = async (index: number): Promise<void> => {
    const rng = new XorShift32(index * 104_729 + 3);
    while (!stopped) {
      try {
        await target.put(keyOf(rng.int(spec.keySpace)), value);
        if (counting) ops += 1;
      } catch {
        if (counting) errors += 1;
        await sleep(1);
      }
    }
  };
  const workers = Array.from({ length: spec.concurrency }, (_, i) => worker(i));
  try {
    await sleep(1_000);
    const before = await cluster.leaderChanges();
    counting = true;
    const t0 = performance.now();
    await sleep(spec.windowMs);
    counting = false;
    const took = performance.now() - t0;
    const after = await cluster.leaderChanges();
    return {
      hogs: spec.hogs,
      windowMs: spec.windowMs,
      leaderChanges: after - before,
      opsPerSec: Math.round((ops * 1_000) / took),
      errors,
    };
  } finally {
    stopped = true;
    await stopHogs(running);
    await Promise.race([Promise.allSettled(workers), sleep(spec.target.requestTimeoutMs + 1_000)]);
    await target.close();
  }
}
