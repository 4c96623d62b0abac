import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BankView } from '@paxkv/kvstore/testing';
import { check, readJsonl, renderHtml } from '@paxkv/linearizability-checker';
import { BANK_TAG, BankWorkload, finalBankRead } from './bank.js';
import { createBankClient, createWorkloadClient } from './client-adapter.js';
import { ClusterStartError, ManagedCluster } from './cluster.js';
import {
  countOutcomes,
  type HistoryEventView,
  MemoryHistory,
  mergeHistories,
  type OutcomeCounts,
  type PairedOperation,
  pairOperations,
  toJsonl,
} from './history.js';
import { LesseePool, type LesseesSummary } from './lessees.js';
import { LockerPool, type LockersSummary } from './lockers.js';
import { Nemesis, type PlacementReport } from './nemesis.js';
import { FaultProxy, type FaultProxyStats } from './proxy.js';
import { Rng } from './rng.js';
import type { ScenarioKind } from './scenarios.js';
import { buildSchedule, DEFAULT_FAULTS, type FaultKind, MEMBERSHIP_FAULTS } from './schedule.js';
import { resolveServerCommand, type ServerCommand, withUnsafeMutation } from './server-command.js';
import { type KeyDurability, unexplainedReads, verifyKey } from './verify.js';
import { WatcherPool, type WatchersSummary } from './watchers.js';
import { Workload, type WorkloadClientFactory, type WorkloadConfig } from './workload.js';

/** Options of one nemesis run; every field but `seed` and `durationMs` has a default. */
export interface RunOptions {
  /** Seed of every random choice (schedule, workload, proxy). */
  readonly seed: number;
  /** How long the workload and the faults run, before healing and the final reads. */
  readonly durationMs: number;
  /** Servers. Default 3. */
  readonly servers: number;
  /** Enabled faults. Default kill, pause, partition. */
  readonly faults: readonly FaultKind[];
  /** Concurrent clients. Default 4. */
  readonly clients: number;
  /** Keys in the workload. Default 6. */
  readonly keys: number;
  /** Partitions of the cluster. Default 16. */
  readonly partitions: number;
  /** Run directory (data dirs, logs, violation files). Default: a fresh temp dir. */
  readonly dir?: string;
  /** Keep the run directory after a passing run. Default false (a failing run always keeps it). */
  readonly keepDir: boolean;
  /** Extra environment for the servers (test-only switches). Default none. */
  readonly serverEnv: Readonly<Record<string, string>>;
  /** Extra server flags. Default none. */
  readonly serverFlags: readonly string[];
  /**
   * TLS on every server, each on its own loopback address with its own certificate (see `tls.ts`); the
   * proxy identifies peers by source address and relays the encrypted stream unread; every client dials
   * TLS. Default false.
   */
  readonly tls?: boolean;
  /** How to start a server. Default: the source through tsx. */
  readonly serverCommand?: ServerCommand;
  /**
   * TESTING ONLY: a kvstore `unsafeMutation` to switch on in every server (e.g. `staleLeaderReads`), for the
   * mutation sanity check: the run must then report a violation. Default none.
   */
  readonly unsafeMutation?: string;
  /** Per-operation deadline of the workload's clients; a timed-out operation is indeterminate. Default 2000 ms. */
  readonly operationTimeoutMs: number;
  /** Time allowed for the cluster to recover after healing and for the final reads. Default 60 000 ms. */
  readonly recoveryTimeoutMs: number;
  /** Time budget of the linearizability check; past it a key's verdict is `unknown`. Default 60 000 ms. */
  readonly checkTimeoutMs: number;
  /** Interval of the progress line. Default 5000 ms. */
  readonly progressEveryMs: number;
  /** Where progress lines go. Default: nowhere. */
  readonly log?: (line: string) => void;
  /** Partition scenarios the nemesis draws from. Default: every kind. */
  readonly scenarioKinds?: readonly ScenarioKind[];
  /** Chance that a fault aims at a leader. Default 0.6. */
  readonly leaderProbability?: number;
  /** Workload mix. Default {@link DEFAULT_WORKLOAD_CONFIG}. */
  readonly workload?: Partial<WorkloadConfig>;
  /**
   * What the clients do. `kv` (default): get/put/cas/delete on `keys` keys, checked per key with the
   * `kv` model. `bank`: `keys` accounts of one hash tag (`{bank}:a<i>`), transfers as transactions
   * guarded by the modRevisions read, reads of all accounts checked against the total, the history
   * checked with the `kv-txn` model, every acknowledged transfer checked against the final read.
   */
  readonly workloadKind?: 'kv' | 'bank';
  /** Builds the workload's clients. Default: `@paxkv/client` through {@link createWorkloadClient}. */
  readonly clientFactory?: (servers: readonly string[], timeoutMs: number) => WorkloadClientFactory;
  /**
   * `kv` workload only: watchers opened through the proxy before the workload (half on one key, half on
   * the `key-` prefix, every partition), kept through the faults, and checked against the history (see
   * `watchers.ts`). Default 0.
   */
  readonly watchers?: number;
  /**
   * `kv` workload only: lessees that grant a lease, attach a key, keep it alive, let it expire, again,
   * through the faults; every lease's history is checked (see `lessees.ts`). Default 0.
   */
  readonly lessees?: number;
  /**
   * `kv` workload only: clients taking one lock in turn and writing a resource through it (fenced by the
   * token), through the faults; the applied writes' tokens must never go backwards (see `lockers.ts`).
   * Default 0.
   */
  readonly lockers?: number;
  /**
   * With membership faults: the servers' `--replace-after` (seconds a server must be unreachable before
   * its replicas are replaced, and up before it receives replicas). Default 2.
   */
  readonly replaceAfterSeconds?: number;
  /**
   * With membership faults: how long the nemesis waits for one change (a fresh server to check in,
   * self-healing to move a lost server's replicas, a removed server to drain) before it stops waiting.
   * Default 120 000 ms.
   */
  readonly membershipTimeoutMs?: number;
  /**
   * With membership faults: how long the end of the run waits for the placement invariant to hold (after
   * the change in progress ended). Default twice `recoveryTimeoutMs`.
   */
  readonly settleTimeoutMs?: number;
  /** With membership faults: `replace`/`remove` may hit the metadata group's replicas too. Default false. */
  readonly metadataTargets?: boolean;
}

/** TTL of the lessees' leases (`lessees` option), ms. */
export const LESSEE_TTL_MS = 2_000;

/** Defaults of {@link RunOptions}. */
export const DEFAULT_RUN_OPTIONS = Object.freeze({
  servers: 3,
  faults: DEFAULT_FAULTS,
  clients: 4,
  keys: 6,
  partitions: 16,
  keepDir: false,
  serverEnv: {},
  serverFlags: [],
  operationTimeoutMs: 2000,
  recoveryTimeoutMs: 60_000,
  checkTimeoutMs: 60_000,
  progressEveryMs: 5000,
});

/** The result of one key. */
export interface KeySummary extends KeyDurability {
  /** The checker's verdict for the key. */
  readonly verdict: 'linearizable' | 'not-linearizable' | 'unknown';
  /** Operations on the key (final reads included). */
  readonly operations: number;
}

/** A violation and the files that show it. */
export interface Violation {
  readonly key: string;
  readonly reason: string;
  /** The key's history (JSON lines, checker format v1). */
  readonly historyFile: string;
  /** The checker's HTML report of that history. */
  readonly reportFile: string;
}

/** The outcome of a run. */
export interface RunSummary {
  readonly seed: number;
  readonly servers: number;
  readonly durationMs: number;
  readonly faultsEnabled: readonly FaultKind[];
  readonly clients: number;
  /** Operations by outcome, final reads excluded. */
  readonly operations: OutcomeCounts;
  /** Final reads (one success per key expected). */
  readonly finalReads: OutcomeCounts;
  /** Faults injected by kind. */
  readonly faults: Record<FaultKind, number>;
  /** Fault timeline lines. */
  readonly timeline: readonly string[];
  /** One entry per key. */
  readonly keys: readonly KeySummary[];
  /** The TESTING ONLY mutation the servers ran with, if any. */
  readonly unsafeMutation: string | undefined;
  /** Acknowledged writes, and how many the final reads confirm. */
  readonly acknowledgedWrites: number;
  readonly verifiedWrites: number;
  /** Linearizability violations and lost writes. */
  readonly violations: readonly Violation[];
  /** Problems of the harness (a restart that failed, a check that ran out of time...). */
  readonly problems: readonly string[];
  /** The checker's time. */
  readonly checkMs: number;
  /** Run directory (kept when the run failed or `keepDir` was set). */
  readonly dir: string;
  readonly dirKept: boolean;
  /** True when no violation was found and every key was checked. */
  readonly passed: boolean;
  /** The watchers' outcome, when the run had watchers. */
  readonly watch?: WatchersSummary;
  /** The lessees' outcome, when the run had lessees. */
  readonly leases?: LesseesSummary;
  /** The lockers' outcome, when the run had lockers. */
  readonly locks?: LockersSummary;
  /** The proxy's counters at the end (peer connections it identified, connections its rules closed...). */
  readonly proxy: FaultProxyStats;
  /** With membership faults: where the replicas ended (every partition on live servers, or what is not). */
  readonly placement?: PlacementReport;
}

/** The run could not start (no server binary, cluster did not form); nothing was tested. */
export class RunSetupError extends Error {
  override readonly name = 'RunSetupError';
  /** The cluster did not start because another process took a server's port (see `ClusterStartError`). */
  readonly portTaken: boolean;
  constructor(message: string, options: { portTaken?: boolean } = {}) {
    super(message);
    this.portTaken = options.portTaken === true;
  }
}

/** How many times a run whose cluster lost a port race at start is started again on fresh ports. */
const PORT_TAKEN_ATTEMPTS = 3;

/**
 * One nemesis run: starts a cluster behind the proxy, runs K clients and the seeded fault schedule for
 * `durationMs`, heals, reads every key, checks the union of the histories per key with the linearizability
 * checker and the lost-write check, writes the failing keys' histories and HTML reports, and stops
 * everything it started (also when it fails).
 * @throws RunSetupError when the cluster cannot be started.
 */
export async function runNemesis(
  options: Partial<RunOptions> & Pick<RunOptions, 'seed' | 'durationMs'>,
): Promise<RunSummary> {
  for (let attempt = 1; ; attempt++) {
    try {
      // A retry gets a directory of its own (the failed start's server logs stay where they were).
      const retryDir =
        attempt > 1 && options.dir !== undefined ? { dir: `${options.dir}-retry${attempt}` } : {};
      return await runNemesisOnce({ ...options, ...retryDir });
    } catch (e) {
      // The ports were free when picked, but a busy machine runs other clusters: the same seed again on
      // fresh ports (the seed's schedule does not depend on them).
      if (!(e instanceof RunSetupError && e.portTaken) || attempt >= PORT_TAKEN_ATTEMPTS) throw e;
      options.log?.(`nemesis: ${e.message}; starting again on fresh ports`);
    }
  }
}

async function runNemesisOnce(
  options: Partial<RunOptions> & Pick<RunOptions, 'seed' | 'durationMs'>,
): Promise<RunSummary> {
  const o: RunOptions = { ...DEFAULT_RUN_OPTIONS, ...options };
  const membership = o.faults.some((f) => MEMBERSHIP_FAULTS.includes(f));
  if (membership && o.servers < 4) {
    throw new RunSetupError(
      `membership faults need at least 4 servers (the first 3 hold the metadata group, which is never replaced): got ${o.servers}`,
    );
  }
  const log = o.log ?? (() => {});
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `paxkv-nemesis-${o.seed}-`));
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(o.seed);
  const proxy = new FaultProxy({
    seed: rng.nextUint32(),
    ...(o.tls === true ? { identifyBy: 'source-address' as const } : {}),
  });
  let command = o.serverCommand;
  let env = { ...o.serverEnv };
  if (o.unsafeMutation !== undefined) {
    const unsafe = withUnsafeMutation(command ?? resolveServerCommand(), o.unsafeMutation);
    command = unsafe.command;
    env = { ...env, ...unsafe.env };
  }
  const cluster = new ManagedCluster({
    servers: o.servers,
    dir,
    proxy,
    partitions: o.partitions,
    env,
    serverFlags: membership ? membershipFlags(o) : o.serverFlags,
    startTimeoutMs: o.recoveryTimeoutMs,
    tls: o.tls === true,
    ...(command !== undefined ? { command } : {}),
  });
  const bank = o.workloadKind === 'bank';
  const bankWorkload = bank ? new BankWorkload(o.keys, rng.fork()) : undefined;
  const keys = bankWorkload
    ? [...bankWorkload.accounts]
    : Array.from({ length: o.keys }, (_, i) => `key-${i}`);
  const problems: string[] = [];
  let passed = false;
  try {
    log(
      `nemesis: seed ${o.seed}, ${o.servers} servers, ${o.clients} clients, ${o.keys} ${bank ? 'accounts (bank workload)' : 'keys'}, faults ${o.faults.join(',') || 'none'}, ${Math.round(o.durationMs / 1000)}s, dir ${dir}`,
    );
    try {
      await cluster.start();
    } catch (e) {
      throw new RunSetupError(`cluster did not start: ${(e as Error).message}`, {
        portTaken: e instanceof ClusterStartError && e.portTaken,
      });
    }
    log(
      `cluster up: nodes ${cluster.nodes().join(',')} behind proxy ${cluster.clientAddresses().join(' ')}${cluster.clientTls ? ' (TLS)' : ''}`,
    );
    const tls = cluster.clientTls;
    const schedule = buildSchedule(rng.nextUint32(), {
      durationMs: o.durationMs,
      servers: o.servers,
      faults: o.faults,
      keys: o.keys,
      ...(o.leaderProbability !== undefined ? { leaderProbability: o.leaderProbability } : {}),
    });
    const factory =
      o.clientFactory !== undefined
        ? o.clientFactory(cluster.clientAddresses(), o.operationTimeoutMs)
        : createWorkloadClient(cluster.clientAddresses(), o.operationTimeoutMs, tls);
    const histories = Array.from({ length: o.clients + 1 }, () => new MemoryHistory());
    const bankFactory = bank
      ? createBankClient(cluster.clientAddresses(), o.operationTimeoutMs, tls)
      : undefined;
    const workload = bankWorkload ?? new Workload(keys, rng.fork(), o.workload);
    const nemesis = new Nemesis(cluster, proxy, schedule, {
      keys,
      partitions: o.partitions,
      log,
      restartTimeoutMs: o.recoveryTimeoutMs,
      ...(o.membershipTimeoutMs !== undefined ? { membershipTimeoutMs: o.membershipTimeoutMs } : {}),
      ...(o.metadataTargets === true ? { metadataTargets: true } : {}),
      ...(o.scenarioKinds !== undefined ? { scenarioKinds: o.scenarioKinds } : {}),
    });
    const watchers =
      !bank && (o.watchers ?? 0) > 0
        ? await WatcherPool.open(cluster.clientAddresses(), o.watchers ?? 0, keys, 'key-', o.partitions, tls)
        : undefined;
    if (watchers) log(`${o.watchers} watchers open`);
    const lessees =
      !bank && (o.lessees ?? 0) > 0
        ? new LesseePool(
            cluster.clientAddresses(),
            o.lessees ?? 0,
            LESSEE_TTL_MS,
            rng.fork(),
            o.operationTimeoutMs,
            tls,
          )
        : undefined;
    const lockers =
      !bank && (o.lockers ?? 0) > 0
        ? new LockerPool(cluster.clientAddresses(), o.lockers ?? 0, LESSEE_TTL_MS, o.operationTimeoutMs, tls)
        : undefined;
    const started = Date.now();
    if (bankWorkload && bankFactory) await bankWorkload.start(o.clients, bankFactory, histories);
    else await (workload as Workload).start(o.clients, factory, histories);
    const progress = setInterval(() => {
      const n = nemesis.report().counts;
      const t = ((Date.now() - started) / 1000).toFixed(0);
      log(
        `[${t}s/${(o.durationMs / 1000).toFixed(0)}s] ops ${workload.progress.resolved} ok, ${workload.progress.rejected} errors | faults ${formatCounts(n)}`,
      );
    }, o.progressEveryMs);
    if (membership) {
      try {
        await nemesis.metadataReady(Date.now() + o.recoveryTimeoutMs);
      } catch (e) {
        throw new RunSetupError(`the cluster metadata did not appear: ${(e as Error).message}`);
      }
    }
    const nemesisDone = nemesis.run();
    await new Promise((r) => setTimeout(r, o.durationMs));
    nemesis.stop();
    const report = await nemesisDone;
    clearInterval(progress);
    await workload.stop();
    problems.push(...report.errors);
    let placement: PlacementReport | undefined;
    if (membership) {
      log('healed; settling the membership (lost servers removed, replicas on live servers)');
      placement = await nemesis.settleMembership(
        Math.min(3, o.servers),
        o.partitions,
        o.settleTimeoutMs ?? 2 * o.recoveryTimeoutMs,
      );
      log(placement.line);
    }
    log(`healed; waiting for leaders, then reading every key`);
    try {
      await cluster.waitForLeaders(Date.now() + o.recoveryTimeoutMs);
    } catch (e) {
      problems.push(`after healing: ${(e as Error).message}`);
    }
    const finalIndex = o.clients;
    const finalHistory = histories[finalIndex] as MemoryHistory;
    if (bankWorkload && bankFactory) {
      const bankSummary = await finishBank(o, {
        dir,
        workload: bankWorkload,
        final: await finalBankRead(bankWorkload, bankFactory, finalIndex, finalHistory, o.recoveryTimeoutMs),
        histories,
        finalIndex,
        report,
        problems,
        setPassed: (p) => {
          passed = p;
        },
      });
      return { ...bankSummary, proxy: { ...proxy.stats } };
    }
    // The final reads go through the servers still in the cluster (some of the first ones may be gone).
    const finalFactory = membership
      ? o.clientFactory !== undefined
        ? o.clientFactory(
            cluster.live().map((s) => s.proxyAddress),
            o.operationTimeoutMs,
          )
        : createWorkloadClient(
            cluster.live().map((s) => s.proxyAddress),
            o.operationTimeoutMs,
            tls,
          )
      : factory;
    const finalValues = await finalReads(finalFactory, finalIndex, finalHistory, keys, o.recoveryTimeoutMs);
    const merged = mergeHistories(histories.map((h) => h.lines));
    if (merged.skipped > 0) problems.push(`${merged.skipped} history lines could not be read`);
    const ops = pairOperations(merged.events);
    const workloadOps = ops.filter((op) => merged.clientOfId.get(op.id) !== finalIndex);
    const finalOps = ops.filter((op) => merged.clientOfId.get(op.id) === finalIndex);
    const t0 = performance.now();
    const result = await check(readJsonl(toJsonl(merged.events)), {
      model: 'kv',
      timeoutMs: o.checkTimeoutMs,
    });
    const checkMs = performance.now() - t0;
    const keySummaries: KeySummary[] = [];
    const violations: Violation[] = [];
    for (const key of keys) {
      const keyOps = ops.filter((op) => op.op.key === key);
      const part = result.partitions.find((p) => p.key === key);
      const verdict = part?.verdict ?? 'linearizable';
      const durability = verifyKey(key, keyOps, finalValues.get(key));
      keySummaries.push({ ...durability, verdict, operations: keyOps.length });
      if (verdict === 'unknown')
        problems.push(`key ${key}: checker verdict unknown (${part?.reason ?? 'no reason'})`);
      const reasons: string[] = [];
      if (verdict === 'not-linearizable') {
        const why = unexplainedReads(keyOps);
        reasons.push(why.length > 0 ? `not linearizable: ${why.join('; ')}` : 'not linearizable');
      }
      if (durability.lost.length > 0) reasons.push(`${durability.lost.length} acknowledged write(s) lost`);
      if (durability.problem !== undefined && durability.lost.length === 0) reasons.push(durability.problem);
      if (reasons.length > 0)
        violations.push(await writeViolation(dir, key, merged.events, ops, reasons.join('; ')));
    }
    let watch: WatchersSummary | undefined;
    if (watchers) {
      const finals = new Map<string, { value: string | null; revision: number }>();
      for (const op of finalOps)
        if (op.status === 'ok' && op.result)
          finals.set(op.op.key, {
            value: op.result.value === null ? null : String(op.result.value),
            revision: Number(op.result.revision ?? 0),
          });
      watch = await watchers.finish(ops, finals, o.recoveryTimeoutMs);
      log(`watchers: ${watch.watchers} streams, ${watch.events} events, ${watch.failed} failed`);
      if (watch.failed > 0) problems.push(`${watch.failed} watcher(s) ended with an error`);
      if (!watch.check.ok) violations.push(checkViolation(dir, 'watch streams', watch.check.violations));
    }
    let leases: LesseesSummary | undefined;
    if (lessees) {
      leases = await lessees.finish(2_000);
      log(`lessees: ${leases.leases} leases, ${leases.keepAlives} keep-alives, ${leases.expired} expired`);
      if (!leases.check.ok) violations.push(checkViolation(dir, 'leases', leases.check.violations));
    }
    let locks: LockersSummary | undefined;
    if (lockers) {
      locks = await lockers.finish();
      log(`lockers: ${locks.acquired} locks, ${locks.writes} fenced writes, ${locks.refused} refused`);
      if (!locks.check.ok) violations.push(checkViolation(dir, 'locks', locks.check.violations));
    }
    if (placement !== undefined && placement.problems.length > 0) {
      const file = join(dir, 'violation-membership.txt');
      writeFileSync(file, `${placement.line}\n${report.timeline.join('\n')}\n`);
      violations.push({
        key: '(membership)',
        reason: `replicas not back on their replication degree of live servers: ${placement.problems.join('; ')}`,
        historyFile: file,
        reportFile: file,
      });
    }
    const acknowledgedWrites = keySummaries.reduce((s, k) => s + k.acknowledged, 0);
    const verifiedWrites = keySummaries.reduce((s, k) => s + k.verified, 0);
    passed = violations.length === 0 && !keySummaries.some((k) => k.verdict === 'unknown');
    return {
      seed: o.seed,
      servers: o.servers,
      durationMs: o.durationMs,
      faultsEnabled: o.faults,
      clients: o.clients,
      operations: countOutcomes(workloadOps),
      finalReads: countOutcomes(finalOps),
      faults: report.counts,
      timeline: report.timeline,
      keys: keySummaries,
      unsafeMutation: o.unsafeMutation,
      acknowledgedWrites,
      verifiedWrites,
      violations,
      problems,
      checkMs,
      dir,
      dirKept: !passed || o.keepDir,
      passed,
      ...(watch ? { watch } : {}),
      ...(leases ? { leases } : {}),
      ...(locks ? { locks } : {}),
      proxy: { ...proxy.stats },
      ...(placement ? { placement } : {}),
    };
  } finally {
    await cluster.stop().catch(() => {});
    await proxy.close().catch(() => {});
    if (passed && !o.keepDir) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The end of a bank run: checks the merged history with the `kv-txn` model (one partition: the tag),
 * the balance invariant of every read (final one included), and every acknowledged transfer against the
 * final read; writes the history and report of a violation.
 */
async function finishBank(
  o: RunOptions,
  run: {
    readonly dir: string;
    readonly workload: BankWorkload;
    readonly final: { view: BankView | undefined; problem?: string };
    readonly histories: readonly MemoryHistory[];
    readonly finalIndex: number;
    readonly report: { counts: Record<FaultKind, number>; timeline: readonly string[] };
    readonly problems: string[];
    readonly setPassed: (passed: boolean) => void;
  },
): Promise<Omit<RunSummary, 'proxy'>> {
  const { workload, problems } = run;
  const merged = mergeHistories(run.histories.map((h) => h.lines));
  if (merged.skipped > 0) problems.push(`${merged.skipped} history lines could not be read`);
  const ops = pairOperations(merged.events);
  const workloadOps = ops.filter((op) => merged.clientOfId.get(op.id) !== run.finalIndex);
  const finalOps = ops.filter((op) => merged.clientOfId.get(op.id) === run.finalIndex);
  const t0 = performance.now();
  const jsonl = toJsonl(merged.events);
  const result = await check(readJsonl(jsonl), { model: 'kv-txn', timeoutMs: o.checkTimeoutMs });
  const checkMs = performance.now() - t0;
  const tag = `{${BANK_TAG}}`;
  const verdict = result.partitions.find((p) => p.key === tag)?.verdict ?? result.verdict;
  const lost = run.final.view === undefined ? [] : workload.lost(run.final.view);
  const reasons: string[] = [];
  if (verdict === 'not-linearizable') reasons.push('not linearizable (kv-txn model)');
  if (verdict === 'unknown') problems.push(`tag ${tag}: checker verdict unknown`);
  if (workload.problems.length > 0) {
    reasons.push(`balance invariant broken: ${workload.problems.slice(0, 3).join('; ')}`);
  }
  if (lost.length > 0)
    reasons.push(`${lost.length} acknowledged write(s) lost: ${lost.slice(0, 3).join('; ')}`);
  if (run.final.view === undefined && workload.problems.length === 0) {
    reasons.push(run.final.problem ?? 'no final read');
  }
  const violations: Violation[] = [];
  if (reasons.length > 0) {
    const historyFile = join(run.dir, 'violation-bank.jsonl');
    const reportFile = join(run.dir, 'violation-bank.html');
    writeFileSync(historyFile, jsonl);
    writeFileSync(reportFile, renderHtml([{ name: `tag ${tag}`, result }]));
    violations.push({ key: tag, reason: reasons.join('; '), historyFile, reportFile });
  }
  // Every acknowledged transfer; the final read confirms each account's last one directly (earlier
  // ones are ordered before it by the revisions, which the kv-txn check covers).
  const acknowledgedWrites = workload.ackedTransfers;
  const final = run.final.view;
  const summary: KeySummary = {
    key: tag,
    finalValue:
      final === undefined ? undefined : final === 'absent' ? null : `balances ${final.balances.join(',')}`,
    acknowledged: acknowledgedWrites,
    verified: acknowledgedWrites - lost.length,
    lost,
    ...(reasons.length > 0 ? { problem: reasons.join('; ') } : {}),
    verdict,
    operations: ops.length,
  };
  const passed = violations.length === 0 && verdict !== 'unknown';
  run.setPassed(passed);
  return {
    seed: o.seed,
    servers: o.servers,
    durationMs: o.durationMs,
    faultsEnabled: o.faults,
    clients: o.clients,
    operations: countOutcomes(workloadOps),
    finalReads: countOutcomes(finalOps),
    faults: run.report.counts,
    timeline: run.report.timeline,
    keys: [summary],
    unsafeMutation: o.unsafeMutation,
    acknowledgedWrites,
    verifiedWrites: acknowledgedWrites - lost.length,
    violations,
    problems,
    checkMs,
    dir: run.dir,
    dirKept: !passed || o.keepDir,
    passed,
  };
}

/** A violation found by a coordination checker (watches, leases): its lines go to `violation-<what>.txt`. */
function checkViolation(dir: string, what: string, lines: readonly string[]): Violation {
  const file = join(dir, `violation-${what.replaceAll(' ', '-')}.txt`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { key: `(${what})`, reason: lines.slice(0, 3).join('; '), historyFile: file, reportFile: file };
}

/** Reads every key with a fresh client (recorded in the history), retrying until the deadline. */
async function finalReads(
  factory: WorkloadClientFactory,
  index: number,
  history: MemoryHistory,
  keys: readonly string[],
  timeoutMs: number,
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const client = await factory(index, history);
  const deadline = Date.now() + timeoutMs;
  try {
    for (const key of keys) {
      while (Date.now() < deadline) {
        try {
          out.set(key, await client.get(key));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  } finally {
    await client.close().catch(() => {});
  }
  return out;
}

async function writeViolation(
  dir: string,
  key: string,
  events: readonly HistoryEventView[],
  ops: readonly PairedOperation[],
  reason: string,
): Promise<Violation> {
  const ids = new Set(ops.filter((op) => op.op.key === key).map((op) => op.id));
  const keyEvents = events.filter((e) => ids.has(e.id));
  const safe = key.replace(/[^A-Za-z0-9_-]/g, '_');
  const historyFile = join(dir, `violation-${safe}.jsonl`);
  const reportFile = join(dir, `violation-${safe}.html`);
  const text = toJsonl(keyEvents);
  writeFileSync(historyFile, text);
  const keyResult = await check(readJsonl(text), { model: 'kv', workers: 0 });
  writeFileSync(reportFile, renderHtml([{ name: `key ${key}`, result: keyResult }]));
  return { key, reason, historyFile, reportFile };
}

/** `kill=2 pause=1 ...` for the kinds with a non-zero count (or `none`). */
export function formatCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`);
  return parts.length > 0 ? parts.join(' ') : 'none';
}

/**
 * The server flags of a run with membership faults: a short `--replace-after` (a lost server is
 * replaced within the run) and a few moves in flight at once (one at a time, replacing a server of 16
 * partitions takes minutes on a loaded machine), unless the caller's flags set them.
 */
function membershipFlags(o: RunOptions): string[] {
  const flags = [...o.serverFlags];
  if (!flags.includes('--replace-after')) flags.push('--replace-after', String(o.replaceAfterSeconds ?? 2));
  if (!flags.includes('--max-moves-in-flight')) flags.push('--max-moves-in-flight', '4');
  return flags;
}

/** The summary printed at the end of a run. */
export function formatSummary(s: RunSummary): string {
  const lines: string[] = [];
  lines.push(`== nemesis summary (seed ${s.seed}) ==`);
  lines.push(
    `servers ${s.servers}, clients ${s.clients}, duration ${(s.durationMs / 1000).toFixed(0)}s, faults enabled: ${s.faultsEnabled.join(',') || 'none'}`,
  );
  const ops = s.operations;
  lines.push(
    `operations: ${ops.ok + ops.fail + ops.info} (ok ${ops.ok}, failed ${ops.fail}, indeterminate ${ops.info}); final reads ok ${s.finalReads.ok}/${s.keys.length}`,
  );
  lines.push(`faults injected: ${formatCounts(s.faults)}`);
  lines.push(
    `proxy: ${s.proxy.peerConnections} peer connections identified, ${s.proxy.closedByRule} closed by a rule, ${s.proxy.framesHeld} held by a blackhole`,
  );
  lines.push(`acknowledged writes verified: ${s.verifiedWrites}/${s.acknowledgedWrites}`);
  lines.push(`checker time: ${s.checkMs.toFixed(0)} ms`);
  if (s.placement) lines.push(s.placement.line);
  if (s.locks)
    lines.push(
      `lockers: ${s.locks.lockers} (${s.locks.acquired} locks, ${s.locks.writes} fenced writes, ${s.locks.refused} refused), tokens ${s.locks.check.ok ? 'never went backwards' : 'VIOLATED'}`,
    );
  if (s.leases)
    lines.push(
      `lessees: ${s.leases.lessees} (${s.leases.leases} leases, ${s.leases.keepAlives} keep-alives, ${s.leases.expired} expired), lease histories ${s.leases.check.ok ? 'ok' : 'VIOLATED'}`,
    );
  if (s.watch)
    lines.push(
      `watchers: ${s.watch.watchers} (${s.watch.events} events, ${s.watch.failed} failed), streams ${s.watch.check.ok ? 'complete, in order, no duplicate' : 'VIOLATED'}`,
    );
  lines.push('verdict per key:');
  for (const k of s.keys) {
    const lost = k.lost.length > 0 ? `, LOST ${k.lost.length}` : '';
    const problem = k.problem !== undefined ? ` (${k.problem})` : '';
    lines.push(
      `  ${k.key.padEnd(10)} ${k.verdict.padEnd(17)} ops ${String(k.operations).padStart(5)}  final ${k.finalValue === undefined ? '(no read)' : JSON.stringify(k.finalValue)}  acked writes ${k.verified}/${k.acknowledged}${lost}${problem}`,
    );
  }
  for (const p of s.problems) lines.push(`problem: ${p}`);
  for (const v of s.violations) {
    lines.push(`VIOLATION on ${v.key}: ${v.reason}`);
    lines.push(`  history: ${v.historyFile}`);
    lines.push(`  report:  ${v.reportFile}`);
  }
  lines.push(
    s.passed
      ? `PASS (seed ${s.seed})`
      : `FAIL (seed ${s.seed}; replay with --seed ${s.seed}); run dir ${s.dir}`,
  );
  return lines.join('\n');
}
