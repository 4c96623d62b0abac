import { Rng } from './rng.js';

/** The kinds of faults the nemesis injects. */
export const FAULT_KINDS = [
  'kill',
  'pause',
  'partition',
  'delay',
  'flaky',
  'replace',
  'add',
  'remove',
] as const;

/**
 * A fault kind: SIGKILL + restart, SIGSTOP/SIGCONT, a partition through the proxy, slow links, lossy
 * links; and the membership faults: `replace` (SIGKILL, data dir deleted, a fresh server joins; the
 * cluster's self-healing moves the lost server's replicas, then it is removed from the member list),
 * `add` (`member add` of a fresh server, which then starts and joins) and `remove` (`member remove` of a
 * server: it drains, leaves, and its process is stopped).
 */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The process and link faults (`--faults all`). */
export const PROCESS_AND_LINK_FAULTS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'delay', 'flaky'];

/** The membership faults (`--faults membership`); they need a cluster of at least 4 servers. */
export const MEMBERSHIP_FAULTS: readonly FaultKind[] = ['replace', 'add', 'remove'];

/** The faults of a run without `--faults`. */
export const DEFAULT_FAULTS: readonly FaultKind[] = ['kill', 'pause', 'partition'];

/**
 * Whom a process fault hits: the leader of the partition of workload key number `keyIndex` (resolved when
 * the fault starts; `fallbackSlot` if no leader is known), or a fixed server slot.
 */
export type FaultTarget =
  | { readonly kind: 'leader'; readonly keyIndex: number; readonly fallbackSlot: number }
  | { readonly kind: 'slot'; readonly slot: number };

/** One fault of an episode. `seed` drives the choices made when it starts (scenario, links). */
export type Fault =
  | { readonly kind: 'kill'; readonly target: FaultTarget }
  | { readonly kind: 'pause'; readonly target: FaultTarget }
  | {
      readonly kind: 'partition';
      readonly seed: number;
      readonly keyIndex: number;
      readonly blackhole: boolean;
    }
  | { readonly kind: 'delay'; readonly seed: number; readonly ms: number; readonly jitterMs: number }
  | { readonly kind: 'flaky'; readonly seed: number; readonly probability: number }
  | { readonly kind: 'replace'; readonly target: FaultTarget }
  | { readonly kind: 'add' }
  | { readonly kind: 'remove'; readonly seed: number };

/** Faults that start together at `atMs` (from the start of the run) and are healed after `durationMs`. */
export interface Episode {
  readonly atMs: number;
  readonly durationMs: number;
  readonly faults: readonly Fault[];
}

/** Shape of a schedule; every field but `durationMs` and `servers` has a default. */
export interface ScheduleConfig {
  /** Length of the run; no episode starts after `durationMs - minFaultMs`. */
  readonly durationMs: number;
  /** Servers in the cluster. */
  readonly servers: number;
  /** Keys of the workload (targets of leader faults). Default 8. */
  readonly keys: number;
  /** Enabled fault kinds. Default {@link DEFAULT_FAULTS}. */
  readonly faults: readonly FaultKind[];
  /** Quiet time before the first fault. Default 1000 ms. */
  readonly warmupMs: number;
  /** Shortest fault. Default 1000 ms. */
  readonly minFaultMs: number;
  /** Longest fault. Default 4000 ms. */
  readonly maxFaultMs: number;
  /** Shortest quiet gap between episodes. Default 300 ms. */
  readonly minGapMs: number;
  /** Longest quiet gap between episodes. Default 1500 ms. */
  readonly maxGapMs: number;
  /** Chance that an episode combines two faults of different kinds. Default 0.3. */
  readonly combineProbability: number;
  /** Chance that a process or partition fault aims at a leader. Default 0.6. */
  readonly leaderProbability: number;
}

/** Defaults of {@link ScheduleConfig}. */
export const DEFAULT_SCHEDULE_CONFIG: Omit<ScheduleConfig, 'durationMs' | 'servers'> = Object.freeze({
  keys: 8,
  faults: DEFAULT_FAULTS,
  warmupMs: 1000,
  minFaultMs: 1000,
  maxFaultMs: 4000,
  minGapMs: 300,
  maxGapMs: 1500,
  combineProbability: 0.3,
  leaderProbability: 0.6,
});

/**
 * Draws the fault schedule of a run from `seed`. The same seed and configuration give the same schedule
 * (which server a leader fault hits depends on who leads at that moment, which the log records).
 * At most a minority of servers is killed or paused at once, so the cluster can make progress.
 */
export function buildSchedule(
  seed: number,
  config: Partial<ScheduleConfig> & Pick<ScheduleConfig, 'durationMs' | 'servers'>,
): Episode[] {
  const c: ScheduleConfig = { ...DEFAULT_SCHEDULE_CONFIG, ...config };
  if (c.faults.length === 0) return [];
  const rng = new Rng(seed);
  const maxDown = Math.floor((c.servers - 1) / 2);
  const episodes: Episode[] = [];
  let t = c.warmupMs;
  while (t + c.minFaultMs <= c.durationMs) {
    const durationMs = Math.min(rng.between(c.minFaultMs, c.maxFaultMs), c.durationMs - t);
    const kinds: FaultKind[] = [rng.pick(c.faults)];
    if (c.faults.length > 1 && rng.chance(c.combineProbability)) {
      const second = rng.pick(c.faults.filter((k) => k !== kinds[0]));
      kinds.push(second);
    }
    const faults: Fault[] = [];
    const usedSlots = new Set<number>();
    let down = 0;
    for (const kind of kinds) {
      switch (kind) {
        case 'kill':
        case 'pause':
        case 'replace': {
          if (down >= maxDown) break;
          const free = [...Array(c.servers).keys()].filter((s) => !usedSlots.has(s));
          const slot = rng.pick(free);
          usedSlots.add(slot);
          down += 1;
          const target: FaultTarget =
            rng.chance(c.leaderProbability) && down === 1
              ? { kind: 'leader', keyIndex: rng.int(c.keys), fallbackSlot: slot }
              : { kind: 'slot', slot };
          faults.push({ kind, target });
          break;
        }
        case 'partition':
          faults.push({
            kind,
            seed: rng.nextUint32(),
            keyIndex: rng.int(c.keys),
            blackhole: rng.chance(0.3),
          });
          break;
        case 'delay':
          faults.push({
            kind,
            seed: rng.nextUint32(),
            ms: rng.between(5, 150),
            jitterMs: rng.between(0, 100),
          });
          break;
        case 'flaky':
          faults.push({ kind, seed: rng.nextUint32(), probability: rng.between(1, 20) / 100 });
          break;
        case 'add':
          faults.push({ kind });
          break;
        case 'remove':
          faults.push({ kind, seed: rng.nextUint32() });
          break;
      }
    }
    if (faults.length > 0) episodes.push({ atMs: t, durationMs, faults });
    t += durationMs + rng.between(c.minGapMs, c.maxGapMs);
  }
  return episodes;
}

/**
 * Parses a `--faults` list such as `kill,pause,partition`, `all` (every process and link fault) or one
 * that names `membership` (the membership faults), e.g. `kill,partition,membership`.
 */
export function parseFaults(list: string): FaultKind[] {
  if (list.trim() === 'all') return [...PROCESS_AND_LINK_FAULTS];
  const out: FaultKind[] = [];
  for (const raw of list.split(',')) {
    const k = raw.trim();
    if (k === '') continue;
    if (k === 'membership' || k === 'all') {
      for (const m of k === 'all' ? PROCESS_AND_LINK_FAULTS : MEMBERSHIP_FAULTS)
        if (!out.includes(m)) out.push(m);
      continue;
    }
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new RangeError(
        `unknown fault "${k}": use a comma-separated list of ${FAULT_KINDS.join(', ')}, "membership" (replace,add,remove) or "all" (every process and link fault)`,
      );
    }
    if (!out.includes(k as FaultKind)) out.push(k as FaultKind);
  }
  return out;
}
