/**
 * `bench:hostile --trace`: what happens around each mass close of the idle flood, in 100 ms slices.
 *
 * Sampled by the bench every 100 ms: the machine's CPU split from `/proc/stat` (user, system, softirq,
 * idle, in % of all cores), the CPU of every traced process from `/proc/<pid>/stat` (servers, the
 * attacker, the bench itself, in % of one core) and the bench's own event-loop delay (the probe and the
 * good client run in it). Written by each server (`hostile-trace-preload.mjs`, loaded with
 * `node --import`): its event-loop delay and CPU per 100 ms slice. Read from the servers' debug logs:
 * every `leader changed` and `link to node N down` line with its time. From the probe: every gap
 * without an acknowledged write longer than 150 ms, per partition.
 *
 * {@link HostileTrace.report} prints one table per marked moment (the flood's close) from 0.5 s before
 * to 2 s after it, then the events of that span.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** A process whose CPU the bench samples. */
export interface TracedProcess {
  readonly name: string;
  readonly pid: number | undefined;
}

interface Slice {
  readonly t: number;
  /** Machine CPU split in % of all cores. */
  readonly user: number;
  readonly system: number;
  readonly softirq: number;
  readonly idle: number;
  /** CPU of each traced process in % of one core, by name. */
  readonly cpu: Record<string, number>;
  /** The bench's own event-loop delay in the slice (ms). */
  readonly benchDelayMs: number;
}

interface ServerLine {
  readonly t: number;
  readonly pid: number;
  readonly delayMs: number;
  readonly userMs: number;
  readonly sysMs: number;
}

/** A gap without an acknowledged write, from the probe. */
export interface ProbeGap {
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

const CORES = availableParallelism();

function procStatTotals(): { user: number; system: number; softirq: number; idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return {
    user: user + nice,
    system: system + irq,
    softirq,
    idle: idle + iowait,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
  };
}

function processTicks(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15 of stat)
  } catch {
    return null;
  }
}

/** The sampler and report of `--trace`; see the file comment. */
export class HostileTrace {
  private readonly slices: Slice[] = [];
  private readonly marks: Array<{ name: string; t: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private readonly delay = monitorEventLoopDelay({ resolution: 2 });

  /**
   * Starts sampling every 100 ms. `processes` is read at every sample (the attacker comes and goes);
   * `serverTraceDir` is where the servers' preload writes, `serverLogs` their log files (debug level).
   */
  constructor(
    private readonly processes: () => readonly TracedProcess[],
    private readonly serverTraceDir: string,
    private readonly serverLogs: readonly string[],
  ) {
    this.delay.enable();
    let last = procStatTotals();
    let lastTicks = new Map<string, number>();
    this.timer = setInterval(() => {
      const now = procStatTotals();
      const total = Math.max(1, now.total - last.total);
      const pct = (k: 'user' | 'system' | 'softirq' | 'idle') => (100 * (now[k] - last[k])) / total;
      const ticks = new Map<string, number>();
      const cpu: Record<string, number> = {};
      const elapsedTicks = (now.total - last.total) / CORES; // the ticks of one core in the slice
      for (const p of this.processes()) {
        const n = processTicks(p.pid);
        if (n === null) continue;
        ticks.set(p.name, n);
        const before = lastTicks.get(p.name);
        if (before !== undefined) cpu[p.name] = (100 * (n - before)) / Math.max(1, elapsedTicks);
      }
      this.slices.push({
        t: Date.now(),
        user: pct('user'),
        system: pct('system'),
        softirq: pct('softirq'),
        idle: pct('idle'),
        cpu,
        benchDelayMs: this.delay.max / 1e6,
      });
      this.delay.reset();
      last = now;
      lastTicks = ticks;
    }, 100);
  }

  /** Marks a moment (e.g. `close 1`): {@link report} prints a table around each mark. */
  mark(name: string): void {
    this.marks.push({ name, t: Date.now() });
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.timer);
    this.delay.disable();
  }

  /** The tables and events around every mark; `gaps` are the probe's gaps (see {@link ProbeGap}). */
  report(gaps: readonly ProbeGap[], serverNames: ReadonlyMap<number, string>): string {
    const lines: ServerLine[] = [];
    for (const f of readdirSync(this.serverTraceDir).filter((n) => n.endsWith('.jsonl'))) {
      for (const l of readFileSync(join(this.serverTraceDir, f), 'utf8').split('\n')) {
        if (l) lines.push(JSON.parse(l) as ServerLine);
      }
    }
    const events: Array<{ t: number; text: string }> = [];
    this.serverLogs.forEach((file, i) => {
      for (const l of readFileSync(file, 'utf8').split('\n')) {
        if (!l.startsWith('{')) continue;
        try {
          const e = JSON.parse(l) as Record<string, unknown>;
          const t = typeof e.time === 'number' ? e.time : Date.parse(String(e.time));
          if (e.msg === 'leader changed')
            events.push({
              t,
              text: `server ${i + 1}: partition ${String(e.partition)} leader -> ${String(e.leader)}`,
            });
          else if (typeof e.msg === 'string' && e.msg.startsWith('link to node'))
            events.push({ t, text: `server ${i + 1}: ${e.msg} (${String(e.err)})` });
          else if (typeof e.msg === 'string' && e.msg.includes('cannot reach a majority'))
            events.push({ t, text: `server ${i + 1}: ${e.msg}` });
        } catch {
          // not a log line
        }
      }
    });
    for (const g of gaps)
      events.push({ t: g.from, text: `probe: partition ${g.partition} no ack for ${g.to - g.from} ms` });
    events.sort((a, b) => a.t - b.t);
    const out: string[] = [];
    const names = [...new Set(this.slices.flatMap((s) => Object.keys(s.cpu)))];
    for (const m of this.marks) {
      out.push(
        `trace around '${m.name}' (t=0; 100 ms slices; machine %: of all ${CORES} cores; process %: of one core; delay: largest event-loop delay in the slice, ms)`,
      );
      out.push(
        `  ${'t ms'.padStart(6)} ${'usr'.padStart(4)} ${'sys'.padStart(4)} ${'sirq'.padStart(4)} ${'idle'.padStart(4)} | ${names.map((n) => n.padStart(9)).join(' ')} | ${[...serverNames.values()].map((n) => `${n} cpu/delay`.padStart(20)).join(' ')} | bench delay`,
      );
      for (const s of this.slices.filter((x) => x.t >= m.t - 500 && x.t <= m.t + 2000)) {
        const servers = [...serverNames.entries()].map(([pid]) => {
          const ls = lines.filter((l) => l.pid === pid && l.t > s.t - 100 && l.t <= s.t);
          const cpu = ls.reduce((a, l) => a + l.userMs + l.sysMs, 0);
          const delay = Math.max(0, ...ls.map((l) => l.delayMs));
          return `${cpu.toFixed(0).padStart(9)}ms/${delay.toFixed(0).padStart(6)}ms`;
        });
        out.push(
          `  ${String(s.t - m.t).padStart(6)} ${s.user.toFixed(0).padStart(4)} ${s.system.toFixed(0).padStart(4)} ${s.softirq.toFixed(0).padStart(4)} ${s.idle.toFixed(0).padStart(4)} | ${names.map((n) => (s.cpu[n] === undefined ? '-' : `${s.cpu[n]!.toFixed(0)}%`).padStart(9)).join(' ')} | ${servers.map((x) => x.padStart(20)).join(' ')} | ${s.benchDelayMs.toFixed(0)}`,
        );
      }
      const span = events.filter((e) => e.t >= m.t - 500 && e.t <= m.t + 2000);
      out.push(`  events from -500 to +2000 ms: ${span.length === 0 ? 'none' : ''}`);
      for (const e of span) out.push(`    ${String(e.t - m.t).padStart(6)} ms ${e.text}`);
    }
    return out.join('\n');
  }
}
