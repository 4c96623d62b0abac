/**
 * A ready-made harness: N {@link SequencePaxos} replicas over checked in-memory storage, under the
 * {@link Simulator}, with the cluster-wide safety checker.
 * @module
 */
import { compareBallots, type NodeId } from '../ballot.js';
import type { PaxosConfig } from '../config.js';
import { NoLeaderError, NotLeaderError, OverloadedError } from '../errors.js';
import type { PaxosMessage } from '../messages.js';
import { type DecidedItem, SequencePaxos } from '../sequence-paxos.js';
import { formatStopSign, isStopSign, type LogEntry } from '../stop-sign.js';
import { CheckedStorage, InvariantViolation } from './checked-storage.js';
import { type SimNode, Simulator, type SimulatorOptions } from './simulator.js';

/** FNV-1a over a string, continuing from `h`. */
export function fnv1a(h: number, s: string): number {
  let x = h >>> 0;
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x;
}

/** Hash of the empty prefix. */
export const FNV_OFFSET = 0x811c9dc5;

/** How a log entry is recorded in the chosen log: commands as they are, stop-signs as `\u0000stop->c3{1,2,4}`. */
export function entryKey(e: LogEntry<string>): string {
  return isStopSign(e) ? `\u0000${formatStopSign(e)}` : e;
}

/** The toy application of the harness: it keeps a running hash of the applied entries. */
export class HashApp {
  /** Entries applied (a count). */
  applied = 0;
  /** FNV-1a hash of the applied entries, in order. */
  hash = FNV_OFFSET;

  /** Serialises the state: 8 bytes, applied count then hash, big-endian. */
  snapshot(): Uint8Array {
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setUint32(0, this.applied);
    v.setUint32(4, this.hash);
    return out;
  }

  /** Decodes a snapshot made by {@link snapshot}. */
  static decode(data: Uint8Array): { applied: number; hash: number } {
    if (data.length !== 8) throw new InvariantViolation(`snapshot of ${data.length} bytes, expected 8`);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { applied: v.getUint32(0), hash: v.getUint32(4) };
  }
}

/**
 * The cluster-wide safety checker. It sees every decided item of every replica, in order, and keeps
 * the one history all replicas must agree on.
 *
 * Checks: no two replicas decide different entries at one index (also across restarts: a replica
 * that restarts replays its decided prefix through the same check, so a lost or changed decided
 * entry is caught); every replica's decided items come in index order; a snapshot matches the
 * chosen prefix it claims to cover; a completed read index covers every entry decided anywhere
 * when the read was requested.
 */
export class InvariantChecker {
  /** The chosen entries, by index. */
  readonly chosen: string[] = [];
  /** `prefixHash[i]` = hash of the first `i` chosen entries. */
  private readonly prefixHash: number[] = [FNV_OFFSET];
  /** Violations seen (the first one is also thrown). */
  readonly violations: string[] = [];
  /** Per configuration, the index of the decided stop-sign that ended it. */
  readonly stoppedAt = new Map<number, number>();
  /**
   * Check, when a replica starts a configuration, that the stop-sign creating it is decided and
   * that the state it starts from is the decided prefix. The mutation test turns it off to show the
   * other invariants catch an early start too.
   */
  checkStarts = true;

  /** Number of entries decided at any replica so far. */
  get chosenLength(): number {
    return this.chosen.length;
  }

  private fail(msg: string): never {
    this.violations.push(msg);
    throw new InvariantViolation(msg);
  }

  /**
   * Feeds the decided items of replica `pid` in configuration `config` (drained in order) into its
   * app, checking each: agreement with the one chosen log across configurations, and nothing decided
   * by a configuration after its stop-sign.
   */
  onDecided(
    pid: NodeId,
    app: HashApp,
    items: readonly DecidedItem<string>[],
    config: number | null = 0,
  ): void {
    for (const it of items) {
      if (it.kind === 'snapshot') {
        const s = HashApp.decode(it.data);
        if (s.applied !== it.index)
          this.fail(`replica ${pid}: snapshot index ${it.index} != its content ${s.applied}`);
        if (it.index > this.chosen.length) {
          this.fail(
            `replica ${pid}: snapshot at ${it.index} beyond anything decided (${this.chosen.length})`,
          );
        }
        if (this.prefixHash[it.index] !== s.hash) {
          this.fail(`replica ${pid}: snapshot at ${it.index} does not match the decided prefix`);
        }
        app.applied = s.applied;
        app.hash = s.hash;
        continue;
      }
      if (it.index !== app.applied) {
        this.fail(`replica ${pid}: decided entry at ${it.index} out of order (expected ${app.applied})`);
      }
      const stop = config === null ? undefined : this.stoppedAt.get(config);
      if (stop !== undefined && it.index > stop) {
        this.fail(
          `stopped configuration: replica ${pid} decided index ${it.index} in configuration ${config} after its stop-sign at ${stop}`,
        );
      }
      const key = it.kind === 'entry' ? it.entry : entryKey(it.stopSign);
      const prev = this.chosen[it.index];
      if (prev === undefined) {
        if (it.index !== this.chosen.length) this.fail(`replica ${pid}: decided ${it.index} with a gap`);
        this.chosen.push(key);
        this.prefixHash.push(fnv1a(this.prefixHash[it.index] as number, key));
      } else if (prev !== key) {
        this.fail(
          `agreement: replica ${pid} decided ${JSON.stringify(key)} at index ${it.index} in configuration ${config}, another decided ${JSON.stringify(prev)}`,
        );
      }
      if (config !== null && it.kind === 'stopsign' && it.stopSign.configId > config) {
        const had = this.stoppedAt.get(config);
        if (had !== undefined && had !== it.index) {
          this.fail(`configuration ${config} stopped twice: at ${had} and at ${it.index}`);
        }
        this.stoppedAt.set(config, it.index);
      }
      app.applied++;
      app.hash = fnv1a(app.hash, key);
    }
  }

  /**
   * A replica starts configuration `config` from the decided log up to `base`: configuration
   * `config - 1` must have decided (at some replica, drained before this call) a stop-sign naming
   * `config` and `pid` at `base - 1` (when {@link checkStarts} is on). The new configuration's own
   * replay of its starting log does not count: it would "decide" whatever it was seeded with.
   */
  onStart(pid: NodeId, config: number, base: number): void {
    if (!this.checkStarts) return;
    const at = this.stoppedAt.get(config - 1);
    if (at !== base - 1) {
      this.fail(
        `early start: replica ${pid} started configuration ${config} at ${base} before configuration ${config - 1} decided a stop-sign there (it decided one at ${at ?? 'no index'})`,
      );
    }
    const e = this.chosen[at] as string;
    if (!e.startsWith(`\u0000stop->c${config}{`))
      this.fail(`replica ${pid} started configuration ${config} from ${e}`);
    const members = e
      .slice(e.indexOf('{') + 1, -1)
      .split(',')
      .map(Number);
    if (!members.includes(pid))
      this.fail(`replica ${pid} started configuration ${config} it is not a member of`);
  }

  /** Checks a completed read: its index must cover `required` (entries decided when it was requested). */
  onRead(pid: NodeId, token: number, index: number, required: number): void {
    if (index < required) {
      this.fail(
        `read index: replica ${pid} answered read ${token} at index ${index}, but ${required} entries were decided before it was requested`,
      );
    }
  }
}

/** Options of {@link PaxosCluster}. */
export interface PaxosClusterOptions {
  /** Seed of the simulation. */
  readonly seed: number;
  /** Number of replicas (ids `1..replicas`). Default `3`. */
  readonly replicas?: number;
  /** Config of every replica. */
  readonly config?: Partial<PaxosConfig>;
  /** Per-replica config overrides (for mutation tests). */
  readonly configOf?: (pid: NodeId) => Partial<PaxosConfig> | undefined;
  /** Network options (delays, duplicates, loss). */
  readonly network?: Partial<
    Pick<
      SimulatorOptions<unknown>,
      'minDelay' | 'maxDelay' | 'duplicateProbability' | 'lossProbability' | 'maxDeliveriesPerTick'
    >
  >;
  /** Run the invariant checker on every event. Default `true`; the bench turns it off. */
  readonly check?: boolean;
}

/**
 * Size of a harness log entry for the leader's byte budget (`entryBytes`): a command's length, 32 for a
 * stop-sign. With a small `maxBatchBytes` the simulations cut batches by size as well as by count.
 */
export function harnessEntryBytes(entry: LogEntry<string>): number {
  return typeof entry === 'string' ? entry.length : 32;
}

/** A replica of the harness: the core, plus its toy app (rebuilt after a crash). */
class HarnessNode implements SimNode<PaxosMessage<LogEntry<string>>> {
  readonly app = new HashApp();
  constructor(readonly paxos: SequencePaxos<string>) {}
  handle(from: NodeId, message: PaxosMessage<LogEntry<string>>): void {
    this.paxos.handle(from, message);
  }
  tick(): void {
    this.paxos.tick();
  }
  drainOutbox() {
    return this.paxos.drainOutbox();
  }
  reconnected(peer: NodeId): void {
    this.paxos.reconnected(peer);
  }
  disconnected(peer: NodeId): void {
    this.paxos.disconnected(peer);
  }
}

interface PendingReadCheck {
  readonly pid: NodeId;
  readonly required: number;
}

/**
 * N replicas of `SequencePaxos<string>` over {@link CheckedStorage} (kept across crashes, as a disk
 * would be), driven by a {@link Simulator}, with the {@link InvariantChecker} run after every event.
 * Client commands are strings. Any violation throws a `SimulationError` naming the seed.
 */
export class PaxosCluster {
  /** The simulator (faults, partitions, crashes). */
  readonly sim: Simulator<PaxosMessage<LogEntry<string>>>;
  /** Replica ids, `1..replicas`. */
  readonly ids: readonly NodeId[];
  /** Each replica's storage; it survives crashes. */
  readonly storages = new Map<NodeId, CheckedStorage<string>>();
  /** The safety checker. */
  readonly checker = new InvariantChecker();
  /** Number of distinct leader ballots that reached the accept phase. */
  leaderChanges = 0;
  /** Decided items per replica (current incarnations), when `check` is off. */
  decidedCount = 0;
  private readonly check: boolean;
  private readonly nodes = new Map<NodeId, HarnessNode>();
  private readonly reads = new Map<number, PendingReadCheck>();
  private maxLeaderBallot = { n: 0, pid: 0 };

  constructor(opts: PaxosClusterOptions) {
    const n = opts.replicas ?? 3;
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    this.check = opts.check ?? true;
    for (const pid of this.ids) this.storages.set(pid, new CheckedStorage<string>(pid));
    this.sim = new Simulator<PaxosMessage<LogEntry<string>>>({
      seed: opts.seed,
      nodeIds: this.ids,
      ...(opts.network ?? {}),
      factory: (pid) => {
        const node = new HarnessNode(
          new SequencePaxos<string>({
            pid,
            peers: this.ids.filter((p) => p !== pid),
            storage: this.storages.get(pid) as CheckedStorage<string>,
            config: { ...(opts.config ?? {}), ...(opts.configOf?.(pid) ?? {}) },
            entryBytes: harnessEntryBytes,
          }),
        );
        this.nodes.set(pid, node);
        return node;
      },
    });
    this.sim.onEvent((e) => {
      if (e.kind === 'deliver') this.observe(e.to);
      else if (e.kind === 'tick' || e.kind === 'restart') this.observe(e.pid);
    });
  }

  /** The live core of `pid`, or `undefined` while crashed. */
  replica(pid: NodeId): SequencePaxos<string> | undefined {
    return this.sim.isUp(pid) ? this.nodes.get(pid)?.paxos : undefined;
  }

  /** The live replicas. */
  live(): SequencePaxos<string>[] {
    const out: SequencePaxos<string>[] = [];
    for (const pid of this.ids) {
      const r = this.replica(pid);
      if (r) out.push(r);
    }
    return out;
  }

  /** The live replica that leads the highest ballot in the accept phase, if any. */
  leader(): SequencePaxos<string> | undefined {
    let best: SequencePaxos<string> | undefined;
    for (const r of this.live()) {
      if (r.role === 'leader' && r.phase === 'accept') {
        if (!best || compareBallots(r.ballot, best.ballot) > 0) best = r;
      }
    }
    return best;
  }

  /** Proposes `command` at replica `pid`; returns `false` if it is down or knows no leader. */
  propose(pid: NodeId, command: string): boolean {
    const r = this.replica(pid);
    if (!r) return false;
    try {
      this.sim.withNode(pid, () => r.propose(command));
      return true;
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof NoLeaderError || cause instanceof OverloadedError) return false;
      throw err;
    }
  }

  /** Starts a read-index request at `pid`; returns `false` if it is down or not the leader. */
  readIndex(pid: NodeId, token: number): boolean {
    const r = this.replica(pid);
    if (!r) return false;
    try {
      this.sim.withNode(pid, () => r.readIndex(token));
    } catch (err) {
      if ((err as { cause?: unknown }).cause instanceof NotLeaderError) return false;
      throw err;
    }
    this.reads.set(token, { pid, required: this.checker.chosenLength });
    return true;
  }

  /** Compacts replica `pid` at everything it applied, with its app snapshot. */
  compact(pid: NodeId): void {
    const node = this.nodes.get(pid);
    const r = this.replica(pid);
    if (!node || !r) return;
    this.sim.withNode(pid, () => r.compact(node.app.applied, node.app.snapshot()));
  }

  /** Runs `n` simulation steps. */
  run(n: number): void {
    this.sim.run(n);
  }

  /**
   * After healing: runs until every live replica decided exactly the entries chosen so far; returns
   * the steps taken, or -1 after `max`.
   */
  runUntilConverged(max: number): number {
    return this.sim.runUntil(() => this.converged(), max);
  }

  /** Whether every live replica has decided (and applied) exactly the chosen entries. */
  converged(): boolean {
    const target = this.checker.chosenLength;
    for (const pid of this.ids) {
      if (!this.sim.isUp(pid)) continue;
      const node = this.nodes.get(pid);
      if (!node || node.app.applied !== target || node.paxos.decidedIndex !== target) return false;
    }
    return true;
  }

  /** Drains the outputs of `pid` after an event and checks them. */
  private observe(pid: NodeId): void {
    const node = this.nodes.get(pid);
    if (!node || !this.sim.isUp(pid)) return;
    const p = node.paxos;
    const items = p.drainDecided();
    if (this.check) this.checker.onDecided(pid, node.app, items);
    else {
      this.decidedCount += items.length;
      const last = items[items.length - 1];
      if (last) node.app.applied = last.index + (last.kind === 'entry' ? 1 : 0);
    }
    if (p.role === 'leader' && p.phase === 'accept' && compareBallots(p.ballot, this.maxLeaderBallot) > 0) {
      this.maxLeaderBallot = p.ballot;
      this.leaderChanges++;
    }
    for (const r of p.drainReads()) {
      const want = this.reads.get(r.token);
      this.reads.delete(r.token);
      if ('index' in r && want && this.check) this.checker.onRead(pid, r.token, r.index, want.required);
    }
  }
}
