import { rmSync } from 'node:fs';
import { partitionOf } from '@paxkv/common';
import type { ManagedCluster, ManagedServer } from './cluster.js';
import {
  MembershipClient,
  MembershipRefused,
  MembershipServerBug,
  type MetadataView,
  placementProblems,
  replicaCounts,
} from './membership.js';
import type { FaultProxy, LinkRule } from './proxy.js';
import { Rng } from './rng.js';
import { describeScenario, randomScenario, type ScenarioKind, scenarioCuts } from './scenarios.js';
import type { Episode, Fault, FaultKind, FaultTarget } from './schedule.js';

/** Options of a {@link Nemesis}. */
export interface NemesisOptions {
  /** The workload's keys (leader faults aim at the leader of a key's partition). */
  readonly keys: readonly string[];
  /** Partitions of the cluster (to route a key). */
  readonly partitions: number;
  /** Where progress lines go. Default: nowhere. */
  readonly log?: (line: string) => void;
  /** Time allowed to restart a killed server. Default 60 000 ms. */
  readonly restartTimeoutMs?: number;
  /** Partition scenarios to draw from. Default: every kind. */
  readonly scenarioKinds?: readonly ScenarioKind[];
  /**
   * Bounds of the membership faults: `add` is skipped at `maxServers` servers in the cluster, `remove`
   * at `minServers`. Defaults: the starting size + 1 and the larger of 4 and the starting size - 1.
   */
  readonly minServers?: number;
  readonly maxServers?: number;
  /** How long a membership change may take before the nemesis stops waiting for it. Default 120 000 ms. */
  readonly membershipTimeoutMs?: number;
  /**
   * Whether `replace` and `remove` may hit a replica of the metadata group too (its replicas then move as
   * well). Default false: only the other servers.
   */
  readonly metadataTargets?: boolean;
}

/** The placement of the replicas at the end of a run with membership faults. */
export interface PlacementReport {
  /** What is wrong (empty: every partition on its replication degree of live servers, nothing moving). */
  readonly problems: readonly string[];
  /** One line for the summary. */
  readonly line: string;
}

/** What the nemesis did, for the summary. */
export interface NemesisReport {
  /** Faults injected, by kind. */
  readonly counts: Record<FaultKind, number>;
  /** Episodes run. */
  readonly episodes: number;
  /** One line per fault injected, with its time. */
  readonly timeline: readonly string[];
  /** Problems of the nemesis itself (a restart that failed, ...). A run with errors is not conclusive. */
  readonly errors: readonly string[];
}

interface ActiveFault {
  heal(): Promise<void>;
}

/**
 * Runs a fault schedule against a {@link ManagedCluster}: SIGKILL and restart on the same data dir,
 * SIGSTOP/SIGCONT, partitions, slow and lossy links through the {@link FaultProxy}, alone or combined.
 * Each episode's faults start together and are healed together after the episode's duration.
 */
export class Nemesis {
  private readonly counts: Record<FaultKind, number> = {
    kill: 0,
    pause: 0,
    partition: 0,
    delay: 0,
    flaky: 0,
    replace: 0,
    add: 0,
    remove: 0,
  };
  /** The membership change in progress (one at a time), if any. */
  private pending: Promise<void> | undefined;
  /** Servers `member remove`d by the nemesis (retired once they are off the member list). */
  private readonly removing = new Set<ManagedServer>();
  private readonly members: MembershipClient;
  private readonly initialServers: number;
  private readonly timeline: string[] = [];
  private readonly errors: string[] = [];
  private episodesRun = 0;
  private stopped = false;
  private started = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly cluster: ManagedCluster,
    private readonly proxy: FaultProxy,
    private readonly schedule: readonly Episode[],
    private readonly options: NemesisOptions,
  ) {
    this.members = new MembershipClient(cluster);
    this.initialServers = cluster.live().length;
  }

  /** Runs the schedule (times relative to now) until it ends or {@link stop} is called, then heals. */
  async run(): Promise<NemesisReport> {
    this.started = Date.now();
    for (const ep of this.schedule) {
      if (this.stopped) break;
      await this.sleepUntil(this.started + ep.atMs);
      if (this.stopped) break;
      const active: ActiveFault[] = [];
      // Link rules first, partitions last: a cut overrides a slow or lossy rule on the same link.
      const ordered = [...ep.faults].sort((a, b) => order(a) - order(b));
      for (const f of ordered) {
        try {
          const a = await this.inject(f, ep.durationMs);
          if (a !== undefined) active.push(a);
        } catch (e) {
          this.errors.push(`${this.clock()} injecting ${f.kind}: ${(e as Error).message}`);
        }
      }
      this.episodesRun += 1;
      await this.sleepUntil(Date.now() + ep.durationMs);
      for (const a of active.reverse()) {
        try {
          await a.heal();
        } catch (e) {
          this.errors.push(`${this.clock()} healing: ${(e as Error).message}`);
        }
      }
    }
    await this.healAll();
    return this.report();
  }

  /** Ends the schedule early; {@link run} heals and returns. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** The report so far. */
  report(): NemesisReport {
    return {
      counts: { ...this.counts },
      episodes: this.episodesRun,
      timeline: [...this.timeline],
      errors: [...this.errors],
    };
  }

  /** Heals every link, resumes paused servers and restarts killed ones. */
  async healAll(): Promise<void> {
    this.proxy.heal();
    for (const s of this.cluster.servers) s.resume();
    for (const s of this.cluster.servers) {
      if (s.state === 'killed') {
        try {
          await this.cluster.restart(s, this.options.restartTimeoutMs);
        } catch (e) {
          this.errors.push(`${this.clock()} restarting node ${s.node}: ${(e as Error).message}`);
        }
      }
    }
  }

  private clock(): string {
    return `t=${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }

  private note(line: string): void {
    const l = `${this.clock()} ${line}`;
    this.timeline.push(l);
    this.options.log?.(l);
  }

  private async sleepUntil(at: number): Promise<void> {
    const ms = at - Date.now();
    if (ms <= 0 || this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private partitionOfKey(keyIndex: number): number {
    const key = this.options.keys[keyIndex % this.options.keys.length] ?? '';
    return partitionOf(key, this.options.partitions);
  }

  private async resolveTarget(t: FaultTarget): Promise<{ server: ManagedServer; why: string } | undefined> {
    // Slots count over the servers still in the cluster (the same as all servers without membership faults).
    const servers = this.cluster.live().filter((s) => s.node > 0);
    if (t.kind === 'leader') {
      const p = this.partitionOfKey(t.keyIndex);
      const leader = await this.cluster.leaderOf(p);
      const s = leader === undefined ? undefined : this.cluster.byNode(leader);
      if (s !== undefined && s.state === 'running' && !s.retired)
        return { server: s, why: `leader of p${p}` };
      const fb = servers[t.fallbackSlot % Math.max(1, servers.length)];
      return fb === undefined ? undefined : { server: fb, why: `no known leader of p${p}` };
    }
    const s = servers[t.slot % Math.max(1, servers.length)];
    return s === undefined ? undefined : { server: s, why: 'random' };
  }

  private async inject(f: Fault, durationMs: number): Promise<ActiveFault | undefined> {
    const secs = (durationMs / 1000).toFixed(1);
    switch (f.kind) {
      case 'replace':
      case 'add':
      case 'remove':
        // Permanent changes: nothing to heal at the end of the episode.
        await this.injectMembership(f);
        return undefined;
      case 'kill': {
        const t = await this.resolveTarget(f.target);
        if (t === undefined || t.server.state !== 'running') return undefined;
        const s = t.server;
        await s.kill();
        this.counts.kill += 1;
        this.note(`kill -9 node ${s.node} (${t.why}) for ${secs}s`);
        return {
          heal: async () => {
            await this.cluster.restart(s, this.options.restartTimeoutMs);
            this.note(`restarted node ${s.node}`);
          },
        };
      }
      case 'pause': {
        const t = await this.resolveTarget(f.target);
        if (t === undefined || t.server.state !== 'running') return undefined;
        const s = t.server;
        s.pause();
        this.counts.pause += 1;
        this.note(`SIGSTOP node ${s.node} (${t.why}) for ${secs}s`);
        return {
          heal: async () => {
            s.resume();
            this.note(`SIGCONT node ${s.node}`);
          },
        };
      }
      case 'partition': {
        const nodes = this.cluster.nodes();
        const leader = await this.cluster.leaderOf(this.partitionOfKey(f.keyIndex));
        const scenario = randomScenario(new Rng(f.seed), nodes, leader, this.options.scenarioKinds);
        const cuts = scenarioCuts(scenario, nodes);
        for (const [a, b] of cuts)
          this.proxy.setRule(a, b, f.blackhole ? { kind: 'blackhole' } : { kind: 'cut', mode: 'refuse' });
        this.counts.partition += 1;
        this.note(
          `partition ${describeScenario(scenario)} (${f.blackhole ? 'blackhole' : 'refuse'}, ${cuts.length} links) for ${secs}s`,
        );
        return { heal: async () => this.healLinks('partition healed') };
      }
      case 'delay':
      case 'flaky': {
        const rng = new Rng(f.seed);
        const nodes = this.cluster.nodes();
        const rule: LinkRule =
          f.kind === 'delay'
            ? { kind: 'delay', ms: f.ms, jitterMs: f.jitterMs }
            : { kind: 'drop-then-close', probability: f.probability };
        // Either every link of one server, or a random half of all links.
        const links: Array<[number, number]> = [];
        const focus = rng.chance(0.5) ? rng.pick(nodes) : undefined;
        for (const a of nodes)
          for (const b of nodes)
            if (a !== b && (focus === undefined ? rng.chance(0.5) : a === focus || b === focus))
              links.push([a, b]);
        for (const [a, b] of links) this.proxy.setRule(a, b, rule);
        this.counts[f.kind] += 1;
        const what =
          f.kind === 'delay' ? `delay ${f.ms}+${f.jitterMs}ms` : `drop-then-close p=${f.probability}`;
        this.note(
          `${what} on ${focus === undefined ? `${links.length} random links` : `all links of node ${focus}`} for ${secs}s`,
        );
        return { heal: async () => this.healLinks(`${f.kind} healed`) };
      }
    }
  }

  /**
   * Runs `change` as the membership change in progress: the next membership fault waits for it (is
   * skipped). A change that does not finish in time is noted, not an error: the cluster may be under
   * other faults; {@link settleMembership} checks the end state.
   */
  private track(what: string, change: () => Promise<void>): void {
    this.pending = change()
      .catch((e: unknown) => {
        if (e instanceof MembershipRefused) this.note(`${what}: refused: ${e.message}`);
        else if (e instanceof MembershipServerBug) this.errors.push(`${this.clock()} ${what}: ${e.message}`);
        else this.note(`${what}: gave up waiting: ${(e as Error).message}`);
      })
      .finally(() => {
        this.pending = undefined;
      });
  }

  private deadline(): number {
    return Date.now() + (this.options.membershipTimeoutMs ?? 120_000);
  }

  /** Running servers that membership faults may hit (outside the metadata group unless `metadataTargets`). */
  private async movable(): Promise<{ servers: ManagedServer[]; metadata: MetadataView } | undefined> {
    let m: MetadataView;
    try {
      m = await this.members.metadata(Date.now() + 5000);
    } catch (e) {
      this.note(`membership fault skipped: no metadata (${(e as Error).message})`);
      return undefined;
    }
    const servers = this.cluster
      .live()
      .filter(
        (s) =>
          s.node > 0 &&
          s.state === 'running' &&
          !this.removing.has(s) &&
          (this.options.metadataTargets === true || !m.metaReplicas.includes(s.node)),
      );
    return { servers, metadata: m };
  }

  private async injectMembership(f: Extract<Fault, { kind: 'replace' | 'add' | 'remove' }>): Promise<void> {
    if (this.pending !== undefined) {
      this.note(`${f.kind} skipped: a membership change is in progress`);
      return;
    }
    const size = this.cluster.live().length;
    const maxServers = this.options.maxServers ?? this.initialServers + 1;
    const minServers = this.options.minServers ?? Math.max(4, this.initialServers - 1);
    const timeout = this.options.restartTimeoutMs;
    switch (f.kind) {
      case 'replace': {
        const found = await this.movable();
        if (found === undefined) return;
        let target = found.servers[0];
        let why = 'random';
        if (f.target.kind === 'leader') {
          const p = this.partitionOfKey(f.target.keyIndex);
          const leader = await this.cluster.leaderOf(p);
          const l = found.servers.find((s) => s.node === leader);
          if (l !== undefined) [target, why] = [l, `leader of p${p}`];
          else target = found.servers[f.target.fallbackSlot % Math.max(1, found.servers.length)];
        } else target = found.servers[f.target.slot % Math.max(1, found.servers.length)];
        if (target === undefined) {
          this.note('replace skipped: every running server is a metadata replica');
          return;
        }
        const lost = target.node;
        await this.cluster.retire(target);
        rmSync(target.dataDir, { recursive: true, force: true });
        this.counts.replace += 1;
        this.note(`replace node ${lost} (${why}): kill -9, data dir deleted, a fresh server joins`);
        this.track(`replace node ${lost}`, async () => {
          const fresh = await this.cluster.prepareServer();
          await this.cluster.startAdded(fresh, timeout);
          this.note(`fresh server up as node ${fresh.node} (spare until replicas move to it)`);
          // Self-healing (--replace-after) must move the lost server's replicas; then it leaves the
          // list (it holds nothing: removed at once). The nemesis never drains it itself.
          const deadline = this.deadline();
          await this.members.until(
            `self-healing to move node ${lost}'s replicas`,
            (m) => (m.groups.every((g) => !g.replicas.includes(lost)) ? true : undefined),
            deadline,
          );
          const state = await this.members.remove(lost, deadline);
          this.note(`node ${lost}'s replicas all moved by self-healing; member remove ${lost}: ${state}`);
        });
        return;
      }
      case 'add': {
        if (size >= maxServers) {
          this.note(`add skipped: the cluster has ${size} servers (at most ${maxServers})`);
          return;
        }
        const fresh = await this.cluster.prepareServer();
        this.counts.add += 1;
        this.track(`member add ${fresh.proxyAddress}`, async () => {
          const id = await this.members.add(fresh.proxyAddress, this.deadline());
          this.note(`member add ${fresh.proxyAddress}: node ${id}; starting it`);
          await this.cluster.startAdded(fresh, timeout);
          if (fresh.node !== id)
            this.errors.push(
              `${this.clock()} member add gave node ${id} but the server checked in as ${fresh.node}`,
            );
          else this.note(`node ${id} checked in`);
        });
        return;
      }
      case 'remove': {
        if (size <= minServers) {
          this.note(`remove skipped: the cluster has ${size} servers (at least ${minServers})`);
          return;
        }
        const found = await this.movable();
        if (found === undefined) return;
        const target = found.servers.length > 0 ? new Rng(f.seed).pick(found.servers) : undefined;
        if (target === undefined) {
          this.note('remove skipped: every running server is a metadata replica');
          return;
        }
        const node = target.node;
        this.removing.add(target);
        this.counts.remove += 1;
        this.track(`member remove ${node}`, async () => {
          const deadline = this.deadline();
          const state = await this.members.remove(node, deadline);
          this.note(`member remove ${node}: ${state}`);
          await this.members.until(
            `node ${node} off the member list`,
            (m) => (m.nodes.some((n) => n.id === node) ? undefined : true),
            deadline,
          );
          await this.cluster.retire(target);
          this.removing.delete(target);
          this.note(`node ${node} left the cluster (replicas drained); its process stopped`);
        });
        return;
      }
    }
  }

  /**
   * Waits until the replicated cluster metadata lists every server (the bootstrap server wrote its
   * first version), so that membership faults have something to act on from the first episode.
   * @throws Error after `deadline`.
   */
  async metadataReady(deadline: number): Promise<void> {
    const nodes = this.cluster.nodes();
    await this.members.until(
      'the cluster metadata listing every server',
      (m) => (nodes.every((n) => m.nodes.some((x) => x.id === n)) ? true : undefined),
      deadline,
    );
  }

  /**
   * After the schedule: waits for the membership change in progress, removes from the member list the
   * servers the run lost for good, stops the ones it removed once they are off the list, and waits until
   * every partition is on its replication degree of live servers with nothing moving (for at most
   * `budgetMs` after the change in progress ended).
   */
  async settleMembership(
    replication: number,
    partitions: number,
    budgetMs: number,
  ): Promise<PlacementReport> {
    await this.pending;
    const deadline = Date.now() + budgetMs;
    const problems: string[] = [];
    let last: MetadataView | undefined;
    let lastProblems: string[] = [];
    try {
      for (;;) {
        const m = await this.members.metadata(deadline);
        last = m;
        const listed = new Set(m.nodes.map((n) => n.id));
        for (const s of this.cluster.servers) {
          if (s.node === 0) continue;
          // A server lost for good leaves the list once self-healing moved all its replicas.
          const holds = m.groups.some((g) => g.replicas.includes(s.node));
          if (s.retired && listed.has(s.node) && !m.draining.includes(s.node) && !holds) {
            try {
              await this.members.remove(s.node, deadline);
            } catch (e) {
              problems.push(`member remove ${s.node} (a server lost for good): ${(e as Error).message}`);
            }
          }
          if (!s.retired && this.removing.has(s) && !listed.has(s.node)) {
            await this.cluster.retire(s);
            this.removing.delete(s);
          }
        }
        if (problems.length > 0) break;
        lastProblems = placementProblems(m, this.cluster.nodes(), replication, partitions);
        if (lastProblems.length === 0) break;
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (e) {
      problems.push(`reading the metadata: ${(e as Error).message}`);
    }
    problems.push(...lastProblems);
    const live = this.cluster.nodes();
    const line =
      last === undefined
        ? 'placement: no metadata'
        : `placement (metadata v${last.version}): ${last.groups.length} partitions x ${replication} replicas on live servers ${live.join(',')}; replicas per server ${[
            ...replicaCounts(last),
          ]
            .map(([n, c]) => `${n}:${c}`)
            .join(' ')}${problems.length > 0 ? ` -- NOT SETTLED: ${problems.join('; ')}` : ''}`;
    return { problems, line };
  }

  private healLinks(what: string): void {
    this.proxy.heal();
    this.note(what);
  }
}

function order(f: Fault): number {
  return f.kind === 'delay' || f.kind === 'flaky' ? 0 : f.kind === 'partition' ? 1 : 2;
}
