import { partitionOf } from '@paxkv/common';
import type { ManagedCluster, ManagedServer } from './cluster.js';
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
  };
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
  ) {}

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
    const servers = this.cluster.servers;
    if (t.kind === 'leader') {
      const p = this.partitionOfKey(t.keyIndex);
      const leader = await this.cluster.leaderOf(p);
      const s = leader === undefined ? undefined : this.cluster.byNode(leader);
      if (s !== undefined && s.state === 'running') return { server: s, why: `leader of p${p}` };
      const fb = servers[t.fallbackSlot];
      return fb === undefined ? undefined : { server: fb, why: `no known leader of p${p}` };
    }
    const s = servers[t.slot];
    return s === undefined ? undefined : { server: s, why: 'random' };
  }

  private async inject(f: Fault, durationMs: number): Promise<ActiveFault | undefined> {
    const secs = (durationMs / 1000).toFixed(1);
    switch (f.kind) {
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

  private healLinks(what: string): void {
    this.proxy.heal();
    this.note(what);
  }
}

function order(f: Fault): number {
  return f.kind === 'delay' || f.kind === 'flaky' ? 0 : f.kind === 'partition' ? 1 : 2;
}
