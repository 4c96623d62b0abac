/**
 * A whole cluster of replica groups in memory: N nodes, each hosting one replica of every partition on
 * one write-ahead log over its own {@link SimDisk}, driven by the paxos {@link Simulator} (seeded network
 * and process faults) with messages crossing a msgpack wire. The deterministic simulation tests build on
 * it, and so does the server's start-up warm-up ({@link warmUpReplicaGroups}).
 * @module
 */

import type { KvOp } from '@paxkv/common';
import { isStopSign, type NodeId, type StopSign } from '@paxkv/paxos';
import { type SimNode, Simulator } from '@paxkv/paxos/testing';
import { decode, encode } from './codec.js';
import type { KvCommand } from './command.js';
import {
  type ConfigurationEvent,
  ReplicaGroup as Group,
  type ReplicaGroup,
  type ReplicaGroupConfig,
  type SubmitOptions,
  type SubmitResult,
} from './replica-group.js';
import type { GroupMessage } from './snapshot-transfer.js';
import type { ApplyOutcome } from './state-machine.js';
import { SimDisk } from './storage/sim-disk.js';
import { WriteAheadLog } from './storage/wal.js';

/** A paxos message of one group. */
export type PaxosMsg = GroupMessage<KvCommand>;
/** A message on the simulated wire: a paxos message of one partition (all groups share a node's links). */
export interface Msg {
  readonly p: number;
  readonly m: PaxosMsg;
}

/** One simulated node: its groups (once open), their outbox, and the callbacks of the simulator. */
class GroupNode implements SimNode<Msg> {
  /** The node's groups by partition, once opened (all on one shared write-ahead log). */
  groups: ReplicaGroup[] | undefined;
  private out: { to: NodeId; message: Msg }[] = [];
  private buffered: Array<() => void> = [];
  constructor(
    open: (send: (p: number, to: NodeId, message: PaxosMsg) => void) => Promise<ReplicaGroup[]>,
    onSend?: (partition: number, to: NodeId, message: PaxosMsg, bytes: number) => void,
  ) {
    const send = (p: number, to: NodeId, message: PaxosMsg) => {
      const bytes = encode({ p, m: message });
      onSend?.(p, to, message, bytes.length);
      this.out.push({ to, message: decode(bytes, 'paxos message') as Msg });
    };
    void open(send).then((gs) => {
      this.groups = gs;
      for (const f of this.buffered) f();
      this.buffered = [];
    });
  }
  handle(from: NodeId, message: Msg): void {
    if (this.groups) this.groups[message.p]?.handle(from, message.m);
    else this.buffered.push(() => this.groups?.[message.p]?.handle(from, message.m));
  }
  tick(): void {
    for (const g of this.groups ?? []) g.tick();
  }
  reconnected(peer: NodeId): void {
    if (this.groups) for (const g of this.groups) g.reconnected(peer);
    else this.buffered.push(() => this.reconnected(peer));
  }
  disconnected(peer: NodeId): void {
    if (this.groups) for (const g of this.groups) g.disconnected(peer);
    else this.buffered.push(() => this.disconnected(peer));
  }
  drainOutbox(): { to: NodeId; message: Msg }[] {
    const o = this.out;
    this.out = [];
    return o;
  }
}

const settle = () => new Promise<void>((r) => setImmediate(r));

/** Steps {@link GroupCluster.call} waits for an answer by default (12 s of 20 ms ticks). */
export const CALL_MAX_TICKS = 600;

/** Options of {@link GroupCluster}. */
export interface GroupClusterOptions {
  /** Seed of the simulator's PRNG. */
  readonly seed: number;
  /** Replicas (ids 1..n): configuration 0 of every group. Default 3. */
  readonly replicas?: number;
  /**
   * Spare nodes (ids n+1..n+s): they host every partition's group as a joiner (no configuration
   * until a reconfiguration names them). Default 0.
   */
  readonly spares?: number;
  /** Called on every configuration event of a replica (see `ReplicaGroup`'s `onConfigChange`). */
  readonly onConfigChange?: (pid: NodeId, partition: number, event: ConfigurationEvent) => void;
  /** Replica group config overrides. */
  readonly group?: Partial<ReplicaGroupConfig>;
  /** Whether fsyncs complete only when {@link GroupCluster.step} decides (default true: crashes can lose unsynced writes). */
  readonly manualSync?: boolean;
  /** Replica groups (partitions 0..n-1) per node, sharing the node's one write-ahead log. Default 1. */
  readonly partitions?: number;
  /** Called after each entry a replica applies. */
  readonly onApplied?: (
    pid: NodeId,
    index: number,
    command: KvCommand,
    outcome: ApplyOutcome,
    partition: number,
  ) => void;
  /**
   * Session breaks are silent (the replicas are never told, see the paxos `Simulator`'s `silentBreaks`):
   * links that go quiet without a reset. Default false.
   */
  readonly silentBreaks?: boolean;
  /** Called after each stop-sign a replica applies (a reconfiguration; `onApplied` sees commands only). */
  readonly onStopSignApplied?: (pid: NodeId, index: number, sign: StopSign, partition: number) => void;
  /** Called when a replica finished opening its storage (once per group). */
  readonly onOpened?: (pid: NodeId, group: ReplicaGroup, incarnation: number) => void;
  /** Chance that a message is delivered twice (see the paxos `Simulator`). Default 0. */
  readonly duplicateProbability?: number;
  /** Chance that a message is lost without breaking its session (see the paxos `Simulator`). Default 0. */
  readonly lossProbability?: number;
  /**
   * Called for every message a replica sends, with the size of its encoding: messages cross the
   * simulated wire through msgpack, as they would over TCP.
   */
  readonly onSend?: (
    from: NodeId,
    to: NodeId,
    partition: number,
    message: GroupMessage<KvCommand>,
    bytes: number,
  ) => void;
}

/**
 * N nodes, each hosting one replica of every group (partitions 0..P-1, default P = 1), all of a node's
 * groups on ONE write-ahead log on the node's {@link SimDisk}, under the paxos {@link Simulator}. Messages
 * cross a simulated msgpack wire. The disks survive crashes; what was not synced is lost (and the last
 * write may be torn); a crash takes down every group of the node at once.
 */
export class GroupCluster {
  /** The network and process simulator (its `rng` is the only randomness). */
  readonly sim: Simulator<Msg>;
  /** Replica ids. */
  readonly ids: readonly NodeId[];
  /** Each replica's disk. */
  readonly disks: ReadonlyMap<NodeId, SimDisk>;
  /** Groups per node. */
  readonly partitions: number;
  private readonly nodes = new Map<NodeId, GroupNode>();

  constructor(options: GroupClusterOptions) {
    const n = options.replicas ?? 3;
    const partitions = options.partitions ?? 1;
    this.partitions = partitions;
    const ids = Array.from({ length: n + (options.spares ?? 0) }, (_, i) => i + 1);
    const boot = ids.slice(0, n);
    this.ids = ids;
    const disks = new Map(ids.map((id) => [id, new SimDisk({ autoSync: options.manualSync === false })]));
    this.disks = disks;
    const config: Partial<ReplicaGroupConfig> = {
      snapshotEveryEntries: 25,
      requestTimeoutTicks: 200,
      ...options.group,
    };
    this.sim = new Simulator<Msg>({
      seed: options.seed,
      nodeIds: ids,
      minDelay: 0,
      // Round trips stay within one BLE heartbeat round (5 ticks by default) as in the paxos simulator.
      maxDelay: 2,
      silentBreaks: options.silentBreaks ?? false,
      duplicateProbability: options.duplicateProbability ?? 0,
      lossProbability: options.lossProbability ?? 0,
      factory: (pid, restartCount) => {
        // Each incarnation sees the disk through its own view: a crashed incarnation's pending work
        // never touches the disk again.
        const disk = disks.get(pid)!.incarnation();
        const node = new GroupNode(
          async (send) => {
            const { wal } = await WriteAheadLog.open({ disk, dir: '/data/wal', segmentBytes: 4096 });
            const groups: ReplicaGroup[] = [];
            for (let partition = 0; partition < partitions; partition++) {
              const g = await Group.open({
                partition,
                pid,
                peers: boot.filter((p) => p !== pid),
                join: !boot.includes(pid),
                wal,
                disk,
                dir: `/data/p${partition}`,
                nonce: `r${restartCount}`,
                send: (to, message) => send(partition, to, message),
                addressOf: (node) => `10.0.0.${node}:7000`,
                config,
                ...(options.onConfigChange
                  ? { onConfigChange: (e: ConfigurationEvent) => options.onConfigChange?.(pid, partition, e) }
                  : {}),
                ...(options.onApplied || options.onStopSignApplied
                  ? {
                      onApplied: (i: number, c: unknown, o: ApplyOutcome) => {
                        if (isStopSign(c)) options.onStopSignApplied?.(pid, i, c, partition);
                        else options.onApplied?.(pid, i, c as KvCommand, o, partition);
                      },
                    }
                  : {}),
              });
              options.onOpened?.(pid, g, restartCount);
              groups.push(g);
            }
            return groups;
          },
          options.onSend
            ? (p, to, message, bytes) => options.onSend?.(pid, to, p, message, bytes)
            : undefined,
        );
        this.nodes.set(pid, node);
        return node;
      },
    });
  }

  /** The running group of `partition` on `pid`, or undefined while it is crashed or still opening its storage. */
  group(pid: NodeId, partition = 0): ReplicaGroup | undefined {
    return this.sim.isUp(pid) ? this.nodes.get(pid)?.groups?.[partition] : undefined;
  }

  /** The replica of `partition` that leads in the accept phase, if any (the highest ballot wins if several think so). */
  leader(partition = 0): ReplicaGroup | undefined {
    const leaders = this.ids
      .map((p) => this.group(p, partition))
      .filter((g): g is ReplicaGroup => g?.role === 'leader' && g.phase === 'accept');
    return leaders.at(-1);
  }

  /**
   * One simulated tick: tick every replica, let storage writes complete (each disk's pending fsyncs
   * complete with probability `syncProbability`), deliver due messages, and let released outputs settle.
   */
  async step(syncProbability = 1): Promise<void> {
    this.sim.tickAll();
    await this.settle();
    for (const [pid, disk] of this.disks) {
      if (!this.sim.isUp(pid) || syncProbability >= 1 || this.sim.rng.chance(syncProbability))
        disk.completeSyncs();
    }
    await this.settle();
    this.sim.deliverDue();
    await this.settle();
  }

  /** Lets promise chains run, then puts the messages replicas released meanwhile on the wire. */
  private async settle(): Promise<void> {
    await settle();
    for (const pid of this.ids) this.sim.withNode(pid, () => undefined);
  }

  /** Steps until `pred()` holds; returns the steps taken, or -1 after `max`. */
  async runUntil(pred: () => boolean, max: number, syncProbability = 1): Promise<number> {
    for (let i = 0; i < max; i++) {
      if (pred()) return i;
      await this.step(syncProbability);
    }
    return pred() ? max : -1;
  }

  /** Crashes `pid`: the process is gone, its disk keeps only synced bytes (torn tail if `tear`). */
  crash(pid: NodeId, tear = false): void {
    this.sim.crash(pid);
    this.disks.get(pid)!.crash(tear ? { tear: () => this.sim.rng.next() } : {});
  }

  /** Restarts `pid` over its disk. */
  restart(pid: NodeId): void {
    this.sim.restart(pid);
  }

  /**
   * Submits `op` at `pid` and steps the cluster until it is answered, at most `maxTicks` steps (default
   * {@link CALL_MAX_TICKS}); `undefined` when it was not answered by then.
   */
  async call(
    pid: NodeId,
    op: KvOp,
    options: SubmitOptions = {},
    maxTicks = CALL_MAX_TICKS,
  ): Promise<SubmitResult | Error | undefined> {
    let out: SubmitResult | Error | undefined;
    void this.submit(pid, op, options).then((r) => {
      out = r;
    });
    await this.runUntil(() => out !== undefined, maxTicks);
    return out;
  }

  /** Submits `op` at `pid` (to its group of `partition`) and resolves with the outcome (never rejects: errors come back as values). */
  async submit(
    pid: NodeId,
    op: KvOp,
    options: SubmitOptions = {},
    partition = 0,
  ): Promise<SubmitResult | Error> {
    const g = this.group(pid, partition);
    if (!g) return new Error(`replica ${pid} is not running`);
    return g.submit(op, options).then(
      (r) => r,
      (e: Error) => e,
    );
  }
}
