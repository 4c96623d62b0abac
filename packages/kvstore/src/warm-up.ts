/**
 * The start-up warm-up of a server's replica-group code: one short, scripted run of a small in-memory
 * cluster ({@link GroupCluster}: simulated disks and network, nothing leaves the process) through the
 * paths that a replica move takes and that steady traffic never does: a stop-sign, a joiner's snapshot
 * transfer and install, a leader that leaves its group, a configuration that retires.
 *
 * Why: V8 compiles a hot function for the object shapes and branches it has seen. The first
 * reconfiguration under load reaches branches of the hot put path that had no type feedback (a
 * stop-sign among the decided entries, reconfiguration messages in the message checks, a snapshot
 * install) and V8 throws away the optimised code of dozens of hot functions at once and compiles them
 * again, on cores that the load already fills: on the 2-core machine of `docs/performance.md` the put
 * rate fell to 42-63 % of its steady rate for several seconds after a server was removed. Once these
 * paths have run, the optimised code covers them from the start.
 * @module
 */
import type { NodeId } from '@paxkv/paxos';
import { GroupCluster } from './group-cluster.js';
import type { ReplicaGroup, SubmitResult } from './replica-group.js';

/** Options of {@link warmUpReplicaGroups}. */
export interface WarmUpOptions {
  /** Stops the run between two simulated steps (for a server that closes meanwhile). */
  readonly signal?: AbortSignal;
  /** Writes per partition in each phase (before the moves, beside each, after). Default {@link WARM_UP_WRITES}. */
  readonly writes?: number;
}

/** What one warm-up run did (each count is checked by the tests, so a run that skipped a path shows). */
export interface WarmUpReport {
  /** Simulated steps (each lets every replica tick, write, sync and exchange messages once). */
  readonly steps: number;
  /** Operations answered without an error (puts, gets, compare-and-sets, deletes, ranges). */
  readonly operations: number;
  /** Reconfigurations decided (distinct stop-signs, over both partitions). */
  readonly reconfigurations: number;
  /** Configurations started by a replica that joined by a snapshot transfer. */
  readonly joins: number;
  /** Replicas that learnt they were removed from a group. */
  readonly removals: number;
  /** True when the run was stopped by `signal` before its end. */
  readonly aborted: boolean;
}

/** Default writes per partition in each phase of the warm-up. */
export const WARM_UP_WRITES = 40;

/** Replicas, spares and partitions of the warm-up cluster: two moves, one of them off the leader. */
const REPLICAS = 3;
const SPARES = 2;
const PARTITIONS = 2;
/** The simulated steps a phase may take before the warm-up gives up on it (a bug, never expected). */
const PHASE_MAX_STEPS = 600;
/** Distinct keys written beside each write (enough over the run for a tree of several levels). */
const BATCH_KEYS = 8;
/** Seed of the simulated network: the run is the same on every server. */
const SEED = 1;

class Aborted extends Error {}

/**
 * Runs the warm-up once: a 3-replica cluster with 2 spares and 2 partitions on simulated disks writes,
 * reads and snapshots; then partition 0 replaces a follower and partition 1 replaces its leader (each
 * spare joins by snapshot transfer) while both partitions take writes, and the leader of partition 0
 * hands its leadership over. Phases that run side by side (writes beside a move) share the simulator:
 * each waiting loop advances it. Yields to the event loop at every simulated step, so a server's real
 * traffic goes on between them. A path that does not complete (a write refused, a move that does not end
 * within its step budget) is not an error: the report's counts say what ran.
 */
export async function warmUpReplicaGroups(options: WarmUpOptions = {}): Promise<WarmUpReport> {
  const writes = options.writes ?? WARM_UP_WRITES;
  const decided = new Set<string>();
  let joins = 0;
  let removals = 0;
  let operations = 0;
  let steps = 0;
  const cluster = new GroupCluster({
    seed: SEED,
    replicas: REPLICAS,
    spares: SPARES,
    partitions: PARTITIONS,
    manualSync: false,
    // Small thresholds: snapshots, compaction and a transfer in chunks happen within a few dozen writes.
    group: {
      snapshotEveryEntries: 16,
      snapshotMinEntries: 8,
      snapshotTransfer: { chunkBytes: 1024 },
    },
    onConfigChange: (pid, partition, e) => {
      if (e.kind === 'decided') decided.add(`${partition}:${e.configuration.configId}`);
      // A spare starts a configuration only by joining it (snapshot transfer).
      else if (e.kind === 'started' && pid > REPLICAS) joins++;
      else if (e.kind === 'removed') removals++;
    },
  });
  const step = async (): Promise<void> => {
    if (options.signal?.aborted) throw new Aborted();
    await cluster.step();
    steps++;
  };
  const until = async (done: () => boolean): Promise<boolean> => {
    for (let i = 0; i < PHASE_MAX_STEPS; i++) {
      if (done()) return true;
      await step();
    }
    return done();
  };
  const leaderOf = async (partition: number): Promise<ReplicaGroup | undefined> => {
    await until(() => cluster.leader(partition) !== undefined);
    return cluster.leader(partition);
  };
  const call = async <T>(p: Promise<T>): Promise<T | Error> => {
    let out: T | Error | undefined;
    p.then(
      (r) => {
        out = r;
      },
      (e: unknown) => {
        out = e instanceof Error ? e : new Error(String(e));
      },
    );
    await until(() => out !== undefined);
    return out ?? new Error('no answer');
  };
  let seq = 0;
  const traffic = async (partition: number, tag: string): Promise<void> => {
    for (let i = 0; i < writes; i++) {
      const leader = await leaderOf(partition);
      if (!leader) return;
      const key = `${tag}${i % 8}`;
      const session = { client: `warm-up-${partition}`, seq: ++seq };
      const ops: Array<Promise<SubmitResult>> = [
        leader.submit({ op: 'put', key, value: `v${i}` }, { session }),
      ];
      // Distinct keys too, several per round: the state's B+ tree grows internal nodes (as a real
      // partition's does), which a joiner's snapshot install then builds by bulk loading.
      for (let j = 0; j < BATCH_KEYS; j++)
        ops.push(leader.submit({ op: 'put', key: `${tag}/${i}/${j}`, value: 'x' }));
      // The other kinds of operation, less often: each reaches its own branches of the state machine.
      if (i % 4 === 1) ops.push(leader.submit({ op: 'get', key }));
      if (i % 8 === 3) ops.push(leader.submit({ op: 'cas', key, expected: `v${i}`, value: `w${i}` }));
      if (i % 8 === 5) ops.push(leader.submit({ op: 'delete', key: `${tag}${(i + 1) % 8}` }));
      if (i % 8 === 7) ops.push(leader.submit({ op: 'range', start: tag, end: `${tag}~`, limit: 4 }));
      const settled = await call(Promise.allSettled(ops));
      if (!(settled instanceof Error)) operations += settled.filter((r) => r.status === 'fulfilled').length;
    }
  };
  const move = async (partition: number, leaves: (leader: ReplicaGroup) => NodeId, joiner: NodeId) => {
    const leader = await leaderOf(partition);
    const members = leader?.configuration?.members;
    if (!leader || !members) return;
    const gone = leaves(leader);
    const next = [...members.filter((m) => m !== gone), joiner];
    // Read before the move: the leader's own configuration changes with it.
    const nextId = leader.configuration!.configId + 1;
    await call(leader.reconfigure(next));
    // Done when the joiner serves the new configuration and the one that left knows it.
    await until(
      () =>
        cluster.group(joiner, partition)?.configuration?.configId === nextId &&
        cluster.group(gone, partition)?.removed === true,
    );
  };
  let aborted = false;
  try {
    await Promise.all([traffic(0, 'a'), traffic(1, 'b')]);
    const spare = (i: number) => REPLICAS + 1 + i;
    // Each move with writes in flight on both partitions, as a move under load has: requests held
    // through the stop-sign, answered by the next configuration's leader, retried after a leader change.
    const follower = (l: ReplicaGroup) => l.configuration!.members.find((m) => m !== l.pid)!;
    await Promise.all([move(0, follower, spare(0)), traffic(0, 'c'), traffic(1, 'd')]);
    await Promise.all([move(1, (l) => l.pid, spare(1)), traffic(0, 'f'), traffic(1, 'g')]);
    const leader = await leaderOf(0);
    if (leader?.transferLeadership()) await until(() => cluster.leader(0)?.pid !== leader.pid);
    await traffic(0, 'e');
  } catch (e) {
    if (!(e instanceof Aborted)) throw e;
    aborted = true;
  } finally {
    await closeAll(cluster);
  }
  return { steps, operations, reconfigurations: decided.size, joins, removals, aborted };
}

async function closeAll(cluster: GroupCluster): Promise<void> {
  for (const pid of cluster.ids) {
    for (let p = 0; p < cluster.partitions; p++)
      await cluster
        .group(pid, p)
        ?.close()
        .catch(() => {});
  }
}
