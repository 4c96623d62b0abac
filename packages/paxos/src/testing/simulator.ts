/**
 * A deterministic network-and-process simulator for any sans-IO node.
 * @module
 */
import type { NodeId } from '../ballot.js';
import { Rng } from './rng.js';

/** What the simulator drives: the sans-IO surface of a node (a `SequencePaxos`, or a whole replica). */
export interface SimNode<M> {
  /** A message arrived from `from`. */
  handle(from: NodeId, message: M): void;
  /** One unit of time passed. */
  tick(): void;
  /** Messages to send now. */
  drainOutbox(): ReadonlyArray<{ readonly to: NodeId; readonly message: M }>;
  /** The session to `peer` came back after a break. */
  reconnected(peer: NodeId): void;
  /**
   * The session to `peer` broke (a disconnect, a partition, or the peer crashed): called on every
   * live side at once, as a TCP peer sees a reset or a close. Optional.
   */
  disconnected?(peer: NodeId): void;
}

/**
 * Builds the node object for `pid`. Called once at start (`restartCount === 0`) and again on every
 * restart after a crash: the factory's owner decides what survives a crash (typically the storage).
 */
export type SimNodeFactory<M> = (pid: NodeId, restartCount: number) => SimNode<M>;

/** Options of {@link Simulator}. Every probability is per message; delays are in ticks. */
export interface SimulatorOptions<M> {
  /** Seed of the one PRNG that decides everything random. */
  readonly seed: number;
  /** The nodes, by id. */
  readonly nodeIds: readonly NodeId[];
  /** Builds (and rebuilds after a crash) each node. */
  readonly factory: SimNodeFactory<M>;
  /** Smallest message delay, in ticks. Default `0`. */
  readonly minDelay?: number;
  /** Largest message delay, in ticks. Default `2`. */
  readonly maxDelay?: number;
  /**
   * Probability that a message is delivered twice in a row on its link. TCP never does this; it
   * models an application-level retransmission right after the original, which keeps per-link FIFO
   * order. Default `0`.
   */
  readonly duplicateProbability?: number;
  /**
   * Probability that one message is silently lost WITHOUT breaking the session. This violates the
   * FIFO-session model (TCP never does it); use it only to test a core's resend path. Default `0`.
   */
  readonly lossProbability?: number;
  /**
   * Breaks are silent: `disconnected` is never called. Models links that go quiet without a close or a
   * reset (a black hole, before the transport's liveness check fires). Default `false`.
   */
  readonly silentBreaks?: boolean;
  /** Safety valve against a message storm: most deliveries in one tick before failing. Default `1_000_000`. */
  readonly maxDeliveriesPerTick?: number;
}

/** Error thrown by a failing simulation: carries the seed and the tick so the run can be replayed. */
export class SimulationError extends Error {
  override name = 'SimulationError';
  constructor(
    /** Seed of the failing run: the same seed replays the same run. */
    readonly seed: number,
    /** Simulated tick at which it failed. */
    readonly tickAt: number,
    /** The original error (an invariant violation or an exception of a node). */
    override readonly cause: unknown,
  ) {
    super(
      `simulation failed at tick ${tickAt} (replay with seed ${seed}): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

/** Counters of what the simulator did. */
export interface SimStats {
  ticks: number;
  delivered: number;
  /** Messages lost because the link was down or the target crashed when sent, or in flight at a break. */
  dropped: number;
  duplicated: number;
  /** Messages lost by `lossProbability`. */
  lost: number;
  linkBreaks: number;
  crashes: number;
  restarts: number;
  partitions: number;
}

interface InFlight<M> {
  readonly message: M;
  readonly deliverAt: number;
}

/** One direction of a session between two nodes: a FIFO queue. */
class Link<M> {
  queue: InFlight<M>[] = [];
  head = 0;
  lastDeliverAt = 0;
  constructor(
    readonly from: NodeId,
    readonly to: NodeId,
  ) {}
  get size(): number {
    return this.queue.length - this.head;
  }
  peek(): InFlight<M> | undefined {
    return this.queue[this.head];
  }
  shift(): InFlight<M> {
    const m = this.queue[this.head++] as InFlight<M>;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return m;
  }
  clear(): number {
    const n = this.size;
    this.queue = [];
    this.head = 0;
    return n;
  }
}

/** An observer called after every simulated event (a delivery, a tick of one node, a fault). */
export type SimHook = (event: SimEvent) => void;

/** What just happened in the simulator. */
export type SimEvent =
  | { readonly kind: 'deliver'; readonly from: NodeId; readonly to: NodeId }
  | { readonly kind: 'tick'; readonly pid: NodeId }
  | { readonly kind: 'crash'; readonly pid: NodeId }
  | { readonly kind: 'restart'; readonly pid: NodeId }
  | { readonly kind: 'connect'; readonly a: NodeId; readonly b: NodeId }
  | { readonly kind: 'disconnect'; readonly a: NodeId; readonly b: NodeId };

/**
 * A deterministic simulator of nodes connected by FIFO sessions.
 *
 * Model: between every ordered pair of nodes there is a session that delivers messages in order,
 * each after a random delay in `[minDelay, maxDelay]` ticks (never overtaking the previous one on the
 * same link). Different links interleave in an order the PRNG picks. A session can break
 * ({@link disconnect}, a partition, a crash): everything in flight on it is lost, `disconnected` is
 * called on each live side, and nothing is delivered until it heals ({@link connect}), when
 * `reconnected` is called on both sides. A crash
 * drops the node object; {@link restart} builds a new one through the factory.
 *
 * One step ({@link step}) = tick every live node (in a random order), then deliver every message that
 * is due (including those sent with zero delay during this step), in a random order across links.
 * Hooks run after every event; an exception from a node or a hook ends the run with a
 * {@link SimulationError} that names the seed.
 */
export class Simulator<M> {
  /** The PRNG: use it (and only it) for every random choice of a test, so a seed replays exactly. */
  readonly rng: Rng;
  /** Counters. */
  readonly stats: SimStats = {
    ticks: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    lost: 0,
    linkBreaks: 0,
    crashes: 0,
    restarts: 0,
    partitions: 0,
  };
  /** The node ids. */
  readonly nodeIds: readonly NodeId[];
  private readonly nodes = new Map<NodeId, SimNode<M> | undefined>();
  private readonly restartCounts = new Map<NodeId, number>();
  private readonly links = new Map<number, Link<M>>();
  private readonly linkList: Link<M>[] = [];
  /** Unordered pairs whose sessions are up (key `min * K + max`). */
  private readonly connected = new Set<number>();
  private readonly hooks: SimHook[] = [];
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly dupP: number;
  private readonly lossP: number;
  private readonly maxDeliveries: number;
  private _now = 0;

  constructor(private readonly opts: SimulatorOptions<M>) {
    this.rng = new Rng(opts.seed);
    this.nodeIds = [...opts.nodeIds];
    this.minDelay = opts.minDelay ?? 0;
    this.maxDelay = Math.max(this.minDelay, opts.maxDelay ?? 2);
    this.dupP = opts.duplicateProbability ?? 0;
    this.lossP = opts.lossProbability ?? 0;
    this.maxDeliveries = opts.maxDeliveriesPerTick ?? 1_000_000;
    for (const a of this.nodeIds) {
      for (const b of this.nodeIds) {
        if (a === b) continue;
        const l = new Link<M>(a, b);
        this.links.set(this.linkKey(a, b), l);
        this.linkList.push(l);
        if (a < b) this.connected.add(this.pairKey(a, b));
      }
    }
    for (const pid of this.nodeIds) {
      this.restartCounts.set(pid, 0);
      this.nodes.set(pid, undefined);
    }
    this.guard(() => {
      // Build every node before sending anything, so start-up messages find their targets.
      for (const pid of this.nodeIds) this.nodes.set(pid, opts.factory(pid, 0));
      for (const pid of this.nodeIds) this.flush(pid);
    });
  }

  /** Current simulated time, in ticks. */
  get now(): number {
    return this._now;
  }
  /** The seed. */
  get seed(): number {
    return this.opts.seed;
  }

  /** Registers a hook run after every event (invariant checks). */
  onEvent(hook: SimHook): void {
    this.hooks.push(hook);
  }

  /** The live node object of `pid`, or `undefined` while it is crashed. */
  node(pid: NodeId): SimNode<M> | undefined {
    return this.nodes.get(pid);
  }
  /** Whether `pid` is running. */
  isUp(pid: NodeId): boolean {
    return this.nodes.get(pid) !== undefined;
  }
  /** How many times `pid` restarted. */
  restartCount(pid: NodeId): number {
    return this.restartCounts.get(pid) ?? 0;
  }
  /** Whether the session between `a` and `b` is up (both nodes may still be crashed). */
  isConnected(a: NodeId, b: NodeId): boolean {
    return this.connected.has(this.pairKey(a, b));
  }
  /** Messages in flight on all links. */
  inFlight(): number {
    let n = 0;
    for (const l of this.linkList) n += l.size;
    return n;
  }

  /** Runs `fn` on the live node `pid` (to inject client work), then sends what it produced. */
  withNode<R>(pid: NodeId, fn: (node: SimNode<M>) => R): R | undefined {
    const node = this.nodes.get(pid);
    if (!node) return undefined;
    return this.guard(() => {
      const r = fn(node);
      this.flush(pid);
      return r;
    });
  }

  /** One step: tick every live node in a random order, then deliver everything that is due. */
  step(): void {
    this.tickAll();
    this.deliverDue();
  }

  /** Runs `n` steps. */
  run(n: number): void {
    for (let i = 0; i < n; i++) this.step();
  }

  /** Runs steps until `pred()` holds (checked before each step); returns the steps taken, or -1 after `max`. */
  runUntil(pred: () => boolean, max: number): number {
    for (let i = 0; i < max; i++) {
      if (pred()) return i;
      this.step();
    }
    return pred() ? max : -1;
  }

  /** Advances time by one tick and ticks every live node (random order); delivers nothing. */
  tickAll(): void {
    this._now++;
    this.stats.ticks++;
    const order = this.rng.shuffle(this.nodeIds);
    this.guard(() => {
      for (const pid of order) {
        const node = this.nodes.get(pid);
        if (!node) continue;
        node.tick();
        this.flush(pid);
        this.emit({ kind: 'tick', pid });
      }
    });
  }

  /** Delivers every message that is due, including those sent meanwhile with zero delay. */
  deliverDue(): number {
    let count = 0;
    const due: Link<M>[] = [];
    this.guard(() => {
      for (;;) {
        due.length = 0;
        for (const l of this.linkList) {
          const h = l.peek();
          if (h !== undefined && h.deliverAt <= this._now) due.push(l);
        }
        if (due.length === 0) return;
        // One message from each due link per pass, links in random order: FIFO per link, interleaved across.
        const order = due.length === 1 ? due : this.rng.shuffle(due);
        for (const l of order) {
          const h = l.peek();
          if (h === undefined || h.deliverAt > this._now) continue;
          this.deliverHead(l);
          if (++count > this.maxDeliveries) {
            throw new Error(`more than ${this.maxDeliveries} deliveries in one tick: message storm`);
          }
        }
      }
    });
    return count;
  }

  /** Delivers the head message of link `from → to` regardless of its delay; returns whether there was one. */
  deliverOne(from: NodeId, to: NodeId): boolean {
    const l = this.links.get(this.linkKey(from, to));
    if (!l || l.size === 0) return false;
    this.guard(() => this.deliverHead(l));
    return true;
  }

  /** Delivers all messages in flight, ignoring delays, until the network is quiet (or `max` deliveries). */
  deliverAll(max = 1_000_000): number {
    let count = 0;
    this.guard(() => {
      let progress = true;
      while (progress) {
        progress = false;
        for (const l of this.linkList) {
          while (l.size > 0) {
            this.deliverHead(l);
            progress = true;
            if (++count > max) throw new Error(`deliverAll: more than ${max} deliveries: message storm`);
          }
        }
      }
    });
    return count;
  }

  /** Pending messages on link `from → to`. */
  pending(from: NodeId, to: NodeId): readonly M[] {
    const l = this.links.get(this.linkKey(from, to));
    return l ? l.queue.slice(l.head).map((f) => f.message) : [];
  }

  /** Breaks the session between `a` and `b` (both directions): in-flight messages are lost. */
  disconnect(a: NodeId, b: NodeId): void {
    const k = this.pairKey(a, b);
    if (!this.connected.has(k)) return;
    this.connected.delete(k);
    this.stats.linkBreaks++;
    this.stats.dropped += this.link(a, b).clear() + this.link(b, a).clear();
    this.guard(() => {
      this.sessionDown(a, b);
      this.sessionDown(b, a);
      this.emit({ kind: 'disconnect', a, b });
    });
  }

  /** Heals the session between `a` and `b`; if both are up, `reconnected` is called on both sides. */
  connect(a: NodeId, b: NodeId): void {
    const k = this.pairKey(a, b);
    if (this.connected.has(k)) return;
    this.connected.add(k);
    this.link(a, b).lastDeliverAt = this._now;
    this.link(b, a).lastDeliverAt = this._now;
    this.guard(() => {
      this.sessionUp(a, b);
      this.emit({ kind: 'connect', a, b });
    });
  }

  /**
   * Sets the connectivity of every pair at once: `linked(a, b)` says whether a session between them
   * should be up. Pairs that change are disconnected or connected (with `reconnected` calls).
   */
  setConnectivity(linked: (a: NodeId, b: NodeId) => boolean): void {
    this.stats.partitions++;
    for (const a of this.nodeIds) {
      for (const b of this.nodeIds) {
        if (a >= b) continue;
        if (linked(a, b)) this.connect(a, b);
        else this.disconnect(a, b);
      }
    }
  }

  /**
   * Splits the nodes into disjoint groups; sessions are up inside a group and down across groups (a
   * node in no group is isolated). For overlapping connectivity use {@link setConnectivity}.
   * @throws RangeError if a node appears in two groups.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const p of g) {
        if (groupOf.has(p))
          throw new RangeError(`partition: node ${p} is in two groups; use setConnectivity`);
        groupOf.set(p, i);
      }
    });
    this.setConnectivity((a, b) => groupOf.get(a) !== undefined && groupOf.get(a) === groupOf.get(b));
  }

  /** Heals every session. */
  healAll(): void {
    for (const a of this.nodeIds) {
      for (const b of this.nodeIds) if (a < b) this.connect(a, b);
    }
  }

  /** Crashes `pid`: its object is dropped and every session to it breaks (in-flight messages lost). */
  crash(pid: NodeId): void {
    if (!this.nodes.get(pid)) return;
    this.nodes.set(pid, undefined);
    this.stats.crashes++;
    for (const l of this.linkList) {
      if (l.from === pid || l.to === pid) this.stats.dropped += l.clear();
    }
    this.guard(() => {
      for (const peer of this.nodeIds) {
        if (peer !== pid && this.isConnected(pid, peer)) this.sessionDown(peer, pid);
      }
      this.emit({ kind: 'crash', pid });
    });
  }

  /** Restarts a crashed `pid` through the factory; sessions to connected live peers come back. */
  restart(pid: NodeId): void {
    if (this.nodes.get(pid)) return;
    const count = (this.restartCounts.get(pid) ?? 0) + 1;
    this.restartCounts.set(pid, count);
    this.stats.restarts++;
    this.guard(() => {
      this.nodes.set(pid, this.opts.factory(pid, count));
      this.flush(pid);
      for (const peer of this.nodeIds) {
        if (peer !== pid && this.isConnected(pid, peer)) {
          this.link(pid, peer).lastDeliverAt = this._now;
          this.link(peer, pid).lastDeliverAt = this._now;
          this.sessionUp(pid, peer);
        }
      }
      this.emit({ kind: 'restart', pid });
    });
  }

  // ---------------------------------------------------------------- internals

  /** `a` learns that its session to `b` broke (if `a` is up and listens for it). */
  private sessionDown(a: NodeId, b: NodeId): void {
    const na = this.nodes.get(a);
    if (!na?.disconnected || this.opts.silentBreaks === true) return;
    na.disconnected(b);
    this.flush(a);
  }

  private sessionUp(a: NodeId, b: NodeId): void {
    const na = this.nodes.get(a);
    const nb = this.nodes.get(b);
    if (!na || !nb) return;
    na.reconnected(b);
    this.flush(a);
    nb.reconnected(a);
    this.flush(b);
  }

  private deliverHead(l: Link<M>): void {
    const { message } = l.shift();
    const node = this.nodes.get(l.to);
    if (!node || !this.isConnected(l.from, l.to)) {
      this.stats.dropped++;
      return;
    }
    this.stats.delivered++;
    node.handle(l.from, message);
    this.flush(l.to);
    this.emit({ kind: 'deliver', from: l.from, to: l.to });
  }

  /** Moves `pid`'s outbox onto its links. */
  private flush(pid: NodeId): void {
    const node = this.nodes.get(pid);
    if (!node) return;
    const out = node.drainOutbox();
    for (const { to, message } of out) this.send(pid, to, message);
  }

  private send(from: NodeId, to: NodeId, message: M): void {
    const l = this.links.get(this.linkKey(from, to));
    if (!l || !this.isConnected(from, to) || !this.nodes.get(to)) {
      this.stats.dropped++;
      return;
    }
    if (this.lossP > 0 && this.rng.chance(this.lossP)) {
      this.stats.lost++;
      return;
    }
    const delay =
      this.maxDelay === this.minDelay ? this.minDelay : this.rng.range(this.minDelay, this.maxDelay);
    const deliverAt = Math.max(this._now + delay, l.lastDeliverAt);
    l.lastDeliverAt = deliverAt;
    l.queue.push({ message, deliverAt });
    if (this.dupP > 0 && this.rng.chance(this.dupP)) {
      this.stats.duplicated++;
      l.queue.push({ message, deliverAt });
    }
  }

  private emit(e: SimEvent): void {
    for (const h of this.hooks) h(e);
  }

  private guard<R>(fn: () => R): R {
    try {
      return fn();
    } catch (err) {
      if (err instanceof SimulationError) throw err;
      throw new SimulationError(this.opts.seed, this._now, err);
    }
  }

  private link(a: NodeId, b: NodeId): Link<M> {
    return this.links.get(this.linkKey(a, b)) as Link<M>;
  }
  private linkKey(a: NodeId, b: NodeId): number {
    return a * 1_000_003 + b;
  }
  private pairKey(a: NodeId, b: NodeId): number {
    return a < b ? a * 1_000_003 + b : b * 1_000_003 + a;
  }
}
