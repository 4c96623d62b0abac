/**
 * Hostile peers against a real 3-server cluster started with a cluster token (issue 14, "peers prove who
 * they are"): a process without the token never reaches a group or the bootstrap protocol (forged hello
 * + maximum-ballot Prepare, forged checkin, forged table.push), a forged or wrong-token handshake fails
 * with a clear message on both sides, a server with another token cannot join, and meanwhile clients
 * (which need no token) keep being served. An availability probe writes to every partition throughout and
 * checks that no replica promised the forged ballot; the last test is its mutation check: one server
 * started with `PAXKV_UNSAFE_PEER_AUTH_OFF=1` lets the forged Prepare in, and the check must fail.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterKey, dialPeerAuth, PeerAuthError } from '@paxkv/common';
import { MAX_ROUND } from '@paxkv/paxos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvailabilityProbe, type WindowReport } from './availability-probe.js';
import { RawClient, request, TestCluster, type TestServer } from './harness.js';
import {
  eventually,
  forgedPrepare,
  forgedTablePush,
  forgeHelloAndPrepares,
  Impostor,
  metric,
  restartWithSwitch,
} from './hostile-helpers.js';

const TOKEN = 'hostile-suite-token-0123456789abcdef';
let cluster: TestCluster;
let tokenFile: string;
let good: RawClient;
let counter = 0;
const PARTITIONS = 4;
let probe: AvailabilityProbe;
const windows: WindowReport[] = [];

const server = (i: number) => cluster.servers[i - 1] as TestServer;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-token-'));
  tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  cluster = await TestCluster.create({ nodes: 3, partitions: PARTITIONS, security: 'none' });
  for (const s of cluster.servers) cluster.start(s, ['--cluster-token-file', tokenFile]);
  await cluster.waitReady(60_000);
  good = await RawClient.connect(server(1).address);
  probe = await AvailabilityProbe.start({
    servers: () => cluster.servers,
    via: () => server(1),
    partitions: PARTITIONS,
  });
}, 180_000);

afterAll(async () => {
  await probe?.stop();
  console.log(
    `availability (loaded shared machine):\n${windows.map((w) => `  ${AvailabilityProbe.format(w)}`).join('\n')}`,
  );
  good?.close();
  await cluster?.destroy();
});

/**
 * The good client writes and reads back a fresh value. A TIMEOUT (the machine is shared and may be
 * loaded) is retried: the write is idempotent, and what the test checks is that the cluster serves.
 */
async function goodClientWorks(): Promise<void> {
  const value = `v${++counter}`;
  const call = async (message: Record<string, unknown>) => {
    for (let attempt = 0; ; attempt++) {
      const reply = await good.call(message);
      const code = (reply as { code?: string } | null)?.code;
      if (attempt < 5 && (code === 'TIMEOUT' || code === 'NO_LEADER' || code === 'UNAVAILABLE')) continue;
      return reply;
    }
  };
  expect(await call({ type: 'kv', op: { op: 'put', key: 'good', value } })).toMatchObject({ type: 'kv.ok' });
  expect(await call({ type: 'kv', op: { op: 'get', key: 'good' } })).toMatchObject({
    type: 'kv.ok',
    result: { value },
  });
}

const isUnauthenticated = (m: unknown) => (m as { code?: unknown })?.code === 'UNAUTHENTICATED';

describe('a cluster with a token, against processes without it', () => {
  it('forms and serves clients, which need no token', async () => {
    await goodClientWorks();
  });

  it('refuses a forged hello and drops the maximum-ballot Prepare that follows it', async () => {
    const { report } = await probe.window('forged hello + MAX_ROUND Prepare', async () => {
      for (const target of cluster.servers) {
        // The hello is refused (UNAUTHENTICATED) and the Prepares that follow are counted and dropped.
        await forgeHelloAndPrepares(
          target,
          target.index === 2 ? 3 : 2,
          MAX_ROUND,
          4,
          'paxkv_unauthenticated_messages_total',
          {
            type: 'paxos',
          },
        );
      }
    });
    windows.push(report);
    const impostor = await Impostor.connect(server(2).address);
    impostor.send({ type: 'peer.hello', from: 3 });
    expect(await impostor.waitFor(isUnauthenticated)).toMatchObject({
      type: 'error',
      code: 'UNAUTHENTICATED',
    });
    impostor.close();
    // No group was disturbed: every partition still has its leader and serves.
    expect((await cluster.leaders()).size).toBe(4);
    await goodClientWorks();
  });

  it('refuses a forged checkin and a forged table.push, and adopts nothing', async () => {
    const checkin = await request(server(1).address, { type: 'checkin', nodeId: 2, address: '127.0.0.1:9' });
    expect(checkin).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    const health = async (s: TestServer) =>
      (await (await fetch(`http://127.0.0.1:${s.httpPort}/health`)).json()) as { tableVersion: number };
    const versionBefore = (await health(server(2))).tableVersion;
    const forged = forgedTablePush();
    expect(await request(server(2).address, forged)).toMatchObject({
      type: 'error',
      code: 'UNAUTHENTICATED',
    });
    expect((await health(server(2))).tableVersion).toBe(versionBefore);
    const identity = readFileSync(join(server(2).dataDir, 'server.json'), 'utf8');
    expect(identity).not.toContain('127.0.0.1:9"');
    await goodClientWorks();
  });

  it('fails a wrong-token handshake with a clear message on both sides, and counts it', async () => {
    const target = server(3);
    const before = await metric(target.httpPort, 'paxkv_auth_failures_total');
    // A dialer with another token: it finds out first (the server's proof does not verify) and says so.
    const impostor = await Impostor.connect(target.address);
    const wrong = ClusterKey.fromToken('not-the-cluster-token-at-all');
    const failure = await dialPeerAuth(impostor, { key: wrong, from: 2 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PeerAuthError);
    expect((failure as PeerAuthError).message).toMatch(/cluster token/);
    await impostor.waitClosed();
    // A dialer that fakes a proof: the server refuses it with UNAUTHENTICATED and closes.
    const faker = await Impostor.connect(target.address);
    faker.send({ type: 'auth.hello', v: 1, from: 2, nonce: new Uint8Array(32) });
    await faker.waitFor((m) => (m as { type?: unknown }).type === 'auth.challenge');
    faker.send({ type: 'auth.proof', proof: new Uint8Array(32).fill(1) });
    const refusal = await faker.waitFor(isUnauthenticated);
    expect((refusal as { message: string }).message).toMatch(/does not verify/);
    await faker.waitClosed();
    await eventually(async () => (await metric(target.httpPort, 'paxkv_auth_failures_total')) >= before + 2);
    expect(readFileSync(target.logFile, 'utf8')).toMatch(
      /peer handshake with .* failed \((refused|bad-proof)\)/,
    );
  });

  it('keeps a server with another token out of the cluster, and its log says why', async () => {
    const stranger = await cluster.addServer();
    cluster.start(stranger, ['--cluster-token', 'a-different-token-for-this-one']);
    await eventually(() =>
      /peer handshake with .* failed \(bad-proof\)/.test(readFileSync(stranger.logFile, 'utf8')),
    );
    const h = (await (await fetch(`http://127.0.0.1:${stranger.httpPort}/health`)).json()) as {
      node: unknown;
    };
    expect(h.node).toBeNull();
    await cluster.kill(stranger);
    await goodClientWorks();
  }, 60_000);

  // Last: it breaks the cluster on purpose.
  it('mutation check: with peer authentication off on one server the forged Prepare gets in, and the availability check fails', async () => {
    expect(probe.errors).toEqual([]);
    const target = server(3);
    await restartWithSwitch(cluster, target, 'PAXKV_UNSAFE_PEER_AUTH_OFF', undefined, [
      '--cluster-token-file',
      tokenFile,
    ]);
    await cluster.waitReady(60_000);
    let claimed = 0;
    const outcome = await probe
      .window('forged hello + MAX_ROUND Prepare, peer authentication off on server 3', async () => {
        const refusedBefore = await metric(target.httpPort, 'paxkv_unauthenticated_messages_total', {
          type: 'paxos',
        });
        // Each Prepare names the configuration its group runs (as a real one would).
        // It claims to be another node (node ids are given at start, not by index).
        const status = (await request(target.address, { type: 'status', id: 1 })) as {
          status: { node: number; groups: Array<{ partition: number; configId?: number }> };
        };
        claimed = status.status.node === 1 ? 2 : 1;
        const impostor = await Impostor.connect(target.address);
        impostor.send({ type: 'peer.hello', from: claimed });
        for (const g of status.status.groups)
          impostor.send(forgedPrepare(g.partition, claimed, MAX_ROUND, g.configId ?? 0));
        // Processed: refused and counted (the unmutated server), or promised (visible in its status).
        await eventually(async () => {
          if (
            (await metric(target.httpPort, 'paxkv_unauthenticated_messages_total', { type: 'paxos' })) >=
            refusedBefore + PARTITIONS
          )
            return true;
          const reply = (await request(target.address, { type: 'status', id: 1 })) as {
            status?: { groups: Array<{ ballot?: { n: number } }> };
          };
          return (reply.status?.groups ?? []).some((g) => g.ballot?.n === MAX_ROUND);
        }, 30_000);
        impostor.close();
      })
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(outcome?.message).toMatch(
      new RegExp(
        `promised ballot \\(${MAX_ROUND}, ${claimed}\\) in partition \\d+, a round no election reaches`,
      ),
    );
  }, 180_000);
});
