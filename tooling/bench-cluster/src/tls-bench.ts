/**
 * `pnpm bench:cluster --tls`: the cost of TLS, paxkv beside etcd, in one run. For each system a fresh
 * plain cluster runs the table's cells, then a fresh cluster with TLS on client AND peer traffic (a
 * throwaway CA each, see tls.ts) runs the same cells with the same keys; the report puts plain and
 * TLS side by side with their ratios.
 * @module
 */
import { ETCD_INSTALL_HINT, ensureEtcd } from './etcd.js';
import type { CellResult } from './load-generator.js';
import type { BenchOptions, SystemName, WorkloadName } from './options.js';
import { type MachineInfo, machineInfo } from './proc-stats.js';
import { formatCount, formatMs, markdownTable, type SystemRun } from './report.js';
import { type BenchIo, failedRun, runSystem, writeNotesAndJson } from './run.js';

/** TLS/plain figures of one cell of one system (both from this run). */
export interface TlsRatio {
  readonly system: SystemName;
  readonly workload: WorkloadName;
  readonly concurrency: number;
  /** ops/s with TLS divided by ops/s plain (below 1: TLS costs throughput). */
  readonly throughput: number;
  /** p50 with TLS divided by p50 plain (above 1: TLS costs latency). */
  readonly p50: number;
  /** p99 with TLS divided by p99 plain. */
  readonly p99: number;
}

/** The JSON report of `--tls --json FILE`. */
export interface TlsBenchReport {
  readonly format: 'paxkv-bench-cluster-tls/1';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly options: BenchOptions;
  /** Every run: per system the plain one (`label` unset) then the TLS one (`label` `<system>+tls`). */
  readonly runs: readonly SystemRun[];
  readonly ratios: readonly TlsRatio[];
  readonly notes: readonly string[];
}

/** The label of a system's TLS run in the tables and the JSON report. */
export function tlsLabel(system: SystemName): string {
  return `${system}+tls`;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function cellOf(run: SystemRun | undefined, w: WorkloadName, c: number): CellResult | undefined {
  return run?.cells.find((x) => x.workload === w && x.concurrency === c);
}

function runsOf(
  runs: readonly SystemRun[],
  system: SystemName,
): { plain: SystemRun | undefined; tls: SystemRun | undefined } {
  const ok = runs.filter((r) => r.system === system && r.error === undefined);
  return {
    plain: ok.find((r) => r.label === undefined),
    tls: ok.find((r) => r.label === tlsLabel(system)),
  };
}

/** TLS/plain ratios of every cell a system measured both ways. */
export function computeTlsRatios(runs: readonly SystemRun[]): TlsRatio[] {
  const out: TlsRatio[] = [];
  for (const system of ['paxkv', 'etcd'] as const) {
    const { plain, tls } = runsOf(runs, system);
    if (plain === undefined || tls === undefined) continue;
    for (const p of plain.cells) {
      const t = cellOf(tls, p.workload, p.concurrency);
      if (t === undefined || p.opsPerSec === 0) continue;
      out.push({
        system,
        workload: p.workload,
        concurrency: p.concurrency,
        throughput: round2(t.opsPerSec / p.opsPerSec),
        p50: p.latencyUs.p50 === 0 ? 0 : round2(t.latencyUs.p50 / p.latencyUs.p50),
        p99: p.latencyUs.p99 === 0 ? 0 : round2(t.latencyUs.p99 / p.latencyUs.p99),
      });
    }
  }
  return out;
}

/**
 * The TLS table: one row per (workload, concurrency); per system ops/s plain and with TLS, their ratio,
 * p50 and p99 plain/TLS, the servers' CPU plain/TLS; last, paxkv's TLS ops/s over etcd's.
 */
export function renderTlsTable(runs: readonly SystemRun[], ratios: readonly TlsRatio[]): string {
  const systems = (['paxkv', 'etcd'] as const).filter((s) => {
    const r = runsOf(runs, s);
    return r.plain !== undefined || r.tls !== undefined;
  });
  const header = ['workload', 'conc'];
  for (const s of systems) {
    header.push(
      `${s} ops/s`,
      `${tlsLabel(s)} ops/s`,
      'TLS/plain',
      'p50 ms plain/TLS',
      'p99 ms plain/TLS',
      'CPU srv %',
    );
  }
  const both = systems.length === 2;
  if (both) header.push('paxkv/etcd with TLS');
  const keys: Array<[WorkloadName, number]> = [];
  for (const r of runs) {
    for (const c of r.cells) {
      if (!keys.some(([w, n]) => w === c.workload && n === c.concurrency))
        keys.push([c.workload, c.concurrency]);
    }
  }
  const ops = (c: CellResult | undefined) =>
    c === undefined ? '-' : formatCount(c.opsPerSec) + (c.errors > 0 ? ` (${c.errors} err)` : '');
  const pair = (a: string | undefined, b: string | undefined) => `${a ?? '-'}/${b ?? '-'}`;
  const rows = keys.map(([w, n]) => {
    const row = [w, String(n)];
    for (const s of systems) {
      const { plain, tls } = runsOf(runs, s);
      const p = cellOf(plain, w, n);
      const t = cellOf(tls, w, n);
      const r = ratios.find((x) => x.system === s && x.workload === w && x.concurrency === n);
      row.push(
        ops(p),
        ops(t),
        r === undefined ? '-' : `${r.throughput.toFixed(2)}x`,
        pair(p && formatMs(p.latencyUs.p50), t && formatMs(t.latencyUs.p50)),
        pair(p && formatMs(p.latencyUs.p99), t && formatMs(t.latencyUs.p99)),
        pair(p?.cpu.serversPct.toFixed(0), t?.cpu.serversPct.toFixed(0)),
      );
    }
    if (both) {
      const pt = cellOf(runsOf(runs, 'paxkv').tls, w, n);
      const et = cellOf(runsOf(runs, 'etcd').tls, w, n);
      row.push(
        pt === undefined || et === undefined || et.opsPerSec === 0
          ? '-'
          : `${(pt.opsPerSec / et.opsPerSec).toFixed(2)}x`,
      );
    }
    return row;
  });
  return markdownTable(header, rows);
}

/**
 * The machine-readable last line of `--tls --json`: each system's TLS/plain throughput at `put@64`
 * (or the first cell measured), e.g. `put@64 tls/plain paxkv 0.91 etcd 0.88`.
 */
export function tlsSummaryLine(ratios: readonly TlsRatio[]): string {
  const first = ratios.find((r) => r.workload === 'put' && r.concurrency === 64) ?? ratios[0];
  if (first === undefined) return 'tls/plain: no cell measured both ways';
  const parts = ratios
    .filter((r) => r.workload === first.workload && r.concurrency === first.concurrency)
    .map((r) => `${r.system} ${r.throughput.toFixed(2)}`);
  return `${first.workload}@${first.concurrency} tls/plain ${parts.join(' ')}`;
}

/**
 * The whole `--tls` benchmark: for each selected system (never two clusters at once) the cells on a
 * plain cluster, then on a TLS cluster; no figures (failover, memory, ...). Writes the table, the
 * notes and, with `--json`, the JSON report and the summary line.
 */
export async function runTlsBench(options: BenchOptions, io: BenchIo): Promise<TlsBenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const notes: string[] = [];
  const runs: SystemRun[] = [];
  io.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), node ${machine.node}, load average ${machine.loadavg1m}; ` +
      'measuring the cost of TLS (--tls): each system plain, then with TLS',
  );
  const cellsOnly: BenchOptions = {
    ...options,
    failover: false,
    memory: false,
    restartAllRounds: 0,
    stabilityMs: 0,
    watchMs: 0,
  };
  if (options.baseline !== undefined) notes.push('--baseline is ignored with --tls');
  const etcd = options.systems.includes('etcd') ? await ensureEtcd(io.log) : undefined;
  for (const system of options.systems) {
    if (system === 'etcd' && etcd === undefined) {
      notes.push(ETCD_INSTALL_HINT);
      io.log(ETCD_INSTALL_HINT);
      continue;
    }
    for (const tls of [false, true]) {
      const name = tls ? tlsLabel(system) : system;
      const log = (line: string) => io.log(`${tls ? 'TLS' : 'plain'}: ${line}`);
      try {
        const run = await runSystem(system, cellsOnly, { out: io.out, log }, tls);
        runs.push(tls ? { ...run, label: name } : run);
      } catch (e) {
        runs.push(failedRun(system, tls ? name : undefined, e, io, notes));
      }
    }
  }
  notes.push(
    'TLS: a throwaway CA per cluster, one ECDSA P-256 server certificate shared by the members and used ' +
      'for client and peer traffic on both systems (etcd: --cert-file/--key-file/--trusted-ca-file and ' +
      '--peer-cert-file/--peer-key-file/--peer-trusted-ca-file/--peer-client-cert-auth; paxkv: ' +
      '--tls-cert/--tls-key/--tls-ca); clients trust the CA and present its client certificate (etcd requires one).',
  );
  notes.push(
    `Servers and load generator share the machine's ${machine.cores} cores; plain and TLS of a system ` +
      'run one after the other on fresh clusters: compare ratios of the same run.',
  );
  const ratios = computeTlsRatios(runs);
  const report: TlsBenchReport = {
    format: 'paxkv-bench-cluster-tls/1',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    options,
    runs,
    ratios,
    notes,
  };
  io.out(renderTlsTable(runs, ratios));
  writeNotesAndJson(io, notes, options.jsonFile, report, tlsSummaryLine(ratios));
  return report;
}
