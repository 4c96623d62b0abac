import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The parts of a V8 `.cpuprofile` (as written by `node --cpu-prof`) that the summary needs. */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number;
    readonly callFrame: {
      readonly functionName: string;
      readonly url: string;
      readonly lineNumber: number;
    };
    readonly children?: readonly number[];
  }>;
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/**
 * A time window of a profile, in the profile's own clock (µs of the monotonic clock, as `startTime`
 * and `process.hrtime.bigint() / 1000n` of any process on the machine: the reconfig bench logs its
 * fault time on it).
 */
export interface ProfileWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** Busy share of one time bucket of a profile and the function that took most of it. */
export interface TimelineBucket {
  /** Bucket start, in ms from `originUs`. */
  readonly atMs: number;
  readonly busyMs: number;
  readonly top: string;
  readonly topMs: number;
}

/**
 * The busy time of a profile per `bucketMs` from `originUs` on (buckets before the profile start are
 * skipped), each with its top self-time function: where a server paused (e.g. a move's state install).
 */
export function profileTimeline(profile: CpuProfile, originUs: number, bucketMs: number): TimelineBucket[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const buckets = new Map<number, Map<string, number>>();
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    const node = byId.get(samples[i] as number);
    if (node === undefined || IDLE.has(node.callFrame.functionName)) continue;
    const b = Math.floor((at - originUs) / 1_000 / bucketMs);
    const fns = buckets.get(b) ?? new Map<string, number>();
    buckets.set(b, fns);
    const name = `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + (deltas[i + 1] ?? 0) / 1_000);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([b, fns]) => {
      const [top, topMs] = [...fns.entries()].sort((x, y) => y[1] - x[1])[0] ?? ['-', 0];
      const busyMs = [...fns.values()].reduce((x, y) => x + y, 0);
      return { atMs: b * bucketMs, busyMs: Math.round(busyMs), top, topMs: Math.round(topMs) };
    });
}

/** Self and total time of one function (or file), in ms, and its share of the busy (non-idle) time. */
export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly totalMs: number;
  readonly selfPct: number;
  readonly totalPct: number;
}

/** What a profile says: where the busy time went, by function and by file. */
export interface ProfileSummary {
  readonly durationMs: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly functions: readonly ProfileEntry[];
  readonly files: readonly ProfileEntry[];
}

const IDLE = new Set(['(idle)', '(program)']);

function shortUrl(url: string): string {
  if (url.length === 0) return '(native)';
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = clean.slice(nm + '/node_modules/'.length).split('/');
    // .pnpm/<pkg@ver>/node_modules/<pkg>/... -> <pkg>/<file>
    return `${rest.slice(0, rest[0]?.startsWith('@') ? 2 : 1).join('/')}/${rest.at(-1) ?? ''}`;
  }
  const parts = clean.split('/');
  const i = parts.findIndex((p) => p === 'packages' || p === 'apps' || p === 'tooling');
  return i >= 0 ? parts.slice(i + 1).join('/') : clean.startsWith('node:') ? clean : basename(clean);
}

/**
 * Summarises a CPU profile: self time per function (where the CPU actually was) and total time
 * (self + callees, each function counted once per sample even when recursive), and the same per
 * source file, sorted by self time. `(idle)` and `(program)` count as idle; `(garbage collector)` is
 * reported separately and as an entry.
 */
export function summarizeProfile(profile: CpuProfile, window?: ProfileWindow): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfTicks = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    at += deltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at >= window.toUs)) continue;
    // Each delta is the time BEFORE its sample; attribute the next delta to this sample.
    const dt = (deltas[i + 1] ?? 0) / 1_000;
    selfTicks.set(id, (selfTicks.get(id) ?? 0) + dt);
  }
  const fnSelf = new Map<string, number>();
  const fnTotal = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  const fileTotal = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let busy = 0;
  for (const [id, ms] of selfTicks) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = node.callFrame.functionName;
    if (IDLE.has(name)) {
      idle += ms;
      continue;
    }
    busy += ms;
    if (name === '(garbage collector)') gc += ms;
    const key = (n: typeof node) =>
      `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fnSelf.set(key(node), (fnSelf.get(key(node)) ?? 0) + ms);
    const file = shortUrl(node.callFrame.url);
    fileSelf.set(file, (fileSelf.get(file) ?? 0) + ms);
    const seenFns = new Set<string>();
    const seenFiles = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n === undefined || n.callFrame.functionName === '(root)') break;
      const k = key(n);
      if (!seenFns.has(k)) {
        seenFns.add(k);
        fnTotal.set(k, (fnTotal.get(k) ?? 0) + ms);
      }
      const f = shortUrl(n.callFrame.url);
      if (!seenFiles.has(f)) {
        seenFiles.add(f);
        fileTotal.set(f, (fileTotal.get(f) ?? 0) + ms);
      }
    }
  }
  const entries = (self: Map<string, number>, total: Map<string, number>): ProfileEntry[] =>
    [...new Set([...self.keys(), ...total.keys()])]
      .map((name) => {
        const s = self.get(name) ?? 0;
        const t = total.get(name) ?? 0;
        return {
          name,
          selfMs: Math.round(s),
          totalMs: Math.round(t),
          selfPct: busy > 0 ? Math.round((s / busy) * 1_000) / 10 : 0,
          totalPct: busy > 0 ? Math.round((t / busy) * 1_000) / 10 : 0,
        };
      })
      .sort((a, b) => b.selfMs - a.selfMs || b.totalMs - a.totalMs);
  const from = Math.max(profile.startTime, window?.fromUs ?? profile.startTime);
  const to = Math.min(profile.endTime, window?.toUs ?? profile.endTime);
  return {
    durationMs: Math.max(0, Math.round((to - from) / 1_000)),
    busyMs: Math.round(busy),
    idleMs: Math.round(idle),
    gcMs: Math.round(gc),
    functions: entries(fnSelf, fnTotal),
    files: entries(fileSelf, fileTotal),
  };
}

/** Renders the top `n` functions and files of a summary as text. */
export function renderProfileSummary(title: string, s: ProfileSummary, n = 25): string {
  const lines = [
    `${title}: ${s.durationMs} ms profiled, busy ${s.busyMs} ms (${s.durationMs > 0 ? Math.round((s.busyMs / s.durationMs) * 100) : 0}%), GC ${s.gcMs} ms`,
    '  self%  total%  function',
    ...s.functions
      .slice(0, n)
      .map((e) => `  ${e.selfPct.toFixed(1).padStart(5)}  ${e.totalPct.toFixed(1).padStart(6)}  ${e.name}`),
    '  self%  total%  file',
    ...s.files
      .slice(0, Math.min(n, 15))
      .map((e) => `  ${e.selfPct.toFixed(1).padStart(5)}  ${e.totalPct.toFixed(1).padStart(6)}  ${e.name}`),
  ];
  return lines.join('\n');
}

function main(argv: readonly string[]): void {
  const flag = (name: string): number | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const positional = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
  const [target, topArg] = positional;
  const fromUs = flag('--from-us');
  const toUs = flag('--to-us');
  const timelineMs = flag('--timeline-ms');
  if (target === undefined) {
    process.stderr.write(
      'usage: tsx src/profile-summary.ts <file.cpuprofile | dir> [top-n] [--from-us T --to-us T] [--timeline-ms MS]\n',
    );
    process.exitCode = 2;
    return;
  }
  const files = statSync(target).isDirectory()
    ? readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(target, f))
    : [target];
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const window =
      fromUs === undefined && toUs === undefined
        ? undefined
        : { fromUs: fromUs ?? profile.startTime, toUs: toUs ?? profile.endTime };
    process.stdout.write(
      `${renderProfileSummary(basename(file), summarizeProfile(profile, window), Number(topArg ?? 25))}\n\n`,
    );
    if (timelineMs !== undefined) {
      const origin = fromUs ?? profile.startTime;
      for (const b of profileTimeline(profile, origin, timelineMs).filter((x) => x.atMs >= 0)) {
        if (toUs !== undefined && origin + b.atMs * 1_000 >= toUs) break;
        process.stdout.write(
          `  +${String(b.atMs).padStart(6)} ms busy ${String(b.busyMs).padStart(4)} ms  top ${b.topMs} ms ${b.top}\n`,
        );
      }
      process.stdout.write('\n');
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) {
  main(process.argv.slice(2));
}
