/**
 * A small pool of worker threads that checks partitions in parallel.
 * @module
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './check.js';

function startWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Running from sources (tests, tsx): register tsx's loader inside the worker, then load the
    // TypeScript entry (Node 20 ignores `--import` in a worker's execArgv).
    const api = pathToFileURL(createRequire(here).resolve('tsx/esm/api')).href;
    const entry = new URL('./worker.ts', here).href;
    const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(boot, { eval: true });
  }
  return new Worker(new URL('./worker.js', here));
}

/**
 * Idle worker threads kept for the next check (a thread costs tens of milliseconds to start).
 * Idle workers are `unref`'d, so they never keep the process alive.
 */
class WorkerPool {
  private readonly idle: Worker[] = [];

  /** Most idle workers kept. */
  constructor(private readonly maxIdle: number) {}

  /** An idle worker, or a new one. @throws when a thread cannot be started. */
  acquire(): Worker {
    const w = this.idle.pop() ?? startWorker();
    w.ref();
    return w;
  }

  /** Returns a healthy worker after use. */
  release(w: Worker): void {
    if (this.idle.length >= this.maxIdle) {
      void w.terminate();
      return;
    }
    w.unref();
    const onGone = (): void => {
      const k = this.idle.indexOf(w);
      if (k >= 0) this.idle.splice(k, 1);
    };
    w.once('exit', onGone);
    w.once('error', onGone);
    this.idle.push(w);
  }

  /** Terminates every idle worker. */
  async close(): Promise<void> {
    const all = this.idle.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

let shared: WorkerPool | undefined;

function pool(): WorkerPool {
  shared ??= new WorkerPool(availableParallelism());
  return shared;
}

/**
 * Terminates the idle checker threads kept between checks. Optional: idle threads never keep
 * the process alive; call it to free their memory at once.
 */
export async function closeWorkerPool(): Promise<void> {
  await shared?.close();
}

/** The error of a reply whose item was abandoned because `stop` asked for it. */
export const STOPPED = 'stopped';

/**
 * Runs `items` on `threads` workers, largest first. A worker error yields `{ ok: false }` for its
 * item, which `finish` may recover from in the calling thread.
 */
export async function runInWorkers<T, R>(
  items: readonly T[],
  threads: number,
  request: (item: T, i: number) => WorkerRequest,
  finish: (item: T, reply: WorkerReply) => R,
  stop: (result: R) => boolean,
  onDone: (done: number) => void,
  size: (item: T) => number,
  signal?: AbortSignal,
): Promise<R[]> {
  let stopped = false;
  const workers = new Set<Worker>();
  // Abandoning (the time budget ran out): stop handing out items and end the running ones.
  signal?.addEventListener('abort', () => {
    stopped = true;
    for (const w of workers) void w.terminate();
  });
  const order = items.map((_, i) => i).sort((a, b) => size(items[b] as T) - size(items[a] as T));
  const results: R[] = new Array(items.length);
  let nextIdx = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    let worker: Worker | undefined;
    try {
      worker = pool().acquire();
      worker.removeAllListeners('exit');
      worker.removeAllListeners('error');
      workers.add(worker);
    } catch {
      worker = undefined;
    }
    try {
      for (;;) {
        const k = nextIdx++;
        if (k >= order.length) return;
        const i = order[k] as number;
        const item = items[i] as T;
        const reply: WorkerReply = stopped
          ? { ok: false, error: STOPPED }
          : worker
            ? await ask(worker, request(item, i))
            : { ok: false, error: 'no worker' };
        if (!reply.ok && worker) {
          workers.delete(worker);
          void worker.terminate();
          worker = undefined;
        }
        const r =
          stopped && reply.ok === false ? finish(item, { ok: false, error: STOPPED }) : finish(item, reply);
        results[i] = r;
        onDone(++done);
        if (!stopped && stop(r)) {
          stopped = true;
          for (const w of workers) void w.terminate();
        }
      }
    } finally {
      if (worker) {
        workers.delete(worker);
        if (stopped) await worker.terminate();
        else pool().release(worker);
      }
    }
  };
  await Promise.all(Array.from({ length: threads }, lane));
  return results;
}

function ask(worker: Worker, req: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve) => {
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onExit = (): void => {
      cleanup();
      resolve({ ok: false, error: STOPPED });
    };
    const onMessage = (reply: WorkerReply): void => {
      cleanup();
      resolve(reply);
    };
    const onError = (err: Error): void => {
      cleanup();
      resolve({ ok: false, error: err.message });
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(req);
  });
}
