/**
 * A real 3-server cluster with TLS on every port (`--tls-cert/--tls-key/--tls-ca`, certificates from a
 * fresh CA made with `src/certs.ts`), against processes that hold the wrong certificates (issue 14, "peers
 * prove who they are" and "a wrong CA fails with a clear message on both sides"): plain TCP, another CA,
 * no client certificate, a user's certificate, a server certificate of the cluster CA that names another
 * host. None of them reaches a group or the bootstrap protocol (forged hello + maximum-ballot Prepare,
 * forged checkin, forged table.push); a client with the CA is served throughout; a server whose identity
 * check is switched off (test-only mutation) lets the user certificate through, so the check is what
 * stops it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { MAX_ROUND } from '@paxkv/paxos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  type PemPair,
} from '../src/certs.js';
import { AvailabilityProbe } from './availability-probe.js';
import { request, TestCluster, type TestServer, until } from './harness.js';
import {
  eventually,
  forgedTablePush,
  forgeHelloAndPrepares,
  Impostor,
  metric,
  restartWithSwitch,
} from './hostile-helpers.js';

let cluster: TestCluster;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let clientTls: TlsOptions;
/** A user's certificate of the cluster CA (client authentication only). */
let userCert: PemPair;
/** A server certificate of the cluster CA that names another host than the servers'. */
let elsewhere: PemPair;
/** A server certificate for 127.0.0.1 signed by another CA. */
let foreign: PemPair;

let probe: AvailabilityProbe;
const server = (i: number) => cluster.servers[i - 1] as TestServer;
const isUnauthenticated = (m: unknown) => (m as { code?: unknown })?.code === 'UNAUTHENTICATED';
const logOf = (s: TestServer) => readFileSync(s.logFile, 'utf8');

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'test cluster CA' });
  otherCa = await createCertificateAuthority({ commonName: 'some other CA' });
  const serverCert = await issueCertificate(ca, { commonName: 'server', hosts: ['127.0.0.1', 'localhost'] });
  userCert = await issueCertificate(ca, { commonName: 'alice', usage: 'client' });
  elsewhere = await issueCertificate(ca, { commonName: 'elsewhere', hosts: ['10.9.9.9'] });
  foreign = await issueCertificate(otherCa, { commonName: 'foreign', hosts: ['127.0.0.1'] });
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-tls-'));
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.cert, serverCert.cert);
  writeFileSync(files.key, serverCert.key, { mode: 0o600 });
  clientTls = { ca: ca.cert };
  cluster = await TestCluster.create({
    nodes: 3,
    partitions: 4,
    clientTls,
    security: 'none', // its own TLS flags
    extraFlags: ['--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
  probe = await AvailabilityProbe.start({
    servers: () => cluster.servers,
    via: () => server(1),
    partitions: 4,
    tls: clientTls,
  });
}, 180_000);

afterAll(async () => {
  await probe?.stop();
  delete process.env.PAXKV_UNSAFE_TLS_ANY_CERTIFICATE;
  await cluster?.destroy();
});

async function goodClientWorks(value: string): Promise<void> {
  const client = createClient({ servers: [server(1).address], tls: clientTls, requestTimeoutMs: 20_000 });
  try {
    await client.put('good', value);
    expect(await client.get('good')).toBe(value);
  } finally {
    await client.close();
  }
}

describe('a cluster with TLS on every port', () => {
  it('forms over TLS and serves a client that has the CA; /metrics is HTTPS', async () => {
    await goodClientWorks('v1');
    expect(await metric(server(1).httpPort, 'paxkv_connections', {}, ca.cert)).toBeGreaterThan(0);
    expect(logOf(server(1))).toContain('TLS certificate');
  });

  it('a plain TCP client is refused, and the server says why', async () => {
    const reply = await request(server(2).address, { type: 'status', id: 1 }, 10_000).catch(() => null);
    expect(reply).toBeNull();
    await eventually(() => logOf(server(2)).includes('did not start a TLS handshake'));
  });

  it('a client with another CA fails with a clear message, and the server says why', async () => {
    const client = createClient({
      servers: [server(3).address],
      tls: { ca: otherCa.cert },
      requestTimeoutMs: 3_000,
    });
    try {
      const error = await client.get('good').then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(error?.message).toContain('is not signed by the CA this client trusts');
      expect(error?.code).toBe('TLS_FAILED');
    } finally {
      await client.close();
    }
    await eventually(() => logOf(server(3)).includes('closed the connection during the TLS handshake'));
  });

  it('a forged hello + maximum-ballot Prepare is refused without a server certificate of the cluster CA', async () => {
    const unauthenticated = ['paxkv_unauthenticated_messages_total', { type: 'paxos' }] as const;
    // A server certificate of the cluster CA for another host passes the CA check, but its hello is
    // refused: its Prepares come from no known peer and are dropped as such.
    const notAPeer = ['paxkv_peer_messages_dropped_total', { reason: 'not-from-this-peer' }] as const;
    const attempts: Array<[TlsOptions, readonly [string, Record<string, string>]]> = [
      [{ ca: ca.cert }, unauthenticated],
      [{ ca: ca.cert, ...userCert }, unauthenticated],
      [{ ca: ca.cert, ...foreign }, unauthenticated],
      [{ ca: ca.cert, ...elsewhere }, notAPeer],
    ];
    // Inside an availability window: no replica may promise the forged ballot, every partition writes.
    const { report } = await probe.window(
      'forged hello + MAX_ROUND Prepare with wrong certificates',
      async () => {
        for (const [tls, [name, labels]] of attempts) {
          for (const target of cluster.servers) {
            await forgeHelloAndPrepares(target, target.index === 2 ? 3 : 2, MAX_ROUND, 4, name, labels, tls);
          }
        }
      },
    );
    console.log(AvailabilityProbe.format(report));
    expect(probe.errors).toEqual([]);
    const log = logOf(server(1));
    expect(log).toMatch(/without a server certificate of the cluster CA/);
    // Nothing reached a group: every partition has a leader (on a loaded machine an election may be
    // under way at this instant: waited for, not sampled) and the client is served.
    await until(
      'a leader in every partition',
      async () => ((await cluster.leaders()).size === 4 ? true : null),
      60_000,
    );
    await goodClientWorks('v2');
  });

  it('the refusals say what was wrong with the certificate', async () => {
    const cases: Array<[TlsOptions, RegExp]> = [
      [{ ca: ca.cert, ...userCert }, /a client certificate, not a server one/],
      [{ ca: ca.cert, ...foreign }, /certificate not accepted/],
      [{ ca: ca.cert, ...elsewhere }, /certificate names 10\.9\.9\.9/],
    ];
    for (const [tls, reason] of cases) {
      const impostor = await Impostor.connect(server(1).address, tls);
      try {
        impostor.send({ type: 'peer.hello', from: 2 });
        const refusal = (await impostor.waitFor(isUnauthenticated)) as { message: string };
        expect(refusal.message).toMatch(reason);
      } finally {
        impostor.close();
      }
    }
  });

  it('a forged checkin or table.push with a wrong certificate is refused; nothing is persisted', async () => {
    const before = readFileSync(join(server(2).dataDir, 'server.json'), 'utf8');
    for (const tls of [
      { ca: ca.cert, ...userCert },
      { ca: ca.cert, ...elsewhere },
    ]) {
      const toBootstrap = await Impostor.connect(server(1).address, tls);
      const toMember = await Impostor.connect(server(2).address, tls);
      try {
        toBootstrap.send({ type: 'checkin', nodeId: 2, address: '127.0.0.1:9', id: 1 });
        expect(await toBootstrap.waitFor(isUnauthenticated)).toBeTruthy();
        toMember.send(forgedTablePush(4));
        expect(await toMember.waitFor(isUnauthenticated)).toBeTruthy();
      } finally {
        toBootstrap.close();
        toMember.close();
      }
    }
    expect(readFileSync(join(server(2).dataDir, 'server.json'), 'utf8')).toBe(before);
    await goodClientWorks('v3');
  });
});

describe('mutation check', () => {
  it('a server that takes any certificate of the CA for a peer lets a user through', async () => {
    // Restart server 3 with the identity check switched off (test-only): the user's certificate now
    // passes for node 2, which shows that the check is what refused it above.
    await restartWithSwitch(cluster, server(3), 'PAXKV_UNSAFE_TLS_ANY_CERTIFICATE', clientTls);
    const impostor = await Impostor.connect(server(3).address, { ca: ca.cert, ...userCert });
    try {
      impostor.send({ type: 'peer.hello', from: 2 });
      const from = `peer 2 connected from 127.0.0.1:${impostor.socket.localPort}`;
      await eventually(() => logOf(server(3)).includes(from));
      expect(impostor.received.some(isUnauthenticated)).toBe(false);
    } finally {
      impostor.close();
    }
  });
});
