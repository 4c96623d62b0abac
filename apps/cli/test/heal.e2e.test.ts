/**
 * The new user's self-healing demo, end to end with real processes: `paxkv cluster start --nodes 4
 * --detach` (run as its own process, as a user would), then one server is SIGKILLed and its data dir
 * deleted. After `--replace-after` (short here) every partition is again replicated on 3 live servers, as
 * `paxkv status --json` shows (configuration id, leader, each replica live, no reconfiguration in
 * progress; the metadata group, of which the lost server was a replica, too); writes kept succeeding
 * throughout and every key written before is readable with its value. Every process started here is
 * SIGKILLed at the end, even on failure.
 */
import { rmSync } from 'node:fs';
import { createClient, type PaxkvClient } from '@paxkv/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterFile, isServerProcess, readClusterFile } from '../src/cluster.js';
import { statusOf } from '../src/connect.js';
import type { StatusView } from '../src/status-view.js';
import { type CliCluster, startCliCluster } from './cli-cluster.js';

/** `--replace-after` of the test cluster, in seconds (the demo in the README uses the default, 30). */
const REPLACE_AFTER_S = 3;
/** Keys written before the kill. */
const KEYS = 100;

let cluster: CliCluster;
let file: ClusterFile;

/** `paxkv status --json` in this process (the same code path as the real program, without tsx start-up). */
async function statusJson(): Promise<StatusView> {
  const r = await cluster.quick(['--timeout', '5000', 'status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { ok: boolean; status: StatusView };
  expect(out.ok).toBe(true);
  return out.status;
}

/** Every partition and the metadata group on 3 live servers, none of them `lost`, no move in progress. */
function healed(view: StatusView, lost: number): boolean {
  const meta = view.metadataGroup;
  return (
    view.moving === 0 &&
    meta !== null &&
    meta.replicas.length === 3 &&
    !meta.replicas.includes(lost) &&
    meta.liveReplicas === 3 &&
    view.groups.length > 0 &&
    view.groups.every(
      (g) =>
        g.replicas.length === 3 &&
        !g.replicas.includes(lost) &&
        g.replicaStatus.every((r) => r.live) &&
        g.liveReplicas === 3 &&
        g.reconfiguration === null &&
        g.leader !== null &&
        g.replicas.includes(g.leader),
    )
  );
}

beforeAll(async () => {
  cluster = await startCliCluster('paxkv-cli-heal-', [
    '--nodes',
    '4',
    '--partitions',
    '8',
    '--replace-after',
    String(REPLACE_AFTER_S),
  ]);
  file = readClusterFile(cluster.clusterDir) as ClusterFile;
  expect(file.replaceAfter).toBe(REPLACE_AFTER_S);
}, 120_000);

afterAll(() => cluster?.destroy(), 60_000);

describe('self-healing demo (paxkv cluster start --nodes 4)', () => {
  it('re-replicates every partition on 3 live servers after a server is lost with its data, writes going on', async () => {
    const before = await statusJson();
    expect(before.replication).toBe(3);
    expect(before.groups.every((g) => g.liveReplicas === 3 && g.reconfiguration === null)).toBe(true);
    expect(before.servers.map((s) => s.id)).toEqual([1, 2, 3, 4]);

    const servers = file.nodes.map((n) => n.address);
    const client: PaxkvClient = createClient({ servers, requestTimeoutMs: 30_000 });
    try {
      for (let i = 0; i < KEYS; i++) await client.put(`before-${i}`, `v${i}`);

      // A writer that must never fail: every put is acknowledged within the client's deadline.
      const acked = new Map<string, string>();
      const failures: string[] = [];
      let stop = false;
      let writes = 0;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const key = `during-${i % 50}`;
          try {
            await client.put(key, `w${i}`);
            acked.set(key, `w${i}`);
            writes++;
          } catch (e) {
            failures.push(`${key}: ${(e as Error).message}`);
          }
        }
      })();

      // The victim: node 2, a replica of the metadata group and of most partitions (not the bootstrap).
      const LOST = 2;
      let victim: ClusterFile['nodes'][number] | undefined;
      for (const n of file.nodes) {
        const r = await statusOf(n.address, 5000);
        if ('status' in r && r.status.node === LOST) victim = n;
      }
      if (!victim) throw new Error('no server reports node id 2');
      const held = before.groups.filter((g) => g.replicas.includes(LOST)).length;
      expect(held).toBeGreaterThan(0);
      process.kill(victim.pid as number, 'SIGKILL');
      const killedAt = Date.now();
      while (isServerProcess(victim)) await new Promise((r) => setTimeout(r, 20));
      rmSync(victim.dataDir, { recursive: true, force: true });
      const writesAtKill = writes;

      // Within --replace-after + 30 s on a quiet machine; the guard here is generous (a loaded machine).
      let view = await statusJson();
      const guard = Date.now() + (REPLACE_AFTER_S + 150) * 1000;
      let sawLost = false;
      while (!healed(view, LOST)) {
        if (view.groups.some((g) => g.replicaStatus.some((r) => r.node === LOST && !r.live))) sawLost = true;
        if (Date.now() > guard) {
          throw new Error(`not healed ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(view)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
        view = await statusJson();
      }
      const healedMs = Date.now() - killedAt;
      expect(sawLost).toBe(true);
      // Every group that held the lost server moved once (a new configuration); the others did not.
      for (const g of view.groups) {
        const had = before.groups.find((b) => b.partition === g.partition);
        expect(g.config, `partition ${g.partition}`).toBe(had?.replicas.includes(LOST) ? 1 : 0);
      }
      expect(view.servers.find((s) => s.id === LOST)?.reachable).toBe(false);
      // The metadata group (node 2 was one of its replicas) moved too: a new configuration.
      expect(view.metadataGroup?.config).toBeGreaterThan(0);

      // The text view says the same.
      const text = await cluster.quick(['status']);
      expect(text.stdout).toContain('no replica moves in progress');
      expect(text.stdout).not.toContain('*');

      // Writes kept succeeding throughout, and after the healing.
      const writesAtHeal = writes;
      while (writes < writesAtHeal + 20) await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await writer;
      expect(failures).toEqual([]);
      expect(writesAtHeal).toBeGreaterThan(writesAtKill);

      // Every key written before (and every acknowledged write) reads back.
      for (let i = 0; i < KEYS; i++) expect(await client.get(`before-${i}`)).toBe(`v${i}`);
      for (const [key, value] of acked) expect(await client.get(key)).toBe(value);
      console.log(
        `healed: node ${LOST} (${held} of ${view.groups.length} partitions) replaced ${healedMs} ms after the kill (--replace-after ${REPLACE_AFTER_S} s); ${writes} writes, 0 failed`,
      );
    } finally {
      await client.close();
    }
  }, 300_000);
});
