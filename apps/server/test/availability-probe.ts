/**
 * The hostile suites' availability probe: "no partition loses availability" made a check that does not
 * depend on timing. While it runs it writes to every partition in a loop (one writer per partition,
 * sent to the server whose replica last reported itself the partition's leader, as a client that knows
 * the leaders does, so a partition is measured and not one server's front door; retrying answers that
 * say "try again" and attempts past 1 s) and samples every server's `status`,
 * which reports each replica's leader and ballot (its promise). Around one attack, {@link
 * AvailabilityProbe.window}:
 *
 * - fails at once if any replica promised a forged ballot (a round at or above
 *   {@link FORGED_ROUND_FLOOR}: elections raise rounds one at a time, so only a forged message reaches
 *   that range, and a promised forged ballot is exactly how one message used to kill a partition);
 * - waits (an event, with a guard) until every partition acknowledged a write sent after the attack
 *   ended, and fails naming the partition when one does not;
 * - reports per partition the longest time without an acknowledged write (measured, NOT asserted: on
 *   a shared machine timing belongs in `pnpm --filter @paxkv/server bench:hostile`, which compares it
 *   with the election timeout), the leader changes the servers counted, and the highest round seen.
 */
import { partitionOf, type TlsOptions } from '@paxkv/common';
import { RawClient } from './harness.js';
import { metric } from './hostile-helpers.js';

/**
 * Rounds at or above this are forged: a real election raises the round by one, and a test cluster
 * runs a few hundred elections at most. The attacks forge rounds far above it (2^48 - 1, 2^53 - 1).
 */
export const FORGED_ROUND_FLOOR = 2 ** 32;

/** What one server reported for one partition in one status sample. */
interface Sample {
  readonly at: number;
  readonly node: number;
  readonly partition: number;
  readonly leader: number | null;
  readonly role: string;
  readonly ballot?: { readonly n: number; readonly pid: number };
}

/** One partition over one window. */
export interface PartitionWindow {
  readonly partition: number;
  /** Writes acknowledged in the window. */
  readonly writes: number;
  /** Longest time (ms) without an acknowledged write, window edges included. */
  readonly longestGapMs: number;
  /** When that gap started, in ms since the window started (where in the attack it fell). */
  readonly longestGapStartMs: number;
  /** Growth of `paxkv_leader_changes_total{partition}` summed over the servers. */
  readonly leaderChanges: number;
  /** Highest ballot round any replica of the partition reported in the window. */
  readonly maxRound: number;
}

/** What {@link AvailabilityProbe.window} measured around one attack. */
export interface WindowReport {
  readonly name: string;
  readonly durationMs: number;
  readonly partitions: readonly PartitionWindow[];
}

/** A server the probe talks to (a harness `TestServer` is one); `child` null = not running. */
export interface ProbeServer {
  readonly address: string;
  readonly httpPort: number;
  readonly child: unknown;
}

/** Options of {@link AvailabilityProbe.start}. */
export interface AvailabilityProbeOptions {
  /** The cluster's servers (read at every sample: servers restarted on new ports are followed). */
  readonly servers: () => readonly ProbeServer[];
  /** The server the writers send through until a partition's leader is known (it forwards). */
  readonly via: () => ProbeServer;
  readonly partitions: number;
  /** TLS for the probe's connections. */
  readonly tls?: TlsOptions;
  /** Milliseconds between two status samples (default 100). */
  readonly sampleEveryMs?: number;
  /**
   * How long one attempt of a write may take before it is sent again (same session and sequence number,
   * so it is applied once), default 1 000 ms. As a careful client does: a write caught on a deposed
   * leader waits out the server's request timeout (5 s), which would measure that request, not the
   * partition.
   */
  readonly attemptTimeoutMs?: number;
  /** Guard (ms) on "every partition acknowledged a write after the attack" (default 120 000). */
  readonly recoveryGuardMs?: number;
}

/** A key of `partition` (keys are spread by hash: try names until one lands there). */
function keyOf(partition: number, partitions: number): string {
  for (let i = 0; ; i++) {
    const key = `availability-probe-${i}`;
    if (partitionOf(key, partitions) === partition) return key;
  }
}

const retryable = (code: unknown) => code === 'TIMEOUT' || code === 'NO_LEADER' || code === 'UNAVAILABLE';

/** Writers on every partition + a status sampler; see the file comment. */
export class AvailabilityProbe {
  /** Acknowledgement times per partition (sent-at, acked-at). */
  private readonly acks: Array<Array<{ sent: number; acked: number }>>;
  private readonly samples: Sample[] = [];
  /** Non-retryable answers the writers got (the suites assert none). */
  readonly errors: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly writers = new Map<string, RawClient>();
  private readonly statusClients = new Map<string, RawClient>();
  /** Partition -> address of the server whose replica last reported itself its leader. */
  private readonly leaderAt = new Map<number, string>();

  private constructor(private readonly options: AvailabilityProbeOptions) {
    this.acks = Array.from({ length: options.partitions }, () => []);
  }

  /** Starts the writers and the sampler, and waits until every partition acknowledged a write. */
  static async start(options: AvailabilityProbeOptions): Promise<AvailabilityProbe> {
    const probe = new AvailabilityProbe(options);
    for (let p = 0; p < options.partitions; p++) probe.loops.push(probe.writeLoop(p));
    probe.loops.push(probe.sampleLoop());
    await probe.allWroteSince(0, options.recoveryGuardMs ?? 120_000);
    return probe;
  }

  /**
   * Runs `attack` as one window (see the file comment) and returns its result and the report. Throws
   * if a forged ballot was promised, or if a partition acknowledged no write after the attack.
   */
  async window<T>(name: string, attack: () => Promise<T>): Promise<{ result: T; report: WindowReport }> {
    const servers = this.options.servers().filter((s) => s.child);
    const changes = async () => {
      const out: number[] = [];
      for (let p = 0; p < this.options.partitions; p++) {
        let sum = 0;
        for (const s of servers)
          sum += await metric(
            s.httpPort,
            'paxkv_leader_changes_total',
            { partition: String(p) },
            this.options.tls === undefined ? undefined : String(this.options.tls.ca),
          ).catch(() => 0);
        out.push(sum);
      }
      return out;
    };
    const changesBefore = await changes();
    this.samples.length = 0; // only this window's samples are looked at
    const t0 = Date.now();
    const result = await attack();
    const attackEnd = Date.now();
    // Everything the attack sent was processed (the attack waits for that): one fresh sample of every
    // server shows a forged promise at once, before any waiting.
    await this.sampleOnce();
    this.checkBallots(name, t0);
    await this.allWroteSince(attackEnd, this.options.recoveryGuardMs ?? 120_000, name);
    this.checkBallots(name, t0);
    const t1 = Date.now();
    const changesAfter = await changes();
    const partitions: PartitionWindow[] = [];
    for (let p = 0; p < this.options.partitions; p++) {
      const times = this.acks[p]!.filter((a) => a.acked >= t0 && a.acked <= t1).map((a) => a.acked);
      let gap = 0;
      let gapStart = 0;
      let prev = t0;
      for (const t of [...times, t1]) {
        if (t - prev > gap) {
          gap = t - prev;
          gapStart = prev - t0;
        }
        prev = t;
      }
      const rounds = this.samples.filter((s) => s.partition === p && s.at >= t0).map((s) => s.ballot?.n ?? 0);
      partitions.push({
        partition: p,
        writes: times.length,
        longestGapMs: gap,
        longestGapStartMs: gapStart,
        leaderChanges: changesAfter[p]! - changesBefore[p]!,
        maxRound: Math.max(0, ...rounds),
      });
    }
    return { result, report: { name, durationMs: t1 - t0, partitions } };
  }

  /**
   * Every stretch longer than `minMs` in which a partition acknowledged no write (between two
   * consecutive acknowledgements), over the probe's whole run, in wall-clock ms.
   */
  gaps(minMs: number): Array<{ partition: number; from: number; to: number }> {
    const out: Array<{ partition: number; from: number; to: number }> = [];
    this.acks.forEach((acks, partition) => {
      for (let i = 1; i < acks.length; i++) {
        const from = acks[i - 1]!.acked;
        const to = acks[i]!.acked;
        if (to - from > minMs) out.push({ partition, from, to });
      }
    });
    return out;
  }

  /** Stops the writers and the sampler and closes the probe's connections. */
  async stop(): Promise<void> {
    this.running = false;
    for (const c of this.writers.values()) c.close();
    for (const c of this.statusClients.values()) c.close();
    await Promise.allSettled(this.loops);
  }

  /** One line per partition: writes, longest gap, leader changes, highest round. */
  static format(report: WindowReport): string {
    const parts = report.partitions
      .map(
        (p) =>
          `p${p.partition}: ${p.writes} writes, longest gap ${p.longestGapMs} ms (from +${p.longestGapStartMs} ms), ${p.leaderChanges} leader changes, max round ${p.maxRound}`,
      )
      .join('; ');
    return `${report.name} (${report.durationMs} ms): ${parts}`;
  }

  private checkBallots(name: string, since: number): void {
    const forged = this.samples.find((s) => s.at >= since && (s.ballot?.n ?? 0) >= FORGED_ROUND_FLOOR);
    if (forged)
      throw new Error(
        `${name}: node ${forged.node} promised ballot (${forged.ballot!.n}, ${forged.ballot!.pid}) in partition ${forged.partition}, a round no election reaches (>= 2^32): a forged Prepare got through, and no replica can ever be elected above it`,
      );
  }

  private async allWroteSince(since: number, guardMs: number, name = 'start'): Promise<void> {
    const deadline = Date.now() + guardMs;
    for (;;) {
      const missing = this.acks
        .map((a, p) => (a.some((x) => x.sent >= since) ? -1 : p))
        .filter((p) => p >= 0);
      if (missing.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `${name}: partition(s) ${missing.join(', ')} acknowledged no write in the ${guardMs} ms after the attack (errors: ${JSON.stringify(this.errors.slice(-3))})`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A connection to the partition's last reported leader (to `via` until one is known). */
  private async client(partition: number): Promise<RawClient> {
    const address = this.leaderAt.get(partition) ?? this.options.via().address;
    const open = this.writers.get(address);
    if (open && !open.closed) return open;
    const c = await RawClient.connect(address, this.options.tls);
    this.writers.get(address)?.close();
    this.writers.set(address, c);
    return c;
  }

  private async writeLoop(partition: number): Promise<void> {
    const key = keyOf(partition, this.options.partitions);
    let seq = 0;
    const session = `availability-probe-${process.pid}-${partition}`;
    while (this.running) {
      seq++;
      const sent = Date.now();
      const message = {
        type: 'kv',
        op: { op: 'put', key, value: `w${seq}` },
        session: { client: session, seq },
      };
      for (;;) {
        if (!this.running) return;
        const reply = await this.client(partition)
          .then((c) => c.call(message, this.options.attemptTimeoutMs ?? 1000))
          .catch((e: Error) => ({ type: 'exception', message: e.message }) as Record<string, unknown>);
        if (reply?.type === 'kv.ok') {
          this.acks[partition]!.push({ sent, acked: Date.now() });
          break;
        }
        // A closed connection (null), an attempt past its timeout (exception) or an answer that says
        // "try again": the same write again.
        if (reply === null || reply.type === 'exception' || retryable(reply.code)) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        this.errors.push(`partition ${partition}: ${JSON.stringify(reply)}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private async sampleLoop(): Promise<void> {
    while (this.running) {
      await this.sampleOnce();
      await new Promise((r) => setTimeout(r, this.options.sampleEveryMs ?? 100));
    }
  }

  /** Asks every running server for its status once (in parallel) and records each replica's row. */
  private async sampleOnce(): Promise<void> {
    await Promise.all(
      this.options
        .servers()
        .filter((s) => s.child)
        .map(async (s) => {
          try {
            let c = this.statusClients.get(s.address);
            if (!c || c.closed) {
              c = await RawClient.connect(s.address, this.options.tls);
              this.statusClients.set(s.address, c);
            }
            const reply = (await c.call({ type: 'status' }, 5000)) as {
              status?: {
                node: number;
                groups: Array<Omit<Sample, 'at' | 'node'>>;
              };
            } | null;
            const at = Date.now();
            for (const g of reply?.status?.groups ?? []) {
              this.samples.push({ at, node: reply!.status!.node, ...g });
              if (g.role === 'leader') this.leaderAt.set(g.partition, s.address);
            }
          } catch {
            // A server being restarted: sampled again next time.
          }
        }),
    );
  }
}
