/**
 * What `--reconfig` records besides the per-second put rate, to tell WHY the rate falls while groups
 * move: every put's partition and latency (which groups stalled, when and for how long), the errors by
 * kind, the client's retry/redirect/table-fetch counters per second, and the moves as the metadata
 * showed them (partition, from, to, first and last seen). Pure analysis; the recording is in
 * `reconfig-bench.ts`.
 * @module
 */

/** A put slower than this counts as stalled (ms): 100. */
export const STALL_MS = 100;

/** The puts of a run, as parallel arrays (hundreds of thousands of entries). */
export class PutLog {
  readonly partition: number[] = [];
  readonly start: number[] = [];
  readonly end: number[] = [];
  /** Failed puts by error kind (`code` of a paxkv error, else the error's name). */
  readonly errorsByKind = new Map<string, number>();

  add(partition: number, start: number, end: number): void {
    this.partition.push(partition);
    this.start.push(start);
    this.end.push(end);
  }

  fail(kind: string): void {
    this.errorsByKind.set(kind, (this.errorsByKind.get(kind) ?? 0) + 1);
  }
}

/** A move as the metadata showed it (times in ms from the fault; polled, so +-250 ms). */
export interface SeenMove {
  readonly partition: number;
  readonly from: number;
  readonly to: number;
  readonly firstSeenMs: number;
  lastSeenMs: number;
  /**
   * Seen only once done (the group's replicas changed between two polls; a move takes less than the poll
   * interval): it finished at or before `firstSeenMs`, after the previous poll.
   */
  readonly doneWhenSeen?: boolean;
}

/** A group's replicas as one poll of the metadata showed them. */
export interface PolledGroup {
  readonly partition: number;
  readonly replicas: readonly number[];
}

/**
 * The moves off `victim` that completed between two polls of the metadata: groups that held `victim` in
 * `before` and do not in `after`, each to the replica that `after` has and `before` did not.
 */
export function movesDoneBetween(
  before: readonly PolledGroup[],
  after: readonly PolledGroup[],
  victim: number,
  atMs: number,
): SeenMove[] {
  const was = new Map(before.map((g) => [g.partition, g.replicas]));
  const done: SeenMove[] = [];
  for (const g of after) {
    const old = was.get(g.partition);
    if (old === undefined || !old.includes(victim) || g.replicas.includes(victim)) continue;
    const to = g.replicas.find((r) => !old.includes(r));
    if (to === undefined) continue;
    done.push({
      partition: g.partition,
      from: victim,
      to,
      firstSeenMs: atMs,
      lastSeenMs: atMs,
      doneWhenSeen: true,
    });
  }
  return done;
}

/** One partition's stall: its slowest put that completed after the fault. */
export interface PartitionStall {
  readonly partition: number;
  /** Latency of the slowest put (ms). */
  readonly maxMs: number;
  /** When that put started, from the fault (ms; negative: before it). */
  readonly atMs: number;
  /** Puts of this partition slower than {@link STALL_MS}. */
  readonly slowPuts: number;
}

/** The trace figures of one run (see {@link analyzeTrace}). */
export interface ReconfigTrace {
  /** Per partition with at least one slow put after the fault, worst first. */
  readonly stalls: readonly PartitionStall[];
  /** Per second from the fault: puts slower than {@link STALL_MS} that completed in that second. */
  readonly slowPerSecond: readonly number[];
  /** Per second from the fault: the partition most of that second's slow puts belonged to (-1: none). */
  readonly slowPartitionPerSecond: readonly number[];
  /** Failed puts by kind, from the fault on. */
  readonly errorsByKind: Readonly<Record<string, number>>;
  /** Per second from the steady window's start: the client's counters' increase in that second. */
  readonly clientPerSecond: Readonly<Record<string, readonly number[]>>;
  /** The moves seen, in order. */
  readonly moves: readonly SeenMove[];
  /**
   * Per second from the steady window's start: the mean latency (ms) of the puts that completed in it.
   * With a fixed number of puts in flight the rate is that number over this mean (Little's law).
   */
  readonly meanLatencyMsPerSecond: readonly number[];
  /**
   * Per second from the steady window's start: the share of that second's put latency (the clients'
   * waiting time) spent on the one partition waited on most. About 1/partitions when every group
   * serves alike; far above it when one group stalled and the clients piled up on it (each client
   * that picks a key of the stalled group waits there), which lowers the rate of all the others.
   */
  readonly topPartitionSharePerSecond: readonly number[];
  /**
   * Per second from the steady window's start: the longest event-loop delay of the load generator
   * itself (ms). A stall of the benchmark's own process makes every put slow at once; this tells it
   * apart from a stall of the servers. Empty when not measured.
   */
  readonly loadgenDelayMaxMsPerSecond: readonly number[];
}

/**
 * Derives the trace figures. `faultAt` and `steadyStart` are `performance.now()` times; `seconds` the
 * number of whole seconds measured from the steady window's start; `faultSecond` the index of the
 * fault's second in that series.
 */
export function analyzeTrace(
  puts: PutLog,
  faultAt: number,
  steadyStart: number,
  seconds: number,
  faultSecond: number,
  clientSamples: readonly Readonly<Record<string, number>>[],
  moves: readonly SeenMove[],
  loadgenDelayMaxMsPerSecond: readonly number[] = [],
): ReconfigTrace {
  const after = Math.max(0, seconds - faultSecond);
  const slowPerSecond = new Array<number>(after).fill(0);
  const slowByPartitionPerSecond = Array.from({ length: after }, () => new Map<number, number>());
  const worst = new Map<number, { maxMs: number; atMs: number; slowPuts: number }>();
  const faultEdge = steadyStart + faultSecond * 1000;
  for (let i = 0; i < puts.end.length; i++) {
    const end = puts.end[i] as number;
    if (end < faultAt) continue;
    const start = puts.start[i] as number;
    const p = puts.partition[i] as number;
    const ms = end - start;
    const w = worst.get(p) ?? { maxMs: 0, atMs: 0, slowPuts: 0 };
    if (ms > w.maxMs) {
      w.maxMs = ms;
      w.atMs = start - faultAt;
    }
    if (ms >= STALL_MS) {
      w.slowPuts += 1;
      const s = Math.floor((end - faultEdge) / 1000);
      if (s >= 0 && s < after) {
        slowPerSecond[s] = (slowPerSecond[s] ?? 0) + 1;
        const m = slowByPartitionPerSecond[s] as Map<number, number>;
        m.set(p, (m.get(p) ?? 0) + 1);
      }
    }
    worst.set(p, w);
  }
  const { meanLatencyMsPerSecond, topPartitionSharePerSecond } = clientTime(puts, steadyStart, seconds);
  const stalls = [...worst.entries()]
    .filter(([, w]) => w.slowPuts > 0)
    .map(([partition, w]) => ({
      partition,
      maxMs: Math.round(w.maxMs),
      atMs: Math.round(w.atMs),
      slowPuts: w.slowPuts,
    }))
    .sort((a, b) => b.maxMs - a.maxMs);
  const slowPartitionPerSecond = slowByPartitionPerSecond.map((m) => {
    let best = -1;
    let n = 0;
    for (const [p, c] of m) {
      if (c > n) {
        best = p;
        n = c;
      }
    }
    return best;
  });
  const clientPerSecond: Record<string, number[]> = {};
  for (let i = 1; i < clientSamples.length; i++) {
    const cur = clientSamples[i] as Readonly<Record<string, number>>;
    const prev = clientSamples[i - 1] as Readonly<Record<string, number>>;
    for (const [k, v] of Object.entries(cur)) {
      const series = clientPerSecond[k] ?? [];
      clientPerSecond[k] = series;
      series.push(v - (prev[k] ?? 0));
    }
  }
  return {
    stalls,
    slowPerSecond,
    slowPartitionPerSecond,
    errorsByKind: Object.fromEntries(puts.errorsByKind),
    clientPerSecond,
    moves,
    meanLatencyMsPerSecond,
    topPartitionSharePerSecond,
    loadgenDelayMaxMsPerSecond,
  };
}

/** Per second from `steadyStart`: mean put latency, and the most-waited partition's share of it. */
function clientTime(
  puts: PutLog,
  steadyStart: number,
  seconds: number,
): { meanLatencyMsPerSecond: number[]; topPartitionSharePerSecond: number[] } {
  const total = new Array<number>(seconds).fill(0);
  const count = new Array<number>(seconds).fill(0);
  const byPartition = Array.from({ length: seconds }, () => new Map<number, number>());
  for (let i = 0; i < puts.end.length; i++) {
    const end = puts.end[i] as number;
    const s = Math.floor((end - steadyStart) / 1000);
    if (s < 0 || s >= seconds) continue;
    const ms = end - (puts.start[i] as number);
    const p = puts.partition[i] as number;
    total[s] = (total[s] as number) + ms;
    count[s] = (count[s] as number) + 1;
    const m = byPartition[s] as Map<number, number>;
    m.set(p, (m.get(p) ?? 0) + ms);
  }
  return {
    meanLatencyMsPerSecond: total.map((t, s) => ((count[s] as number) > 0 ? t / (count[s] as number) : 0)),
    topPartitionSharePerSecond: byPartition.map((m, s) => {
      const t = total[s] as number;
      return t > 0 ? Math.max(0, ...m.values()) / t : 0;
    }),
  };
}

/**
 * Keys of the per-second samples that are the servers' (summed over every server process), not the
 * client's: CPU milliseconds used (all threads, and the main threads alone), requests forwarded to
 * another server's leader, write-ahead-log syncs and the seconds they took.
 */
export const SERVER_SAMPLE_KEYS: readonly string[] = [
  'serverCpuMs',
  'serverMainCpuMs',
  'forwarded',
  'fsyncs',
  'fsyncSeconds',
];

/**
 * The servers' per-second line: CPU ms, CPU µs per completed put (`putsPerSecond`: the whole series
 * from the steady window's start), forwarded requests; steady seconds before the `|`.
 */
function formatServerSeconds(
  prefix: string,
  t: ReconfigTrace,
  faultSecond: number,
  putsPerSecond: readonly number[],
): string | undefined {
  const cpu = t.clientPerSecond.serverCpuMs;
  if (cpu === undefined) return undefined;
  const split = (xs: readonly (number | string)[]) =>
    `${xs.slice(0, faultSecond).join(' ')} | from the fault ${xs.slice(faultSecond).join(' ')}`;
  const perPut = cpu.map((ms, i) => {
    const n = putsPerSecond[i] ?? 0;
    return n > 0 ? String(Math.round((ms * 1000) / n)) : '-';
  });
  // A counter summed over the servers running falls when one stops: '?' for that second.
  const shown = (n: number) => (Number.isNaN(n) || n < 0 ? '?' : String(n));
  const forwarded = (t.clientPerSecond.forwarded ?? []).map(shown);
  const syncs = t.clientPerSecond.fsyncs ?? [];
  const syncSeconds = t.clientPerSecond.fsyncSeconds ?? [];
  const meanSyncMs = syncs.map((n, i) => {
    const secs = syncSeconds[i] ?? Number.NaN;
    return n > 0 && secs >= 0 ? ((secs * 1000) / n).toFixed(1) : '?';
  });
  // The helper threads' share (V8's compiler and GC workers, libuv's pool): what a JIT storm after the
  // first reconfiguration takes from the main threads on a machine with few cores.
  const main = t.clientPerSecond.serverMainCpuMs;
  const helpers =
    main === undefined
      ? ''
      : `; of it helper threads (V8 compiler and GC, libuv) ${split(cpu.map((ms, i) => Math.max(0, ms - (main[i] ?? ms))))}`;
  return `${prefix}: servers per second (all processes): CPU ms ${split(cpu)}${helpers}; CPU µs per put ${split(perPut)}; forwarded requests ${split(forwarded)}; WAL syncs ${split(syncs.map(shown))}; mean sync ms ${split(meanSyncMs)}`;
}

/** The text lines of a trace (prefixed like the other `--reconfig` lines). */
export function formatTrace(
  prefix: string,
  t: ReconfigTrace,
  faultSecond: number,
  putsPerSecond: readonly number[] = [],
): string[] {
  const stalls = t.stalls
    .slice(0, 8)
    .map((s) => `p${s.partition} ${s.maxMs} ms at ${(s.atMs / 1000).toFixed(1)} s (${s.slowPuts} slow)`)
    .join(', ');
  const errors = Object.entries(t.errorsByKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const client = Object.entries(t.clientPerSecond)
    .filter(([, s]) => s.some((n) => n !== 0))
    .filter(([k]) => k !== 'calls' && k !== 'attempts' && !SERVER_SAMPLE_KEYS.includes(k))
    .map(([k, s]) => `${k} ${s.slice(faultSecond).join(' ')}`)
    .join('; ');
  const moves = t.moves
    .map((m) =>
      m.doneWhenSeen
        ? `p${m.partition} ${m.from}->${m.to} done by ${(m.firstSeenMs / 1000).toFixed(1)}`
        : `p${m.partition} ${m.from}->${m.to} ${(m.firstSeenMs / 1000).toFixed(1)}-${(m.lastSeenMs / 1000).toFixed(1)}`,
    )
    .join(', ');
  const servers = formatServerSeconds(prefix, t, faultSecond, putsPerSecond);
  const split = (xs: readonly number[], f: (x: number) => string): string =>
    `steady ${xs.slice(0, faultSecond).map(f).join(' ')} | from the fault ${xs.slice(faultSecond).map(f).join(' ')}`;
  return [
    ...(servers === undefined ? [] : [servers]),
    `${prefix}: client waiting per second: mean put latency ms ${split(t.meanLatencyMsPerSecond, (x) => x.toFixed(1))}; share of it on the most-waited partition ${split(t.topPartitionSharePerSecond, (x) => `${Math.round(100 * x)}%`)}${t.loadgenDelayMaxMsPerSecond.length > 0 ? `; load generator's longest event-loop delay ms ${split(t.loadgenDelayMaxMsPerSecond, (x) => x.toFixed(0))}` : ''}`,
    `${prefix}: slowest put per stalled partition (>= ${STALL_MS} ms, from the fault): ${stalls || 'none'}`,
    `${prefix}: puts >= ${STALL_MS} ms per second from the fault: ${t.slowPerSecond.join(' ')} (mostly partition: ${t.slowPartitionPerSecond.map((p) => (p < 0 ? '-' : `p${p}`)).join(' ')})`,
    `${prefix}: errors by kind: ${errors || 'none'}; client per second from the fault: ${client || 'no retries, redirects or table fetches'}`,
    `${prefix}: moves seen in the metadata (s from the fault): ${moves || 'none'}`,
  ];
}
