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
export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfTicks = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
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
  return {
    durationMs: Math.round((profile.endTime - profile.startTime) / 1_000),
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
  const [target, topArg] = argv;
  if (target === undefined) {
    process.stderr.write('usage: tsx src/profile-summary.ts <file.cpuprofile | dir> [top-n]\n');
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
    process.stdout.write(
      `${renderProfileSummary(basename(file), summarizeProfile(profile), Number(topArg ?? 25))}\n\n`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) {
  main(process.argv.slice(2));
}
