import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from './cluster.js';
import { findEtcd, startEtcdCluster } from './etcd.js';
import type { CellResult } from './load-generator.js';
import type { WorkloadName } from './options.js';
import { DEFAULT_BENCH_OPTIONS, parseBenchArgs, UsageError } from './options.js';
import { startPaxkvCluster } from './paxkv.js';
import type { SystemRun } from './report.js';
import { probeStatus } from './status-probe.js';
import type { Target } from './target.js';
import { type BenchCertificates, paxkvClientTls } from './tls.js';
import { computeTlsRatios, renderTlsTable, tlsLabel, tlsSummaryLine } from './tls-bench.js';

function cell(workload: WorkloadName, concurrency: number, opsPerSec: number, p50Us: number): CellResult {
  return {
    workload,
    concurrency,
    ops: opsPerSec,
    errors: 0,
    windowMs: 1_000,
    opsPerSec,
    latencyUs: {
      count: opsPerSec,
      p50: p50Us,
      p90: p50Us,
      p99: 2 * p50Us,
      p999: 2 * p50Us,
      max: 3 * p50Us,
      mean: p50Us,
    },
    casApplied: 0,
    casMismatch: 0,
    cpu: { serversPct: 100, loadgenPct: 50, otherPct: 0, cores: 2 },
    firstError: undefined,
  };
}

function run(system: 'paxkv' | 'etcd', tls: boolean, cells: CellResult[]): SystemRun {
  return { system, ...(tls ? { label: tlsLabel(system) } : {}), version: 'x', settings: {}, cells };
}

/** A local cluster's certificate files (the throwaway CA lives in `<dir>/tls/`, see tls.ts). */
function certsOf(cluster: LocalCluster): BenchCertificates {
  const dir = join(cluster.dir, 'tls');
  return {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
  };
}

/** The port a member listens for clients on, read from its command line. */
function clientPort(cluster: LocalCluster, flag: '--port' | '--listen-client-urls'): number {
  const args = cluster.servers[0]?.child.spawnargs ?? [];
  const value = args[args.indexOf(flag) + 1] ?? '';
  return Number(value.slice(value.lastIndexOf(':') + 1));
}

/** The protocol and cipher a benchmark client negotiates with a `--tls` cluster's member. */
function negotiated(port: number, certs: BenchCertificates): Promise<string> {
  return new Promise((resolve, reject) => {
    const { ca, cert, key } = paxkvClientTls(certs);
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, cert, key });
    socket.once('secureConnect', () => {
      resolve(`${socket.getProtocol()} ${socket.getCipher().standardName}`);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('--tls options', () => {
  it('measures put and get by default, any workloads when asked', () => {
    const tls = parseBenchArgs(['--tls']);
    expect(tls.help === false && tls.options.tls).toBe(true);
    expect(tls.help === false && tls.options.workloads).toEqual(['put', 'get']);
    const some = parseBenchArgs(['--tls', '--workloads', 'cas,range']);
    expect(some.help === false && some.options.workloads).toEqual(['cas', 'range']);
    const plain = parseBenchArgs([]);
    expect(plain.help === false && plain.options.tls).toBe(false);
    expect(plain.help === false && plain.options.workloads).toEqual(DEFAULT_BENCH_OPTIONS.workloads);
    expect(() => parseBenchArgs(['--tls', '--reconfig'])).toThrow(UsageError);
  });
});

describe('TLS report', () => {
  const runs = [
    run('paxkv', false, [cell('put', 64, 10_000, 2_000), cell('get', 64, 20_000, 1_000)]),
    run('paxkv', true, [cell('put', 64, 8_000, 2_500), cell('get', 64, 15_000, 1_200)]),
    run('etcd', false, [cell('put', 64, 2_000, 8_000)]),
    run('etcd', true, [cell('put', 64, 1_000, 16_000)]),
  ];

  it('divides each system by its own plain run', () => {
    const ratios = computeTlsRatios(runs);
    expect(ratios).toEqual([
      { system: 'paxkv', workload: 'put', concurrency: 64, throughput: 0.8, p50: 1.25, p99: 1.25 },
      { system: 'paxkv', workload: 'get', concurrency: 64, throughput: 0.75, p50: 1.2, p99: 1.2 },
      { system: 'etcd', workload: 'put', concurrency: 64, throughput: 0.5, p50: 2, p99: 2 },
    ]);
    expect(tlsSummaryLine(ratios)).toBe('put@64 tls/plain paxkv 0.80 etcd 0.50');
  });

  it('renders plain beside TLS for both systems and paxkv over etcd with TLS', () => {
    const table = renderTlsTable(runs, computeTlsRatios(runs));
    const lines = table.split('\n');
    expect(lines[0]).toContain('paxkv+tls ops/s');
    expect(lines[0]).toContain('etcd+tls ops/s');
    const put = lines.find((l) => l.startsWith('| put'));
    expect(put).toMatch(/10,000 \|\s+8,000 \|\s+0\.80x/);
    expect(put).toMatch(/2,000 \|\s+1,000 \|\s+0\.50x/);
    expect(put).toMatch(/8\.00x \|$/); // 8,000 / 1,000
    expect(lines.find((l) => l.startsWith('| get'))).toMatch(/- \|$/); // etcd did not run get
  });

  it('leaves out a system whose TLS run failed', () => {
    const failed = [...runs.slice(0, 3), { ...run('etcd', true, []), error: 'boom' }];
    expect(computeTlsRatios(failed).map((r) => r.system)).toEqual(['paxkv', 'paxkv']);
    expect(tlsSummaryLine([])).toMatch(/no cell/);
  });
});

/**
 * A real cluster with TLS on client and peer traffic serves the benchmark client (put, get, /metrics
 * over HTTPS) with TLS 1.3, and `refusesClear` shows it answers nothing in clear.
 */
function tlsClusterSuite(
  start: () => Promise<LocalCluster>,
  portFlag: '--port' | '--listen-client-urls',
  refusesClear: (port: number) => Promise<void>,
): void {
  let cluster: LocalCluster;
  let target: Target;

  beforeAll(async () => {
    cluster = await start();
    target = await cluster.createTarget({ requestTimeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await target?.close();
    await cluster?.stop();
  });

  it('serves the benchmark client over TLS and nothing in clear', async () => {
    expect(cluster.settings.tls).toMatch(/client and peer/);
    await target.put('tls-key', 'v1');
    expect(await target.get('tls-key')).toBe('v1');
    expect(await cluster.leaderChanges()).toBeGreaterThanOrEqual(0); // /metrics over HTTPS
    const port = clientPort(cluster, portFlag);
    await refusesClear(port);
    expect(await negotiated(port, certsOf(cluster))).toMatch(/^TLSv1\.3 /);
  });
}

// paxkv from source; etcd where installed.
describe.skipIf(process.env.PAXKV_BENCH_SKIP_CLUSTER === '1')('paxkv cluster with --tls', () =>
  tlsClusterSuite(
    () => startPaxkvCluster({ fromSource: true, tls: true, startTimeoutMs: 45_000 }),
    '--port',
    async (port) => {
      await expect(probeStatus(`127.0.0.1:${port}`, 5_000)).rejects.toThrow(/status of/);
    },
  ),
);

describe.runIf(findEtcd() !== undefined)('etcd cluster with --tls', () =>
  tlsClusterSuite(
    () => startEtcdCluster({ tls: true, startTimeoutMs: 45_000 }),
    '--listen-client-urls',
    async (port) => {
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow(/fetch failed/);
    },
  ),
);
