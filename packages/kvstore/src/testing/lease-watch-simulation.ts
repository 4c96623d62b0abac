/**
 * Leases and watches under faults, in the deterministic whole-group simulation: the replicas of one
 * partition on simulated disks and network ({@link GroupCluster}) crash, restart, get partitioned and
 * change leaders while
 * - **lessees** grant a lease, attach a key to it, keep it alive for a while (and read their key), then
 *   stop renewing and start over with a new lease and key;
 * - **watchers** follow every change of the partition from revision 1, each on one replica, reopening on
 *   another replica from the revision after the last event whenever theirs crashes or ends the stream
 *   (what the client's `Watch` does).
 *
 * The run returns what the coordination checkers of `@paxkv/linearizability-checker` need: the committed
 * changes (taken from the applied log: every put and every key deleted by a lease's revoke or expiry, at
 * its revision), every watcher's stream, and every lease's history (grant, put, keep-alives, reads, in
 * simulated ms). It also checks directly, after healing, that every lease that is no longer kept alive is
 * gone on every replica within TTL + grace, and that every watcher that did not end caught up.
 * @module
 */
import type { KvOp, KvResult, NodeId, PaxkvError } from '@paxkv/common';
import type { ReplicaGroup, ReplicaGroupConfig } from '../replica-group.js';
import type { ChangeEvent } from '../watch-hub.js';
import { GroupCluster } from './group-simulation.js';

/** Options of {@link simulateLeasesAndWatches}. Probabilities are per simulated tick. */
export interface LeaseWatchSimulationOptions {
  /** Seed of every random choice; a failing seed replays exactly. */
  readonly seed: number;
  /** Replicas. Default 3. */
  readonly replicas?: number;
  /** Concurrent lessees. Default 5. */
  readonly lessees?: number;
  /** Watchers. Default 3. */
  readonly watchers?: number;
  /** Ticks of faulty operation before healing. Default 600. */
  readonly ticks?: number;
  /** Simulated ms per tick. Default 20. */
  readonly tickMs?: number;
  /** Lease TTL in ms. Default 1 000 (50 ticks). */
  readonly ttlMs?: number;
  /** Grace period a new leader gives every lease, in ms. Default 2 000. */
  readonly leaseGraceMs?: number;
  /** Chance per tick that a live replica crashes. Default 0.005. */
  readonly crashProbability?: number;
  /** Chance per tick that a crashed replica restarts. Default 0.1. */
  readonly restartProbability?: number;
  /** Chance per tick of a new random partition. Default 0.015. */
  readonly partitionProbability?: number;
  /** Chance per tick that the network heals. Default 0.05. */
  readonly healProbability?: number;
  /** Replica group config overrides (e.g. an `unsafeMutation`). */
  readonly group?: Partial<ReplicaGroupConfig>;
}

/** One committed change (from the applied log). */
export interface SimChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value?: string;
  readonly revision: number;
  readonly partition: number;
}

/** One operation of a lease's history, in simulated ms (see `checkLeaseHistory`). */
export type SimLeaseEvent =
  | {
      readonly kind: 'grant' | 'put' | 'deleted' | 'revoke';
      readonly invokedAt: number;
      readonly completedAt: number;
    }
  | {
      readonly kind: 'keepalive';
      readonly ok: boolean | 'unknown';
      readonly invokedAt: number;
      readonly completedAt: number;
    }
  | {
      readonly kind: 'read';
      readonly present: boolean;
      readonly invokedAt: number;
      readonly completedAt: number;
    };

/** What {@link simulateLeasesAndWatches} produced. */
export interface LeaseWatchSimulationResult {
  readonly seed: number;
  /** Every committed change, in log order. */
  readonly committed: readonly SimChange[];
  /** Every watcher's stream: from revision 1 through `through` (absent when the watcher ended early). */
  readonly streams: readonly {
    readonly id: string;
    readonly events: readonly SimChange[];
    readonly through?: number;
    /** Why it ended early (history compacted on every replica), if it did. */
    readonly ended?: string;
  }[];
  /** Every lease's history (one key per lease). */
  readonly leases: readonly {
    readonly id: string;
    readonly ttlMs: number;
    readonly events: readonly SimLeaseEvent[];
  }[];
  /** Violations of the direct checks (after healing). */
  readonly violations: string[];
  readonly stats: {
    readonly crashes: number;
    readonly partitions: number;
    readonly leaderChanges: number;
    readonly leasesGranted: number;
    readonly keepAlives: number;
    readonly expiries: number;
    readonly watchReopens: number;
    readonly events: number;
  };
}

interface Call {
  readonly op: KvOp;
  readonly startedAt: number;
  readonly session: { client: string; seq: number } | undefined;
  attemptAt: number | undefined;
  nextTryAt: number;
  readonly done: (r: KvResult | 'unknown' | PaxkvError) => void;
}

interface Lessee {
  readonly name: string;
  seq: number;
  generation: number;
  state: 'idle' | 'granting' | 'putting' | 'alive' | 'stopped';
  lease: number;
  key: string;
  history: SimLeaseEvent[] | undefined;
  aliveUntil: number;
  nextBeatAt: number;
  nextReadAt: number;
  call: Call | undefined;
  leaderGuess: NodeId | undefined;
}

interface Watcher {
  readonly id: string;
  readonly events: SimChange[];
  /** The revision the next stream must start from. */
  next: number;
  on: { pid: NodeId; group: ReplicaGroup; cancel(): void } | undefined;
  ended: string | undefined;
  broken: boolean;
}

/** Runs one seed. See the module comment. */
export async function simulateLeasesAndWatches(
  options: LeaseWatchSimulationOptions,
): Promise<LeaseWatchSimulationResult> {
  const tickMs = options.tickMs ?? 20;
  const ttlMs = options.ttlMs ?? 1_000;
  const graceMs = options.leaseGraceMs ?? 2_000;
  const ttlTicks = Math.ceil(ttlMs / tickMs);
  const violations: string[] = [];
  const committed: SimChange[] = [];
  const appliedIndex = new Set<number>();
  /** lease -> its key (each lease carries exactly one key: its lessee's). */
  const keyOfLease = new Map<number, string>();
  const keyHistory = new Map<string, SimLeaseEvent[]>();
  let expiries = 0;
  const cluster = new GroupCluster({
    seed: options.seed,
    replicas: options.replicas ?? 3,
    group: { tickMs, leaseGraceMs: graceMs, snapshotEveryEntries: 40, ...(options.group ?? {}) },
    onApplied: (_pid, index, command, outcome) => {
      if (appliedIndex.has(index)) return;
      appliedIndex.add(index);
      if (!outcome.ok || outcome.duplicate) return;
      const r = outcome.result;
      const op = command.op;
      if (op.op === 'put' && r.op === 'put')
        committed.push({
          type: 'put',
          key: op.key,
          value: String(op.value),
          revision: r.revision,
          partition: 0,
        });
      if (
        (op.op === 'lease-expire' || op.op === 'lease-revoke') &&
        (r.op === 'lease-expire' || r.op === 'lease-revoke')
      ) {
        if (op.op === 'lease-expire' && r.found) expiries++;
        const key = keyOfLease.get(op.lease);
        if (r.deleted > 0 && key !== undefined)
          committed.push({ type: 'delete', key, revision: r.revision, partition: 0 });
      }
    },
  });
  const { sim, ids } = cluster;
  const rng = sim.rng;
  const nowMs = () => sim.now * tickMs;
  let crashes = 0;
  let netPartitions = 0;
  let leaderChanges = 0;
  let leasesGranted = 0;
  let keepAlives = 0;
  let watchReopens = 0;
  let lastLeader: NodeId | undefined;

  // ---- calls: one outstanding operation per lessee, retried on another replica until a deadline ----
  const attemptTicks = 40;
  const callTicks = 250;
  const step = (c: Call, guess: () => NodeId | undefined, setGuess: (g: NodeId | undefined) => void) => {
    if (c.attemptAt !== undefined && sim.now - c.attemptAt > attemptTicks) c.attemptAt = undefined;
    if (sim.now - c.startedAt > callTicks) return c.done('unknown');
    if (c.attemptAt !== undefined || c.nextTryAt > sim.now) return;
    const up = ids.filter((p) => cluster.group(p) !== undefined);
    if (up.length === 0) return;
    const g = guess();
    const target = g !== undefined && up.includes(g) ? g : rng.pick(up);
    const group = cluster.group(target) as ReplicaGroup;
    const attempt = sim.now;
    c.attemptAt = attempt;
    group.submit(c.op, c.session ? { session: c.session } : {}).then(
      (r) => {
        if (c.attemptAt === attempt) {
          c.attemptAt = Number.POSITIVE_INFINITY; // settled
          c.done(r.result);
        }
      },
      (e: PaxkvError) => {
        if (c.attemptAt !== attempt) return;
        c.attemptAt = undefined;
        c.nextTryAt = sim.now + 1 + rng.int(5);
        const hint = (e as { leaderHint?: { node: number } }).leaderHint;
        if (e.code === 'NOT_LEADER' && hint) setGuess(hint.node);
        else setGuess(undefined);
        // A refusal that is final (the lease is gone): report it.
        if (e.code === 'BAD_REQUEST') {
          c.attemptAt = Number.POSITIVE_INFINITY;
          c.done(e);
        }
      },
    );
  };

  const lessees: Lessee[] = Array.from({ length: options.lessees ?? 5 }, (_, i) => ({
    name: `l${i}`,
    seq: 0,
    generation: 0,
    state: 'idle',
    lease: 0,
    key: '',
    history: undefined,
    aliveUntil: 0,
    nextBeatAt: 0,
    nextReadAt: 0,
    call: undefined,
    leaderGuess: undefined,
  }));

  const call = (
    l: Lessee,
    op: KvOp,
    write: boolean,
    done: (r: KvResult | 'unknown' | PaxkvError, startedAt: number) => void,
  ) => {
    const startedAt = nowMs();
    const c: Call = {
      op,
      startedAt: sim.now,
      session: write ? { client: l.name, seq: ++l.seq } : undefined,
      attemptAt: undefined,
      nextTryAt: sim.now,
      done: (r) => {
        if (l.call !== c) return;
        l.call = undefined;
        done(r, startedAt);
      },
    };
    l.call = c;
  };

  const lesseeStep = (l: Lessee, allowNew: boolean) => {
    if (l.call) {
      step(
        l.call,
        () => l.leaderGuess,
        (g) => {
          l.leaderGuess = g;
        },
      );
      return;
    }
    const h = l.history;
    switch (l.state) {
      case 'idle':
        if (!allowNew || !rng.chance(0.2)) return;
        l.state = 'granting';
        call(l, { op: 'lease-grant', partition: 0, ttlMs }, true, (r, at) => {
          if (typeof r === 'object' && 'op' in r && r.op === 'lease-grant' && r.granted) {
            leasesGranted++;
            l.generation++;
            l.lease = r.lease;
            l.key = `${l.name}.${l.generation}`;
            keyOfLease.set(r.lease, l.key);
            l.history = [{ kind: 'grant', invokedAt: at, completedAt: nowMs() }];
            keyHistory.set(l.key, l.history);
            l.state = 'putting';
          } else l.state = 'idle';
        });
        return;
      case 'putting':
        call(l, { op: 'put', key: l.key, value: `${l.key}@${sim.now}`, lease: l.lease }, true, (r, at) => {
          if (typeof r === 'object' && 'op' in r && r.op === 'put') {
            h?.push({ kind: 'put', invokedAt: at, completedAt: nowMs() });
            l.state = 'alive';
            l.aliveUntil = sim.now + ttlTicks * (1 + rng.int(3));
            l.nextBeatAt = sim.now;
            l.nextReadAt = sim.now + rng.int(ttlTicks);
          } else {
            // Unknown or refused (the lease expired while we could not reach a leader): give up on it.
            l.state = 'stopped';
          }
        });
        return;
      case 'alive':
        if (sim.now >= l.aliveUntil || !allowNew) {
          if (allowNew && rng.chance(0.3)) {
            // Revoke instead of letting it expire: the key goes at once.
            call(l, { op: 'lease-revoke', lease: l.lease }, true, (r, at) => {
              // Recorded whatever the outcome: an unanswered revoke may have been applied.
              void r;
              h?.push({ kind: 'revoke', invokedAt: at, completedAt: nowMs() });
              l.state = 'stopped';
            });
            return;
          }
          l.state = 'stopped';
          return;
        }
        if (sim.now >= l.nextBeatAt) {
          call(l, { op: 'lease-keepalive', lease: l.lease }, false, (r, at) => {
            keepAlives++;
            const ok =
              r === 'unknown'
                ? 'unknown'
                : typeof r === 'object' && 'op' in r && r.op === 'lease-keepalive'
                  ? r.found
                  : 'unknown';
            h?.push({ kind: 'keepalive', ok, invokedAt: at, completedAt: nowMs() });
            if (ok === false) l.state = 'stopped';
            l.nextBeatAt = sim.now + Math.max(1, Math.floor(ttlTicks / 4));
          });
          return;
        }
        if (sim.now < l.nextReadAt) return;
        if (rng.chance(0.5)) {
          read(l, h);
          return;
        }
        // A new value, still on the lease (a watched change).
        call(l, { op: 'put', key: l.key, value: `${l.key}@${sim.now}`, lease: l.lease }, true, (r) => {
          l.nextReadAt = sim.now + 1 + rng.int(ttlTicks / 2);
          if (typeof r === 'object' && 'code' in r) l.state = 'stopped'; // the lease is gone
        });
        return;
      case 'stopped':
        // Keep reading the key now and then until it is gone, then start over.
        if (sim.now >= l.nextReadAt)
          read(l, h, () => {
            l.state = 'idle';
          });
        return;
      case 'granting':
        return;
    }
  };

  const read = (l: Lessee, h: SimLeaseEvent[] | undefined, gone?: () => void) => {
    call(l, { op: 'get', key: l.key }, false, (r, at) => {
      l.nextReadAt = sim.now + 1 + rng.int(ttlTicks);
      if (typeof r === 'object' && 'op' in r && r.op === 'get') {
        const present = r.value !== null;
        h?.push({ kind: 'read', present, invokedAt: at, completedAt: nowMs() });
        if (!present) gone?.();
      }
    });
  };

  // ---- watchers ----
  const watchers: Watcher[] = Array.from({ length: options.watchers ?? 3 }, (_, i) => ({
    id: `w${i}`,
    events: [],
    next: 1,
    on: undefined,
    ended: undefined,
    broken: false,
  }));
  const toChange = (e: ChangeEvent): SimChange => ({
    type: e.type,
    key: e.key,
    ...(e.value !== undefined ? { value: String(e.value) } : {}),
    revision: e.revision,
    partition: 0,
  });
  const watcherStep = (w: Watcher) => {
    if (w.ended) return;
    if (w.on && (w.broken || cluster.group(w.on.pid) !== w.on.group)) {
      w.on.cancel();
      w.on = undefined;
    }
    if (w.on) return;
    const up = ids.filter((p) => cluster.group(p) !== undefined);
    if (up.length === 0) return;
    const order = [...up].sort(() => rng.next() - 0.5);
    let compacted = 0;
    for (const pid of order) {
      const group = cluster.group(pid) as ReplicaGroup;
      w.broken = false;
      const opened = group.watch(
        { prefix: '' },
        w.next,
        (events) => {
          for (const e of events) {
            w.events.push(toChange(e));
            // A lease's end seen by a watcher: its key must never be read again.
            if (e.type === 'delete')
              keyHistory.get(e.key)?.push({ kind: 'deleted', invokedAt: nowMs(), completedAt: nowMs() });
          }
          const last = events[events.length - 1];
          if (last) w.next = Math.max(w.next, last.revision + 1);
        },
        () => {
          w.broken = true;
        },
      );
      if ('cancel' in opened) {
        if (w.events.length > 0 || w.next > 1) watchReopens++;
        w.on = { pid, group, cancel: opened.cancel };
        opened.replay();
        return;
      }
      if (opened.reason === 'compacted') compacted++;
    }
    // Every replica that answered has compacted past where the watch must resume: it ends (as
    // WatchCompactedError does) unless a replica that was down may still have it.
    if (compacted === ids.length) w.ended = `history compacted past revision ${w.next} on every replica`;
  };

  const faults = () => {
    for (const pid of ids) {
      if (sim.isUp(pid) && rng.chance(options.crashProbability ?? 0.005)) {
        cluster.crash(pid, rng.chance(0.5));
        crashes++;
      } else if (!sim.isUp(pid) && rng.chance(options.restartProbability ?? 0.1)) {
        sim.restart(pid);
      }
    }
    if (rng.chance(options.partitionProbability ?? 0.015)) {
      netPartitions++;
      const side = ids.filter(() => rng.chance(0.5));
      sim.partition([side, ids.filter((p) => !side.includes(p))]);
    } else if (rng.chance(options.healProbability ?? 0.05)) {
      sim.healAll();
    }
  };

  const tick = async (withFaults: boolean, allowNew: boolean) => {
    await cluster.step(withFaults ? 0.6 : 1);
    if (withFaults) faults();
    const leader = cluster.leader()?.pid;
    if (leader !== undefined && leader !== lastLeader) {
      if (lastLeader !== undefined) leaderChanges++;
      lastLeader = leader;
    }
    for (const l of lessees) lesseeStep(l, allowNew);
    for (const w of watchers) watcherStep(w);
  };

  const ticks = options.ticks ?? 600;
  for (let t = 0; t < ticks; t++) await tick(true, true);

  // Healing: everything up and connected; lessees stop renewing; wait TTL + grace (+ a margin for the
  // expiry to commit), then every lease must be gone everywhere.
  sim.healAll();
  for (const pid of ids) if (!sim.isUp(pid)) sim.restart(pid);
  for (const l of lessees) if (l.state === 'alive') l.state = 'stopped';
  // (a grant still being retried when healing starts may be applied up to `callTicks` later)
  const healTicks = callTicks + Math.ceil((ttlMs + graceMs) / tickMs) + 100;
  for (let t = 0; t < healTicks; t++) await tick(false, false);
  const leader = cluster.leader();
  if (!leader) violations.push('no leader after healing');
  for (const pid of ids) {
    const g = cluster.group(pid);
    if (!g) continue;
    const list = (await g.submit({ op: 'lease-list', partition: 0 }, { consistency: 'stale' })).result;
    if (list.op === 'lease-list' && list.leases.length > 0 && g.appliedIndex === leader?.appliedIndex)
      violations.push(
        `replica ${pid} still holds ${list.leases.length} leases (${list.leases.map((x) => x.lease).join(', ')}) ${healTicks} ticks after keep-alives stopped (TTL ${ttlMs} ms + grace ${graceMs} ms)`,
      );
  }
  // Every watcher that did not end must have caught up with the leader's revision.
  const finalRevision = leader?.revision ?? 0;
  for (const w of watchers) if (!w.ended) watcherStep(w);
  for (let t = 0; t < 50; t++) await tick(false, false);
  for (const w of watchers) {
    if (w.ended) continue;
    if (w.next <= finalRevision)
      violations.push(
        `watcher ${w.id} is at revision ${w.next - 1}, the partition at ${finalRevision} after healing`,
      );
  }
  for (const w of watchers) w.on?.cancel();

  return {
    seed: options.seed,
    committed,
    streams: watchers.map((w) => ({
      id: w.id,
      events: w.events,
      ...(w.ended ? { ended: w.ended } : { through: finalRevision }),
    })),
    leases: [...keyHistory].map(([id, events]) => ({ id, ttlMs, events })),
    violations,
    stats: {
      crashes,
      partitions: netPartitions,
      leaderChanges,
      leasesGranted,
      keepAlives,
      expiries,
      watchReopens,
      events: watchers.reduce((n, w) => n + w.events.length, 0),
    },
  };
}
