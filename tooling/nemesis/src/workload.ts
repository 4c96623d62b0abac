import type { LineSink } from './history.js';
import type { Rng } from './rng.js';

/** What the workload needs from a client (the real one is `@paxkv/client`, see `client-adapter.ts`). */
export interface WorkloadClient {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<unknown>;
  /** Applies `value` only if the key holds `expected` (`null`: absent); resolves whether it applied. */
  cas(
    key: string,
    expected: string | null,
    value: string,
  ): Promise<{ applied: boolean; current: string | null }>;
  delete(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Builds client number `index`, recording its history into `history`. */
export type WorkloadClientFactory = (
  index: number,
  history: LineSink,
) => Promise<WorkloadClient> | WorkloadClient;

/** Mix and pacing of the workload; every field has a default. */
export interface WorkloadConfig {
  /** Share of gets. Default 0.4. */
  readonly getWeight: number;
  /** Share of puts. Default 0.25. */
  readonly putWeight: number;
  /** Share of cas. Default 0.2. */
  readonly casWeight: number;
  /** Share of deletes. Default 0.15. */
  readonly deleteWeight: number;
  /** Most think time between two operations of one client, uniform from 0. Default 5 ms. */
  readonly maxThinkMs: number;
  /**
   * How many of the clients (the first ones) only read. A reader is never held up by a write stuck at a
   * deposed leader, so it keeps asking whichever server it believes leads: the bait for stale reads.
   * Default 1.
   */
  readonly readOnlyClients: number;
}

/** Defaults of {@link WorkloadConfig}. */
export const DEFAULT_WORKLOAD_CONFIG: WorkloadConfig = Object.freeze({
  getWeight: 0.4,
  putWeight: 0.25,
  casWeight: 0.2,
  deleteWeight: 0.15,
  maxThinkMs: 5,
  readOnlyClients: 1,
});

/** Live counters of the workload (the summary's numbers come from the histories). */
export interface WorkloadProgress {
  /** Calls that resolved. */
  resolved: number;
  /** Calls that rejected. */
  rejected: number;
  /** Rejections by error name. */
  readonly errors: Map<string, number>;
}

/**
 * K concurrent clients, each running its own loop until {@link ClientLoops.stop}, with the live
 * counters of their operations. Subclasses write the loop (see {@link Workload}, `BankWorkload`).
 */
export abstract class ClientLoops<C extends { close(): Promise<void> }> {
  /** Live counters. */
  readonly progress: WorkloadProgress = { resolved: 0, rejected: 0, errors: new Map() };
  /** Set by {@link stop}: loops end after their operation in flight. */
  protected stopped = false;
  private loops: Promise<void>[] = [];
  private clients: C[] = [];

  constructor(protected readonly rng: Rng) {}

  /** Creates `count` clients with `factory` and starts their loops. */
  async start(
    count: number,
    factory: (index: number, history: LineSink) => Promise<C> | C,
    histories: readonly LineSink[],
  ): Promise<void> {
    for (let i = 0; i < count; i++) {
      const h = histories[i];
      if (h === undefined) throw new RangeError(`no history sink for client ${i}`);
      this.clients.push(await factory(i, h));
    }
    this.loops = this.clients.map((c, i) => this.loop(c, i, this.rng.fork()));
  }

  /** Stops issuing operations, waits for the ones in flight, and closes the clients. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
  }

  /** One client's loop: runs operations until {@link stopped}. */
  protected abstract loop(client: C, index: number, rng: Rng): Promise<void>;

  /** Runs one operation, counting it as resolved or rejected (by error name); never throws. */
  protected async counted(op: () => Promise<void>): Promise<void> {
    try {
      await op();
      this.progress.resolved += 1;
    } catch (e) {
      this.progress.rejected += 1;
      const name = e instanceof Error ? e.name : 'non-error';
      this.progress.errors.set(name, (this.progress.errors.get(name) ?? 0) + 1);
    }
  }

  /** Waits a random think time of at most `maxMs`. */
  protected async think(rng: Rng, maxMs: number): Promise<void> {
    if (maxMs > 0) await new Promise((res) => setTimeout(res, rng.int(maxMs + 1)));
  }
}

/**
 * K concurrent clients, each a sequential loop of random get/put/cas/delete over a small key set (so
 * operations conflict). Every written value is unique (`c<client>-<n>`), so a value read later names the
 * write that produced it. A cas expects the value this client saw last for the key (or absence, or a
 * random earlier value), so a good share of them applies. The first `readOnlyClients` clients only read.
 * The clients record their own histories.
 */
export class Workload extends ClientLoops<WorkloadClient> {
  private readonly config: WorkloadConfig;

  constructor(
    private readonly keys: readonly string[],
    rng: Rng,
    config: Partial<WorkloadConfig> = {},
  ) {
    super(rng);
    if (keys.length === 0) throw new RangeError('the workload needs at least one key');
    this.config = { ...DEFAULT_WORKLOAD_CONFIG, ...config };
  }

  protected async loop(client: WorkloadClient, index: number, rng: Rng): Promise<void> {
    const c = this.config;
    const readOnly = index < c.readOnlyClients;
    const total = readOnly ? c.getWeight : c.getWeight + c.putWeight + c.casWeight + c.deleteWeight;
    const lastSeen = new Map<string, string | null>();
    const written: string[] = [];
    let n = 0;
    while (!this.stopped) {
      const key = rng.pick(this.keys);
      const r = rng.next() * total;
      await this.counted(async () => {
        if (r < c.getWeight) {
          lastSeen.set(key, await client.get(key));
        } else if (r < c.getWeight + c.putWeight) {
          const value = `c${index}-${n++}`;
          written.push(value);
          await client.put(key, value);
        } else if (r < c.getWeight + c.putWeight + c.casWeight) {
          const value = `c${index}-${n++}`;
          const roll = rng.next();
          const expected =
            roll < 0.7 && lastSeen.has(key)
              ? (lastSeen.get(key) ?? null)
              : roll < 0.85 || written.length === 0
                ? null
                : rng.pick(written);
          written.push(value);
          const res = await client.cas(key, expected, value);
          lastSeen.set(key, res.applied ? value : res.current);
        } else {
          await client.delete(key);
          lastSeen.set(key, null);
        }
      });
      await this.think(rng, c.maxThinkMs);
    }
  }
}
