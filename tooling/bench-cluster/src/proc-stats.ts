import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be read. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Parses the fields of a `/proc/<pid>/stat` line after the command name (which may contain spaces
 * and parentheses, so the split is at the LAST `)`). Returns user+system CPU in clock ticks and the
 * resident set in pages, or `undefined` when the line is not of that form.
 */
export function parseProcStat(
  line: string,
): { readonly cpuTicks: number; readonly rssPages: number } | undefined {
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = line
    .slice(close + 2)
    .trim()
    .split(' ');
  // After "pid (comm) ": field 3 (state) is fields[0]; utime is field 14, stime 15, rss 24.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rss = Number(fields[21]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(rss)) return undefined;
  return { cpuTicks: utime + stime, rssPages: rss };
}

/** CPU seconds (user + system, all threads) a process has used so far; `undefined` once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat === undefined ? undefined : stat.cpuTicks / clockTicksPerSecond();
}

/**
 * CPU seconds (user + system) the main thread of a process has used so far (`/proc/<pid>/task/<pid>/stat`):
 * for a Node server, its JavaScript thread. The rest of {@link processCpuSeconds} is its helper threads
 * (V8's compiler and garbage-collector workers, libuv's file-system pool). `undefined` once it is gone.
 */
export function mainThreadCpuSeconds(pid: number): number | undefined {
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
    return stat === undefined ? undefined : stat.cpuTicks / clockTicksPerSecond();
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in bytes, from `/proc/<pid>/status` (VmRSS); `undefined` once gone. */
export function processRssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

function readStat(pid: number) {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Busy and total CPU time of the whole machine (all cores) from `/proc/stat`, in clock ticks. */
export function machineCpuTicks(): { readonly busy: number; readonly total: number } | undefined {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const parts = first.trim().split(/\s+/).slice(1).map(Number);
    if (parts.length < 4 || parts.some((n) => !Number.isFinite(n))) return undefined;
    const total = parts.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (parts[3] ?? 0) + (parts[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** A snapshot of CPU counters taken at the start of a measured window. */
export interface CpuSnapshot {
  readonly atMs: number;
  readonly servers: ReadonlyMap<number, number>;
  readonly loadgen: NodeJS.CpuUsage;
  readonly machine: { readonly busy: number; readonly total: number } | undefined;
}

/**
 * CPU used during a window, each as a percentage of ONE core (so two fully busy cores = 200%):
 * the servers (sum over their processes), this load generator, and everything else on the machine.
 */
export interface CpuShare {
  readonly serversPct: number;
  readonly loadgenPct: number;
  /** Busy time of the machine not accounted to servers or load generator (other users of the cores). */
  readonly otherPct: number;
  /** Number of cores the machine has. */
  readonly cores: number;
}

/** Takes a {@link CpuSnapshot} of the given server processes and of this process. */
export function cpuSnapshot(serverPids: readonly number[]): CpuSnapshot {
  const servers = new Map<number, number>();
  for (const pid of serverPids) {
    const s = processCpuSeconds(pid);
    if (s !== undefined) servers.set(pid, s);
  }
  return { atMs: performance.now(), servers, loadgen: process.cpuUsage(), machine: machineCpuTicks() };
}

/** The {@link CpuShare} between a start snapshot and now. */
export function cpuShareSince(start: CpuSnapshot): CpuShare {
  const elapsedS = Math.max((performance.now() - start.atMs) / 1_000, 1e-9);
  let serverS = 0;
  for (const [pid, before] of start.servers) {
    const now = processCpuSeconds(pid);
    if (now !== undefined) serverS += now - before;
  }
  const lg = process.cpuUsage(start.loadgen);
  const loadgenS = (lg.user + lg.system) / 1e6;
  const cores = cpus().length;
  let otherPct = 0;
  const machineNow = machineCpuTicks();
  if (start.machine !== undefined && machineNow !== undefined) {
    const total = machineNow.total - start.machine.total;
    const busy = machineNow.busy - start.machine.busy;
    if (total > 0) {
      const busyPct = (busy / total) * cores * 100;
      otherPct = Math.max(0, busyPct - ((serverS + loadgenS) / elapsedS) * 100);
    }
  }
  return {
    serversPct: round1((serverS / elapsedS) * 100),
    loadgenPct: round1((loadgenS / elapsedS) * 100),
    otherPct: round1(otherPct),
    cores,
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The machine's conditions, for the report. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly loadavg1m: number;
  readonly node: string;
  readonly platform: string;
}

/** Describes this machine. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    loadavg1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}
