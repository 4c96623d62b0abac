/**
 * `paxkv cluster add` end to end (real processes, the CLI run as its own process): a local 3-server
 * cluster gets a 4th server, which is a member with the id the cluster gave it, receives replicas by
 * rebalancing once it has been up for `--replace-after` (short here), and is known to `cluster status`,
 * `cluster stop` and a restart with `cluster start`. Every process started here is SIGKILLed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterFile, isServerProcess, readClusterFile } from '../src/cluster.js';
import { statusOf } from '../src/connect.js';
import type { StatusView } from '../src/status-view.js';
import { type CliCluster, startCliCluster } from './cli-cluster.js';
import type { CliRun } from './cli-process.js';
import { runCliCaptured } from './run-cli.js';

let cluster: CliCluster;
const clusterDir = () => cluster.clusterDir;
const cli = (args: string[]): Promise<CliRun> => cluster.cli(args);
/** `paxkv <args>` in this process, with a 5 s request deadline. */
const quick = (args: string[]): Promise<CliRun> => cluster.quick(['--timeout', '5000', ...args]);

async function statusJson(): Promise<StatusView> {
  const r = await quick(['--json', 'status']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { status: StatusView }).status;
}

beforeAll(async () => {
  cluster = await startCliCluster('paxkv-cli-add-', [
    '--nodes',
    '3',
    '--partitions',
    '6',
    '--replace-after',
    '2',
  ]);
}, 120_000);

afterAll(() => cluster?.destroy(), 60_000);

describe('paxkv cluster add', () => {
  it('starts a 4th server, adds it as a member, and the cluster puts replicas on it', async () => {
    const added = await cli(['cluster', 'add']);
    expect(added.code, added.stderr).toBe(0);
    const m = /^added node (\d+): server 4 at (127\.0\.0\.1:\d+) \(pid (\d+)/.exec(added.stdout);
    expect(m, added.stdout).not.toBeNull();
    const [, id, address, pid] = m as RegExpExecArray;
    expect(Number(id)).toBe(4);
    const file = readClusterFile(clusterDir()) as ClusterFile;
    expect(file.nodes.map((n) => n.index)).toEqual([1, 2, 3, 4]);
    const node = file.nodes[3] as ClusterFile['nodes'][number];
    expect([node.address, String(node.pid)]).toEqual([address, pid]);
    expect(isServerProcess(node)).toBe(true);
    // Same settings as the others: the cluster token, the cluster's --replace-after.
    const first = await statusOf(address as string, 5000);
    expect('status' in first && first.status.node).toBe(4);

    const members = await quick(['--json', 'member', 'list']);
    expect(members.code, members.stderr).toBe(0);
    const listed = JSON.parse(members.stdout) as { members: Array<{ id: number; address: string }> };
    expect(listed.members.find((x) => x.id === 4)?.address).toBe(address);

    // Rebalancing: once node 4 has been up for --replace-after, replicas move onto it.
    const guard = Date.now() + 150_000;
    let view = await statusJson();
    while (
      !(
        view.moving === 0 &&
        view.groups.some((g) => g.replicas.includes(4)) &&
        view.groups.every((g) => g.liveReplicas === 3 && g.reconfiguration === null)
      )
    ) {
      if (Date.now() > guard) throw new Error(`node 4 got no replica: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 500));
      view = await statusJson();
    }
    const onFour = view.groups.filter((g) => g.replicas.includes(4)).length;
    expect(onFour).toBeGreaterThan(0);

    // cluster status lists it by node id; cluster stop stops it too; cluster start brings it back.
    const status = await quick(['-w', 'simple', 'cluster', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`4, ${address}, running, ${pid}`);
    const stopped = await cli(['cluster', 'stop']);
    expect(stopped.stdout).toContain('stopped 4 servers');
    expect(isServerProcess(node)).toBe(false);
    const again = await cli(['cluster', 'start', '--detach']);
    expect(again.code, again.stderr).toBe(0);
    const back = await statusOf(address as string, 5000);
    expect('status' in back && back.status.node).toBe(4);
    console.log(
      `cluster add: node 4 at ${address}; ${onFour} of ${view.groups.length} partitions moved onto it`,
    );
  }, 400_000);

  it('refuses to add a server to a stopped cluster, saying what to do', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'paxkv-cli-add-none-'));
    try {
      const r = await runCliCaptured(['cluster', 'add', '--dir', empty], { PAXKV_SERVERS: '' }, empty);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/no cluster in .*: start one with `paxkv cluster start/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
