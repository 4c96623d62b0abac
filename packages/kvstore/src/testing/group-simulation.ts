/**
 * Deterministic simulation of whole replica groups: paxos + state machine + durable storage on a
 * simulated disk that loses unsynced bytes on a crash, under the paxos simulator's network faults, with
 * clients issuing conflicting get/put/cas/delete with retries and exactly-once sessions. Produces the
 * clients' history in the linearizability checker's JSON-lines format plus direct safety checks.
 * @module
 */
import {
  historyOp,
  historyResult,
  isReadOnlyOp,
  type KvOp,
  type KvResult,
  type PaxkvError,
  txnKeys,
} from '@paxkv/common';
import type { NodeId } from '@paxkv/paxos';
import { GroupCluster } from '../group-cluster.js';
import type { ReplicaGroup, ReplicaGroupConfig } from '../replica-group.js';
import {
  type BankView,
  bankAccounts,
  bankRead,
  checkBankRead,
  lostBankWrites,
  nextBankOp,
  noteBankWrites,
} from './bank.js';

export { CALL_MAX_TICKS, GroupCluster, type GroupClusterOptions } from '../group-cluster.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

/** Options of {@link simulateGroup}. Probabilities are per simulated tick. */
export interface GroupSimulationOptions {
  /** Seed of every random choice; a failing seed replays exactly. */
  readonly seed: number;
  /** Replicas in the group. Default 3. */
  readonly replicas?: number;
  /** Concurrent clients, each with its own session. Default 4. */
  readonly clients?: number;
  /** Keys the clients fight over. Default 3. */
  readonly keys?: number;
  /** Ticks of faulty operation before the healing phase. Default 300. */
  readonly ticks?: number;
  /** Chance per tick that a live replica crashes (losing unsynced writes, maybe tearing the last one). Default 0.01. */
  readonly crashProbability?: number;
  /** Whether a crash loses unsynced writes (and may tear the last one). Default true. */
  readonly crashLosesUnsynced?: boolean;
  /** Chance per tick that a crashed replica restarts. Default 0.1. */
  readonly restartProbability?: number;
  /** Chance per tick of a new random partition. Default 0.02. */
  readonly partitionProbability?: number;
  /** Chance per tick that the network heals. Default 0.05. */
  readonly healProbability?: number;
  /** Chance per tick that a replica's pending fsyncs complete. Default 0.6. */
  readonly syncProbability?: number;
  /** Chance per tick that an idle client starts an operation. Default 0.3. */
  readonly opProbability?: number;
  /** A client abandons an attempt (and retries) after this many ticks without an answer. Default 40. */
  readonly attemptTimeoutTicks?: number;
  /** A client gives up on an operation (recording it as indeterminate) after this many ticks. Default 250. */
  readonly opTimeoutTicks?: number;
  /** Receives a line per notable event (crash, restart, recovery, applied entry), for debugging a seed. */
  readonly trace?: (line: string) => void;
  /** Replica group config overrides (e.g. an `unsafeMutation`). Default: small snapshot interval (25). */
  readonly group?: Partial<ReplicaGroupConfig>;
  /**
   * Replica groups (partitions) per node, all sharing the node's one write-ahead log; key `k<i>` belongs
   * to partition `i % partitions`. Default 1.
   */
  readonly partitions?: number;
  /**
   * What the clients do. `kv` (default): get/put/cas/delete on keys `k<i>` (history model `kv`).
   * `bank`: one hash tag `{b<p>}` per partition holding `keys` accounts `{b<p>}:a<i>`; each client sets
   * the accounts up once (a transaction guarded by an `exists` compare, every account at
   * `BANK_INITIAL_BALANCE`), then reads all the accounts of a tag with one `range` and moves money
   * between two of them with a `txn` whose compares are the `modRevision`s it read (history model
   * `kv-txn`). Direct check: every read of a tag sees either no account or all of them, summing to
   * `keys * BANK_INITIAL_BALANCE`.
   */
  readonly workload?: 'kv' | 'bank';
  /**
   * Spare nodes (ids after the replicas) that host every group as a joiner: reconfigurations add them.
   * Default 0.
   */
  readonly spares?: number;
  /**
   * Chance per tick that the leader of a random partition is asked to change its configuration: add a
   * node (up to 5 replicas), remove one (down to 1) or replace one, chosen among all nodes. Default 0.
   */
  readonly reconfigProbability?: number;
  /**
   * Chance that a replica crashes (tearing its unsynced writes) right after it started a configuration
   * (its seed just written), in the faulty phase. Default 0.2 when `reconfigProbability > 0`.
   */
  readonly crashAfterStartProbability?: number;
  /** Called when a replica finished opening its storage (once per group and incarnation). */
  readonly onOpened?: (pid: NodeId, group: ReplicaGroup, incarnation: number) => void;
}

/** What one simulation run produced. */
export interface GroupSimulationResult {
  /** The seed of the run (replays it exactly). */
  readonly seed: number;
  /** The clients' history in the checker's JSON-lines format (version 1, model `kv`, or `kv-txn` for the bank workload). */
  readonly history: string;
  /** The checker model that the history is meant for. */
  readonly model: 'kv' | 'kv-txn';
  /** Safety violations found by the direct checks (empty when none). */
  readonly violations: string[];
  /** Counters of the run. */
  readonly stats: {
    /** Operations completed with a result. */
    readonly ok: number;
    /** Operations given up on (recorded as `info`: may or may not have taken effect). */
    readonly indeterminate: number;
    /** Submissions, retries included. */
    readonly attempts: number;
    /** Replica crashes (each losing unsynced writes). */
    readonly crashes: number;
    /** Network partitions (full or partial) injected. */
    readonly partitions: number;
    /** Log entries applied, summed over replicas and incarnations. */
    readonly appliedEntries: number;
    /** Restarts that began from a snapshot. */
    readonly snapshotsInstalled: number;
    /** Reconfigurations requested at a leader, and decided (highest configuration id summed over partitions). */
    readonly reconfigsRequested: number;
    readonly configurationsDecided: number;
    /** Replicas that started a configuration by joining (state transfer) or after their own stop-sign. */
    readonly configStarts: number;
  };
}

interface Attempt {
  readonly n: number;
  readonly startedAt: number;
}

interface OpenOp {
  readonly id: number;
  readonly op: KvOp;
  readonly seq: number;
  readonly startedAt: number;
  attempt: Attempt | undefined;
  target: NodeId | undefined;
  attempts: number;
  nextTryAt: number;
}

interface Client {
  readonly name: string;
  seq: number;
  open: OpenOp | undefined;
  /** Believed leader of each partition. */
  readonly leaderGuess: Map<number, NodeId>;
  /** Bank workload: the accounts of each tag as this client last read them (`absent`: not set up yet). */
  readonly view: Map<number, BankView>;
}

/** The key that names the simulated partition of an operation (the first key of a transaction). */
function routingKeyOf(op: KvOp): string {
  if (op.op === 'txn') return txnKeys(op)[0] ?? '';
  if (op.op === 'range') return op.start;
  if ('lease' in op || 'partition' in op) return ''; // lease operations carry no key (not simulated)
  return op.key ?? '';
}

/**
 * Runs one seeded simulation of a replica group with clients and faults, then heals everything, lets
 * the group converge, reads every key through the leader and checks: replicas never applied different
 * commands at one log index; healed replicas hold identical state; every acknowledged session write is
 * remembered by every replica's session table. The history (including the final reads) is returned for
 * the linearizability checker.
 */
export async function simulateGroup(options: GroupSimulationOptions): Promise<GroupSimulationResult> {
  const violations: string[] = [];
  const trace = options.trace;
  const partitions = options.partitions ?? 1;
  /** `${partition}:${index}` -> command id applied there. */
  const appliedAt = new Map<string, string>();
  let appliedEntries = 0;
  let snapshotsInstalled = 0;
  let configStarts = 0;
  const cluster = new GroupCluster({
    seed: options.seed,
    replicas: options.replicas ?? 3,
    spares: options.spares ?? 0,
    group: { ...(options.group ?? {}) },
    partitions,
    onConfigChange: (pid, partition, e) => {
      trace?.(
        `t${cluster.sim.now} node ${pid} p${partition} ${e.kind} configuration ${e.configuration.configId} [${e.configuration.members.join(',')}]`,
      );
      if (e.kind === 'started' && e.configuration.configId > 0) configStarts++;
    },
    onStopSignApplied: (pid, index, sign, partition) => {
      const id = `stop-sign ${sign.configId} [${sign.members.join(',')}]`;
      trace?.(`t${cluster.sim.now} node ${pid} p${partition} applied #${index} ${id}`);
      const at = `${partition}:${index}`;
      const seen = appliedAt.get(at);
      if (seen === undefined) appliedAt.set(at, id);
      else if (seen !== id) {
        violations.push(
          `replica ${pid} of partition ${partition} applied ${id} at index ${index}, another replica applied ${seen}`,
        );
      }
    },
    onApplied: (pid, index, command, _outcome, partition) => {
      appliedEntries++;
      trace?.(`t${cluster.sim.now} node ${pid} p${partition} applied #${index} ${command.id}`);
      const at = `${partition}:${index}`;
      const seen = appliedAt.get(at);
      if (seen === undefined) appliedAt.set(at, command.id);
      else if (seen !== command.id) {
        violations.push(
          `replica ${pid} of partition ${partition} applied ${command.id} at index ${index}, another replica applied ${seen}`,
        );
      }
    },
    onOpened: (pid, g, incarnation) => {
      options.onOpened?.(pid, g, incarnation);
      if (g.compactedIndex > 0) snapshotsInstalled++;
      trace?.(
        `t${cluster.sim.now} node ${pid} p${g.partition} opened (incarnation ${incarnation}): log ${g.logLength} decided ${g.decidedIndex} compacted ${g.compactedIndex}`,
      );
    },
  });
  const { sim, ids } = cluster;
  const rng = sim.rng;
  const bank = options.workload === 'bank';
  const model = bank ? 'kv-txn' : 'kv';
  const recorder: string[] = [JSON.stringify({ paxkvHistory: 1, model })];
  let clock = 0;
  let nextOpId = 0;
  const record = (type: string, process: string, id: number, extra: Record<string, unknown>) => {
    recorder.push(JSON.stringify({ type, process, id, time: ++clock, ...extra }));
  };
  const keys = Array.from({ length: options.keys ?? 3 }, (_, i) => `k${i}`);
  // Bank: tag `{b<p>}` lives in partition p; its accounts are `{b<p>}:a<i>`.
  const accounts = (tag: number) => bankAccounts(`b${tag}`, options.keys ?? 3);
  const partitionOfKey = (key: string) =>
    (bank ? Number(key.slice(2, key.indexOf('}'))) : Number(key.slice(1))) % partitions;
  const clients: Client[] = Array.from({ length: options.clients ?? 4 }, (_, i) => ({
    name: `c${i + 1}`,
    seq: 0,
    open: undefined,
    leaderGuess: new Map(),
    view: new Map(),
  }));
  /** Bank: the last acknowledged write of each account (its revision and value). */
  const ackedBankWrites = new Map<string, { revision: number; value: string }>();
  /** `${client}@${partition}` -> highest acknowledged session write. */
  const ackedSeq = new Map<string, number>();
  let ok = 0;
  let indeterminate = 0;
  let attemptsTotal = 0;
  let crashes = 0;
  let netPartitions = 0;
  const attemptTimeout = options.attemptTimeoutTicks ?? 40;
  const opTimeout = options.opTimeoutTicks ?? 250;

  const finish = (c: Client, outcome: { result: KvResult } | { info: string }) => {
    const op = c.open;
    if (!op) return;
    c.open = undefined;
    if ('result' in outcome) {
      ok++;
      record('ok', c.name, op.id, { result: historyResult(outcome.result) });
      if (bank) bankAnswer(c, op.op, outcome.result);
      if (bank && outcome.result.op === 'txn' && op.op.op === 'txn' && outcome.result.succeeded) {
        noteBankWrites(op.op, outcome.result.revision, ackedBankWrites);
      }
    } else {
      indeterminate++;
      record('info', c.name, op.id, { error: outcome.info });
    }
  };

  const tryOp = (c: Client) => {
    const op = c.open;
    if (!op || op.attempt || op.nextTryAt > sim.now) return;
    const partition = partitionOfKey(routingKeyOf(op.op));
    const up = ids.filter((p) => cluster.group(p, partition) !== undefined);
    if (up.length === 0) return;
    const guess = c.leaderGuess.get(partition);
    const target = guess !== undefined && up.includes(guess) ? guess : rng.pick(up);
    const group = cluster.group(target, partition)!;
    const attempt: Attempt = { n: ++op.attempts, startedAt: sim.now };
    op.attempt = attempt;
    op.target = target;
    attemptsTotal++;
    const session = isReadOnlyOp(op.op) ? undefined : { client: c.name, seq: op.seq };
    group.submit(op.op, session ? { session } : {}).then(
      (r) => {
        if (c.open === op) finish(c, { result: r.result });
      },
      (e: PaxkvError) => {
        if (c.open !== op || op.attempt !== attempt) return;
        op.attempt = undefined;
        op.nextTryAt = sim.now + 1 + rng.int(5);
        const hint = (e as { leaderHint?: { node: number } }).leaderHint;
        if (e.code === 'NOT_LEADER' && hint) c.leaderGuess.set(partition, hint.node);
        else c.leaderGuess.delete(partition);
      },
    );
  };

  /** Records the invocation of `kvop` by `c` and makes it the client's open operation. */
  const open = (c: Client, kvop: KvOp) => {
    if (!isReadOnlyOp(kvop)) c.seq++;
    const id = nextOpId++;
    record('invoke', c.name, id, { op: historyOp(kvop) });
    c.open = {
      id,
      op: kvop,
      seq: c.seq,
      startedAt: sim.now,
      attempt: undefined,
      target: undefined,
      attempts: 0,
      nextTryAt: sim.now,
    };
  };

  /** The bank client's next operation, on a random tag (see `nextBankOp`); a view is used once. */
  const bankOp = (c: Client): KvOp => {
    const tag = rng.int(partitions);
    const view = c.view.get(tag);
    c.view.delete(tag);
    return nextBankOp(view, accounts(tag), rng);
  };

  /** A bank read: check the invariant and keep the view. */
  const bankAnswer = (c: Client, op: KvOp, result: KvResult) => {
    if (op.op !== 'range' || result.op !== 'range') return;
    const tag = partitionOfKey(op.start);
    const checked = checkBankRead(accounts(tag), result.kvs);
    if ('problem' in checked) {
      violations.push(`${c.name} read tag {b${tag}} at revision ${result.revision}: ${checked.problem}`);
    } else c.view.set(tag, checked.view);
  };

  const clientStep = (allowNew: boolean) => {
    for (const c of clients) {
      const op = c.open;
      if (op) {
        if (sim.now - op.startedAt > opTimeout) {
          finish(c, { info: 'gave up' });
        } else if (op.attempt && sim.now - op.attempt.startedAt > attemptTimeout) {
          op.attempt = undefined;
          c.leaderGuess.clear();
        }
      }
      if (bank && !c.open && allowNew && rng.chance(options.opProbability ?? 0.3)) {
        open(c, bankOp(c));
      } else if (!c.open && allowNew && !bank && rng.chance(options.opProbability ?? 0.3)) {
        const key = rng.pick(keys);
        const value = `${c.name}-${c.seq + 1}`;
        const kind = rng.int(10);
        let kvop: KvOp;
        if (kind < 4) kvop = { op: 'get', key };
        else if (kind < 6) kvop = { op: 'put', key, value };
        else if (kind < 9) {
          // Expect a value some client wrote recently, or absence, so CAS sometimes succeeds.
          const other = rng.pick(clients);
          const expected = rng.chance(0.25) || other.seq === 0 ? null : `${other.name}-${other.seq}`;
          kvop = { op: 'cas', key, expected, value };
        } else kvop = { op: 'delete', key };
        open(c, kvop);
      }
      tryOp(c);
    }
  };

  /** `${pid}:${partition}` -> the configuration the replica ran at the last step. */
  const ranConfig = new Map<string, number>();
  let reconfigsRequested = 0;
  const reconfigP = options.reconfigProbability ?? 0;
  const crashAfterStartP = options.crashAfterStartProbability ?? (reconfigP > 0 ? 0.2 : 0);

  /** Asks the leader of a random partition to add, remove or replace a replica. */
  const reconfigure = () => {
    const partition = rng.int(partitions);
    const leader = cluster.leader(partition);
    const cur = leader?.configuration;
    if (!leader || !cur) return;
    const outside = ids.filter((p) => !cur.members.includes(p));
    const kind = rng.int(3);
    let members: NodeId[];
    if (kind === 0 && cur.members.length < 5 && outside.length > 0)
      members = [...cur.members, rng.pick(outside)];
    else if (kind === 1 && cur.members.length > 1) {
      const gone = rng.pick(cur.members);
      members = cur.members.filter((p) => p !== gone);
    } else if (outside.length > 0) {
      const gone = rng.pick(cur.members);
      members = [...cur.members.filter((p) => p !== gone), rng.pick(outside)];
    } else return;
    reconfigsRequested++;
    trace?.(`t${sim.now} p${partition} leader ${leader.pid} reconfigure [${members.join(',')}]`);
    leader.reconfigure(members).catch(() => {});
  };

  /**
   * Replicas that started a configuration during this step have its seed written but maybe not
   * synced: crash some of them now, tearing the unsynced tail.
   */
  const crashJustStarted = (faults: boolean) => {
    for (const pid of ids) {
      for (let p = 0; p < partitions; p++) {
        const g = cluster.group(pid, p);
        if (!g) continue;
        const id = g.configuration?.configId ?? -1;
        const key = `${pid}:${p}`;
        const before = ranConfig.get(key);
        ranConfig.set(key, id);
        if (faults && before !== undefined && id > before && sim.isUp(pid) && rng.chance(crashAfterStartP)) {
          trace?.(`t${sim.now} node ${pid} CRASH right after starting configuration ${id} of p${p}`);
          cluster.crash(pid, true);
          crashes++;
          ranConfig.delete(key);
        }
      }
    }
  };

  const step = async (faults: boolean, syncP: number) => {
    await cluster.step(syncP);
    crashJustStarted(faults);
    if (faults && reconfigP > 0 && rng.chance(reconfigP)) reconfigure();
    if (faults) {
      for (const pid of ids) {
        if (sim.isUp(pid) && rng.chance(options.crashProbability ?? 0.01)) {
          trace?.(`t${sim.now} node ${pid} CRASH`);
          if (options.crashLosesUnsynced === false) cluster.disks.get(pid)!.completeSyncs();
          cluster.crash(pid, rng.chance(0.5));
          crashes++;
        } else if (!sim.isUp(pid) && rng.chance(options.restartProbability ?? 0.1)) {
          trace?.(`t${sim.now} node ${pid} restart`);
          sim.restart(pid);
        }
      }
      if (rng.chance(options.partitionProbability ?? 0.02)) {
        netPartitions++;
        const side = ids.filter(() => rng.chance(0.5));
        if (rng.chance(0.5)) sim.partition([side, ids.filter((p) => !side.includes(p))]);
        else {
          // Partial connectivity: cut a few random links only.
          const cut = new Set<string>();
          for (const a of ids) for (const b of ids) if (a < b && rng.chance(0.35)) cut.add(`${a}-${b}`);
          sim.setConnectivity((a, b) => !cut.has(`${Math.min(a, b)}-${Math.max(a, b)}`));
        }
      } else if (rng.chance(options.healProbability ?? 0.05)) {
        sim.healAll();
      }
    }
    clientStep(faults);
    await settle();
  };

  const ticks = options.ticks ?? 300;
  for (let t = 0; t < ticks; t++) await step(true, options.syncProbability ?? 0.6);

  // Healing phase: everything up and connected, disks sync every tick; let clients finish their ops.
  sim.healAll();
  for (const pid of ids) if (!sim.isUp(pid)) sim.restart(pid);
  /** The replicas of the latest configuration any running replica of `partition` runs. */
  const finalMembers = (partition: number): readonly NodeId[] => {
    let best: { configId: number; members: readonly NodeId[] } | undefined;
    for (const pid of ids) {
      const c = cluster.group(pid, partition)?.configuration;
      if (c && (!best || c.configId > best.configId)) best = c;
    }
    return best?.members ?? [];
  };
  const groups = (partition: number) => finalMembers(partition).map((p) => cluster.group(p, partition));
  const allPartitions = Array.from({ length: partitions }, (_, p) => p);
  for (let t = 0; t < opTimeout + 100 && clients.some((c) => c.open); t++) await step(false, 1);
  for (const c of clients) if (c.open) finish(c, { info: 'not finished after healing' });
  // Converge: a leader that decided its whole log (an adopted suffix too), and every replica applied
  // exactly that. A follower's decided entries are applied only after its own WAL flush, so equal
  // decided indexes alone do not mean equal states: compare states only once every replica applied
  // the leader's whole log.
  const convergedNow = (): boolean =>
    allPartitions.every((p) => {
      const gs = groups(p);
      const leader = gs.find((g) => g?.role === 'leader' && g.phase === 'accept');
      return (
        leader !== undefined &&
        leader.pendingConfiguration === undefined &&
        leader.decidedIndex === leader.logLength &&
        gs.every(
          (g) =>
            g !== undefined &&
            g.appliedIndex === leader.decidedIndex &&
            g.decidedIndex === leader.decidedIndex &&
            g.configuration?.configId === leader.configuration?.configId,
        )
      );
    });
  const converge = async (when: string): Promise<boolean> => {
    let done = false;
    for (let t = 0; t < 400 && !done; t++) {
      await step(false, 1);
      done = convergedNow();
    }
    if (!done) {
      const where = allPartitions.map((p) =>
        ids
          .map((pid) => {
            const g = cluster.group(pid, p);
            const cs = (g?.configurations() ?? []).map(
              (c) =>
                `c${c.configId}[${c.members.join(',')}] ${c.role} leader=${c.leader} decided=${c.decidedIndex}${c.stopSign ? ` stop@${c.stopSign.index}->${c.stopSign.next}${c.stopSign.decided ? '' : '?'}` : ''}`,
            );
            return `node ${pid}: applied ${g?.appliedIndex} ${cs.join(' | ') || 'no configuration'}${g?.removed ? ' (removed)' : ''}`;
          })
          .join('; '),
      );
      violations.push(`replicas did not converge within 400 ticks ${when}: ${where.join(' || ')}`);
    }
    return done;
  };
  let converged = await converge('after healing');

  // Final linearizable reads of every key (bank: of every tag's accounts), through the leader, as a
  // client of their own.
  const reader: Client = { name: 'final', seq: 0, open: undefined, leaderGuess: new Map(), view: new Map() };
  clients.push(reader);
  const finalOps: KvOp[] = bank
    ? allPartitions.map((tag) => bankRead(`b${tag}`))
    : keys.map((key) => ({ op: 'get', key }));
  for (const finalOp of finalOps) {
    open(reader, finalOp);
    for (let t = 0; t < 200 && reader.open; t++) {
      tryOp(reader);
      await step(false, 1);
      if (reader.open?.attempt && sim.now - reader.open.attempt.startedAt > attemptTimeout)
        reader.open.attempt = undefined;
    }
    if (reader.open) {
      violations.push(
        `final read of ${finalOp.op === 'get' ? finalOp.key : `tag {b${partitionOfKey(routingKeyOf(finalOp))}}`} did not complete after healing`,
      );
      finish(reader, { info: 'final read timed out' });
    }
  }
  if (bank) {
    // No acknowledged transfer lost: every account's final modRevision is at least that of the last
    // acknowledged write to it, with that write's value when equal.
    for (const tag of allPartitions) {
      const view = reader.view.get(tag);
      // (a failed final read or a broken invariant is reported above)
      if (view !== undefined) violations.push(...lostBankWrites(accounts(tag), view, ackedBankWrites));
    }
  }

  // The final reads may leave followers behind the leader (a leader's barrier entry decided, a
  // follower's WAL flush not yet done): converge again before comparing the replicas.
  if (converged) converged = await converge('after the final reads');

  // Direct checks on the healed replicas.
  for (const p of allPartitions) {
    const gs = groups(p);
    if (converged) {
      const states = gs.map((g) => Buffer.from(g!.exportState()).toString('base64'));
      if (new Set(states).size !== 1)
        violations.push(`healed replicas of partition ${p} hold different states`);
      for (const [at, seq] of ackedSeq) {
        const [client, partition] = at.split('@') as [string, string];
        if (Number(partition) !== p) continue;
        for (const g of gs) {
          const s = g!.sessionOf(client);
          if (!s || s.seq < seq) {
            violations.push(
              `replica ${g!.pid} of partition ${p} lost acknowledged write ${client}#${seq} (session at ${s?.seq ?? 'none'})`,
            );
          }
        }
      }
    }
    for (const g of gs) {
      if (g?.failure) violations.push(`replica ${g.pid} of partition ${p} stopped: ${g.failure.message}`);
    }
  }

  return {
    seed: options.seed,
    history: `${recorder.join('\n')}\n`,
    model,
    violations,
    stats: {
      ok,
      indeterminate,
      attempts: attemptsTotal,
      crashes,
      partitions: netPartitions,
      appliedEntries,
      snapshotsInstalled,
      reconfigsRequested,
      configurationsDecided: allPartitions.reduce(
        (n, p) => n + Math.max(0, ...ids.map((pid) => cluster.group(pid, p)?.configuration?.configId ?? 0)),
        0,
      ),
      configStarts,
    },
  };
}
