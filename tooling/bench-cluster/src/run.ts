import { writeFileSync } from 'node:fs';
import { runBaseline } from './baseline.js';
import { alivePids, ClusterUnavailableError, type LocalCluster } from './cluster.js';
import { ETCD_INSTALL_HINT, ensureEtcd, startEtcdCluster } from './etcd.js';
import { measureFailovers } from './failover.js';
import { type CellResult, loadKeys, runCell } from './load-generator.js';
import { measureMemory } from './memory.js';
import type { BenchOptions, SystemName } from './options.js';
import { startPaxkvCluster } from './paxkv.js';
import { machineInfo } from './proc-stats.js';
import {
  type BenchReport,
  checkGoals,
  computeRatios,
  formatCount,
  formatMs,
  renderFigures,
  renderGoals,
  renderMainTable,
  runLabel,
  type SystemRun,
  summaryLine,
} from './report.js';
import { measureRestartAll } from './restart-all.js';
import { measureStability } from './stability.js';
import { measureWatch } from './watch-bench.js';
import { keyOf, preloadValue, RANGE_KEYS, rangeKeyOf, WorkloadState } from './workload.js';

/** Where the benchmark writes: the report to `out`, progress to `log`. */
export interface BenchIo {
  readonly out: (line: string) => void;
  readonly log: (line: string) => void;
}

/** Starts a fresh cluster of `system` configured from the options (TLS on client and peer traffic with `tls`). */
export function startCluster(system: SystemName, options: BenchOptions, tls = false): Promise<LocalCluster> {
  if (system === 'etcd') {
    return startEtcdCluster({
      startTimeoutMs: options.startTimeoutMs,
      endpoints: options.etcdEndpoints,
      keepData: options.keepData,
      tls,
    });
  }
  return startPaxkvCluster({
    fsync: options.paxkvFsync,
    startTimeoutMs: options.startTimeoutMs,
    cpuProfDir: options.cpuProfDir,
    nodeArgs: options.serverNodeArgs,
    keepData: options.keepData,
    tickMs: options.paxkvTickMs,
    warmUp: options.paxkvWarmUp,
    tls,
    clusterToken: options.clusterToken,
  });
}

function describeCell(system: string, c: CellResult): string {
  const errs = c.errors > 0 ? ` errors=${c.errors} (${c.firstError ?? ''})` : '';
  const cas = c.workload === 'cas' ? ` applied=${c.casApplied} mismatch=${c.casMismatch}` : '';
  return (
    `${system} ${c.workload}@${c.concurrency}: ${formatCount(c.opsPerSec)} ops/s p50 ${formatMs(c.latencyUs.p50)} ms ` +
    `p99 ${formatMs(c.latencyUs.p99)} ms max ${formatMs(c.latencyUs.max)} ms ` +
    `cpu servers ${c.cpu.serversPct}% loadgen ${c.cpu.loadgenPct}% other ${c.cpu.otherPct}%${cas}${errs}`
  );
}

/**
 * Everything measured for one system: on one cluster the preload, the table's cells and then the
 * failover figure (which leaves a server dead); on a second, fresh cluster the memory figure. With
 * `tls`, both clusters run with TLS on (`--tls`, see tls-bench.ts).
 */
export async function runSystem(
  system: SystemName,
  options: BenchOptions,
  io: BenchIo,
  tls = false,
): Promise<SystemRun> {
  const targetOpts = { requestTimeoutMs: options.requestTimeoutMs };
  const t0 = performance.now();
  let cluster = await startCluster(system, options, tls);
  io.log(
    `${system} ${cluster.version}: 3-member cluster up in ${Math.round(performance.now() - t0)} ms (${cluster.dir})`,
  );
  const cells: CellResult[] = [];
  let failover: SystemRun['failover'];
  let memory: SystemRun['memory'];
  let restartAll: SystemRun['restartAll'];
  let stability: SystemRun['stability'];
  let watch: SystemRun['watch'];
  const settings = cluster.settings;
  const version = cluster.version;
  try {
    const params = {
      keySpace: options.keySpace,
      preloadKeys: options.preloadKeys,
      valueBytes: options.valueBytes,
    };
    const target = await cluster.createTarget(targetOpts);
    try {
      const tp = performance.now();
      await loadKeys(target, options.preloadKeys, () => preloadValue(options.valueBytes), {
        concurrency: options.loadConcurrency,
        keyOf,
      });
      if (options.workloads.includes('range')) {
        await loadKeys(target, RANGE_KEYS, () => preloadValue(options.valueBytes), {
          concurrency: options.loadConcurrency,
          keyOf: rangeKeyOf,
        });
      }
      io.log(`${system}: preloaded ${options.preloadKeys} keys in ${Math.round(performance.now() - tp)} ms`);
      const state = new WorkloadState(params);
      for (const workload of options.workloads) {
        for (const concurrency of options.concurrency) {
          const cell = await runCell(target, {
            workload,
            concurrency,
            warmupMs: options.warmupMs,
            durationMs: options.durationMs,
            drainTimeoutMs: options.drainTimeoutMs,
            params,
            serverPids: alivePids(cluster),
            state,
          });
          cells.push(cell);
          io.log(describeCell(system, cell));
        }
      }
    } finally {
      await target.close();
    }
    if (options.watchMs > 0) {
      try {
        watch = await measureWatch(cluster, {
          watchers: options.watchers,
          writers: 16,
          windowMs: options.watchMs,
          valueBytes: options.valueBytes,
          keys: 1_000,
          target: targetOpts,
        });
        io.log(
          `${system} watch: ${watch.watchers} watchers, ${formatCount(watch.putsPerSec)} puts/s -> ` +
            `${formatCount(watch.eventsPerSec)} events/s, put-to-event p50 ${formatMs(watch.latencyUs.p50)} ms ` +
            `p99 ${formatMs(watch.latencyUs.p99)} ms, missing ${watch.missing}`,
        );
      } catch (e) {
        io.log(`${system} watch figure failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (options.stabilityMs > 0) {
      stability = await measureStability(cluster, {
        hogs: options.cpuHogs,
        windowMs: options.stabilityMs,
        concurrency: 16,
        keySpace: options.keySpace,
        valueBytes: options.valueBytes,
        target: targetOpts,
      });
      io.log(
        `${system} stability: ${stability.leaderChanges} leader changes in ${stability.windowMs} ms with ` +
          `${stability.hogs} CPU hogs (${formatCount(stability.opsPerSec)} puts/s, ${stability.errors} errors)`,
      );
    }
    if (options.restartAllRounds > 0) {
      restartAll = await measureRestartAll(cluster, {
        rounds: options.restartAllRounds,
        watchMs: options.failoverWatchMs,
        valueBytes: options.valueBytes,
        target: targetOpts,
        readyTimeoutMs: options.startTimeoutMs,
      });
      io.log(
        `${system} restart-all: first write ${restartAll.rounds.map((r) => r.firstWriteMs ?? 'never').join('/')} ms ` +
          `after the last server was up; every group ${restartAll.rounds.map((r) => r.allGroupsMs ?? 'never').join('/')} ms`,
      );
      // Wall-clock times, to line each round up with the servers' logs (the restart timeline).
      for (const [i, r] of restartAll.rounds.entries()) {
        io.log(
          `${system} restart-all round ${i + 1}: killed ${new Date(r.at.kill).toISOString()}, last up ${new Date(r.at.lastUp).toISOString()}, first write ${r.at.firstWrite === null ? 'never' : new Date(r.at.firstWrite).toISOString()}`,
        );
      }
    }
    if (options.failover) {
      await cluster.waitReady(options.startTimeoutMs);
      failover = await measureFailovers(cluster, {
        concurrency: options.failoverConcurrency,
        warmupMs: options.warmupMs,
        baselineMs: options.failoverBaselineMs,
        watchMs: options.failoverWatchMs,
        bucketMs: options.failoverBucketMs,
        keySpace: options.keySpace,
        valueBytes: options.valueBytes,
        target: targetOpts,
        kills: options.failoverKills,
        readyTimeoutMs: options.startTimeoutMs,
        onKill: (i, k) =>
          io.log(
            `${system} failover kill ${i + 1}/${options.failoverKills}: killed ${k.killed}; new leader after ` +
              `${k.leaderElectedMs ?? 'never'} ms, first write after ${k.firstWriteMs ?? 'never'} ms`,
          ),
      });
      io.log(
        `${system} failover: first write median ${failover.firstWriteMedianMs ?? 'never'} ms, max ` +
          `${failover.firstWriteMaxMs ?? 'never'} ms over ${failover.kills.length} kills; first kill: ` +
          `90% throughput after ${failover.recovered90Ms ?? 'never'} ms (baseline ${formatCount(failover.baselineOpsPerSec)} ops/s)`,
      );
    }
    await cluster.stop();
    if (options.memory) {
      cluster = await startCluster(system, options, tls);
      memory = await measureMemory(cluster, {
        keys: options.memoryKeys,
        valueBytes: options.memoryValueBytes,
        concurrency: options.loadConcurrency,
        target: targetOpts,
        onProgress: (done, total) => {
          if (done % 100_000 === 0) io.log(`${system} memory: ${done}/${total} keys`);
        },
      });
      const mib = memory.rssAfterBytes.map((b) => (b / 1024 / 1024).toFixed(0)).join('/');
      io.log(`${system} memory: RSS after ${formatCount(memory.keys)} keys: ${mib} MiB`);
    }
  } finally {
    await cluster.stop();
  }
  return {
    system,
    version,
    settings,
    cells,
    ...(failover === undefined ? {} : { failover }),
    ...(memory === undefined ? {} : { memory }),
    ...(restartAll === undefined ? {} : { restartAll }),
    ...(stability === undefined ? {} : { stability }),
    ...(watch === undefined ? {} : { watch }),
  };
}

/**
 * The whole benchmark: each selected system in turn (never two at once), then the table, the figures,
 * the goals, the notes and (with `--json`) the JSON report and the machine-readable last line.
 * @returns the report.
 */
export async function runBench(options: BenchOptions, io: BenchIo): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const notes: string[] = [];
  const runs: SystemRun[] = [];
  io.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, ` +
      `node ${machine.node}, load average ${machine.loadavg1m}`,
  );
  if (options.baseline !== undefined) {
    try {
      const before = await runBaseline(options.baseline, options, io.log);
      runs.push(before);
      if (before.skippedWorkloads !== undefined) {
        notes.push(
          `${runLabel(before)} ran no ${before.skippedWorkloads.join('/')} cells ("not run"): its own bench:cluster ` +
            'does not know those workloads; every other cell is its own measurement in this run.',
        );
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      io.log(message);
      notes.push(`baseline ${options.baseline} could not be measured: ${message.split('\n')[0]}`);
    }
  }
  const etcd = options.systems.includes('etcd') ? await ensureEtcd(io.log) : undefined;
  for (const system of options.systems) {
    if (system === 'etcd' && etcd === undefined) {
      notes.push(ETCD_INSTALL_HINT);
      io.log(ETCD_INSTALL_HINT);
      continue;
    }
    try {
      runs.push(await runSystem(system, options, io));
    } catch (e) {
      runs.push(failedRun(system, undefined, e, io, notes));
    }
  }
  notes.push(
    `Servers and load generator share the machine's ${machine.cores} cores: "CPU srv/lg %" is the CPU time of ` +
      `the three servers together / of the load generator, as a percentage of one core (${machine.cores * 100}% = all cores busy).`,
  );
  const ratios = computeRatios(runs);
  const goals = checkGoals(runs, ratios);
  const report: BenchReport = {
    format: 'paxkv-bench-cluster/1',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    options,
    runs,
    ratios,
    goals,
    notes,
  };
  io.out(renderMainTable(runs, ratios));
  const figures = renderFigures(runs);
  if (figures.length > 0) io.out(`\n${figures}`);
  const goalText = renderGoals(goals);
  if (goalText.length > 0) io.out(`\n${goalText}`);
  writeNotesAndJson(io, notes, options.jsonFile, report, summaryLine(runs, ratios));
  return report;
}

/**
 * The run of `system` (named `label` in the tables) that could not be measured because of `e`: logged,
 * noted, and kept in the report with its error.
 */
export function failedRun(
  system: SystemName,
  label: string | undefined,
  e: unknown,
  io: BenchIo,
  notes: string[],
): SystemRun {
  const name = label ?? system;
  const message = e instanceof Error ? e.message : String(e);
  io.log(e instanceof ClusterUnavailableError ? message : `${name} failed: ${message}`);
  notes.push(`${name} could not be measured: ${message.split('\n')[0]}`);
  return {
    system,
    ...(label === undefined ? {} : { label }),
    version: '?',
    settings: {},
    cells: [],
    error: message,
  };
}

/**
 * The end of a report: a blank line, the notes, and with `--json FILE` the JSON report written there and
 * the machine-readable `summary` as the last stdout line.
 */
export function writeNotesAndJson(
  io: BenchIo,
  notes: readonly string[],
  jsonFile: string | undefined,
  report: object,
  summary: string,
): void {
  io.out('');
  for (const n of notes) io.out(`note: ${n}`);
  if (jsonFile !== undefined) {
    writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    io.out(`JSON report written to ${jsonFile}`);
    io.out(summary);
  }
}
