/**
 * Client authentication and authorisation on a real 3-server cluster with everything on: TLS, a cluster
 * token and `--auth` (issue 14 part 5, "a client without credentials gets UNAUTHENTICATED; a read-only
 * user gets PERMISSION_DENIED on put"). Users and roles live in the kvstore under reserved keys that no
 * client may name; sessions are HMAC tokens any server verifies; a role change reaches every server
 * within `authCacheMs`. A server started with the role check switched off (test-only mutation) lets the
 * read-only user's put through, so the check is what refuses it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { type ClientAuth, createClient, type PaxkvClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateAuthority, createCertificateAuthority, issueCertificate } from '../src/certs.js';
import { RawClient, request, TestCluster, type TestServer } from './harness.js';
import { eventually, Impostor, restartWithSwitch } from './hostile-helpers.js';

const ROOT_PASSWORD = 'root-password-for-tests';
let cluster: TestCluster;
let tls: TlsOptions;
const clients: PaxkvClient[] = [];
const server = (i: number) => cluster.servers[i - 1] as TestServer;

function client(auth?: ClientAuth, at = 1): PaxkvClient {
  const c = createClient({
    servers: [server(at).address],
    tls,
    requestTimeoutMs: 20_000,
    ...(auth ? { auth } : {}),
  });
  clients.push(c);
  return c;
}

/** Sends a `user`/`role` request as root over a raw TLS connection; resolves with the reply. */
async function admin(message: Record<string, unknown>, at = 1): Promise<Record<string, unknown>> {
  const raw = await RawClient.connect(server(at).address, tls);
  try {
    const login = await raw.call({ type: 'login', user: 'root', password: ROOT_PASSWORD });
    expect(login).toMatchObject({ type: 'login.ok', user: 'root', roles: ['admin'] });
    return (await raw.call(message, 20_000)) as Record<string, unknown>;
  } finally {
    raw.close();
  }
}

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code,
  );

let ca: CertificateAuthority;

beforeAll(async () => {
  ca = await createCertificateAuthority();
  const cert = await issueCertificate(ca, { commonName: 'server', hosts: ['127.0.0.1'] });
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-auth-'));
  const f = (name: string, text: string, mode = 0o644) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode });
    return path;
  };
  tls = { ca: ca.cert };
  cluster = await TestCluster.create({
    nodes: 3,
    partitions: 4,
    resp: true,
    clientTls: tls,
    security: 'none', // its own TLS and token flags
    extraFlags: [
      '--tls-cert',
      f('server.pem', cert.cert),
      '--tls-key',
      f('server-key.pem', cert.key, 0o600),
      '--tls-ca',
      f('ca.pem', ca.cert),
      '--cluster-token-file',
      f('token', 'client-auth-suite-token-0123456789', 0o600),
      '--auth',
      '--root-password-file',
      f('root-password', `${ROOT_PASSWORD}\n`, 0o600),
    ],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
}, 90_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await cluster?.destroy();
});

describe('users and roles on a cluster with TLS, a token and --auth', () => {
  it('a client without credentials gets UNAUTHENTICATED; a wrong password too', async () => {
    expect(await codeOf(client().put('k', 'v'))).toBe('UNAUTHENTICATED');
    const wrong = client({ user: 'root', password: 'not-the-password' });
    const error = await wrong.get('k').then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).toBe('UNAUTHENTICATED');
    expect(error?.message).toContain('unknown user or wrong password');
  });

  it('root (from --root-password-file) manages users and roles', async () => {
    expect(
      await admin({ type: 'user', action: 'add', user: 'alice', password: 'alice-password', role: 'read' }),
    ).toMatchObject({
      type: 'user.ok',
    });
    expect(
      await admin(
        { type: 'user', action: 'add', user: 'bob', password: 'bob-password', role: 'readwrite' },
        2,
      ),
    ).toMatchObject({ type: 'user.ok' });
    expect(
      await admin({
        type: 'role',
        action: 'add',
        role: 'app',
        permissions: [{ prefix: 'app/', access: 'readwrite' }],
      }),
    ).toMatchObject({ type: 'user.ok' });
    expect(
      await admin({ type: 'user', action: 'add', user: 'carol', password: 'carol-password', role: 'app' }, 3),
    ).toMatchObject({
      type: 'user.ok',
    });
    const list = await admin({ type: 'user', action: 'list' });
    expect(list.users).toEqual(
      expect.arrayContaining([
        { name: 'alice', roles: ['read'] },
        { name: 'bob', roles: ['readwrite'] },
        { name: 'carol', roles: ['app'] },
        { name: 'root', roles: ['admin'] },
      ]),
    );
    // A second add of the same user is refused; a user cannot manage users.
    expect(
      await admin({ type: 'user', action: 'add', user: 'alice', password: 'whatever-pass' }),
    ).toMatchObject({
      code: 'BAD_REQUEST',
    });
    const raw = await RawClient.connect(server(1).address, tls);
    try {
      await raw.call({ type: 'login', user: 'bob', password: 'bob-password' });
      expect(await raw.call({ type: 'user', action: 'list' })).toMatchObject({ code: 'PERMISSION_DENIED' });
    } finally {
      raw.close();
    }
  }, 120_000); // each user add and root login is one scrypt (N=2^15): slow on a loaded machine

  it('a read-only user gets PERMISSION_DENIED on put; readwrite and prefix roles do what they grant', async () => {
    const bob = client({ user: 'bob', password: 'bob-password' }, 2);
    await bob.put('shared', 'from bob');
    await bob.put('app/one', '1');
    const alice = client({ user: 'alice', password: 'alice-password' }, 3);
    expect(await alice.get('shared')).toBe('from bob');
    const denied = await alice.put('shared', 'from alice').then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(denied?.code).toBe('PERMISSION_DENIED');
    expect(denied?.message).toContain('may not write "shared"');
    const carol = client({ user: 'carol', password: 'carol-password' });
    await carol.put('app/two', '2');
    expect(await carol.get('app/one')).toBe('1');
    expect(await codeOf(carol.get('shared'))).toBe('PERMISSION_DENIED');
    expect(await codeOf(carol.put('elsewhere', 'x'))).toBe('PERMISSION_DENIED');
    expect((await carol.prefix('app/')).kvs.map((kv) => kv.key)).toEqual(['app/one', 'app/two']);
    // The session token works on another client (and server) without the password.
    const token = carol.session?.token;
    expect(token).toBeDefined();
    const again = client({ token: token as string }, 3);
    expect(await again.get('app/two')).toBe('2');
  });

  it('a client certificate of the cluster CA whose common name is a user logs in as that user', async () => {
    /** A client (no password, no token) presenting a client certificate for `commonName` issued by `by`. */
    const withCertificate = async (commonName: string, by: CertificateAuthority = ca) => {
      const pair = await issueCertificate(by, { commonName, usage: 'client' });
      const c = createClient({
        servers: [server(2).address],
        tls: { ...tls, cert: pair.cert, key: pair.key },
        requestTimeoutMs: 20_000,
      });
      clients.push(c);
      return c;
    };
    const bob = await withCertificate('bob');
    await bob.put('cert/bob', 'by certificate');
    const alice = await withCertificate('alice');
    expect(await alice.get('cert/bob')).toBe('by certificate');
    expect(await codeOf(alice.put('cert/alice', 'x'))).toBe('PERMISSION_DENIED');
    // A certificate that names no user, or that another CA signed, logs nobody in.
    expect(await codeOf((await withCertificate('nobody')).get('shared'))).toBe('UNAUTHENTICATED');
    const other = await createCertificateAuthority();
    expect(await codeOf((await withCertificate('bob', other)).get('shared'))).toBe('UNAUTHENTICATED');
  });

  it('reserved keys: no client names them, and a range never returns them', async () => {
    const bob = client({ user: 'bob', password: 'bob-password' });
    expect(await codeOf(bob.put('\u0000{auth}user/eve', 'x'))).toBe('BAD_REQUEST');
    expect(await codeOf(bob.get('\u0000{auth}user/alice'))).toBe('BAD_REQUEST');
    const root = client({ user: 'root', password: ROOT_PASSWORD });
    expect(await codeOf(root.put('\u0000{auth}user/eve', 'x'))).toBe('BAD_REQUEST');
    // A full scan (every partition from the first key) holds no reserved key.
    const all = (await root.prefix('')).kvs;
    expect(all.length).toBeGreaterThan(0);
    expect(all.some((kv) => kv.key.startsWith('\u0000'))).toBe(false);
  });

  it('a revoked role and a changed password stop working on every server', async () => {
    const bob = client({ user: 'bob', password: 'bob-password' }, 3);
    await bob.put('shared', 'before revoke');
    expect(await admin({ type: 'user', action: 'revoke', user: 'bob', role: 'readwrite' })).toMatchObject({
      type: 'user.ok',
    });
    await eventually(async () => (await codeOf(bob.put('shared', 'after revoke'))) === 'PERMISSION_DENIED');
    const carol = client({ user: 'carol', password: 'carol-password' }, 2);
    await carol.put('app/three', '3');
    const token = carol.session?.token as string;
    expect(
      await admin({ type: 'user', action: 'passwd', user: 'carol', password: 'carol-new-password' }),
    ).toMatchObject({
      type: 'user.ok',
    });
    const raw = await RawClient.connect(server(2).address, tls);
    try {
      expect(await raw.call({ type: 'login', token })).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: expect.stringContaining('no longer valid'),
      });
    } finally {
      raw.close();
    }
  });

  it('RESP over TLS: NOAUTH before AUTH, WRONGPASS for a wrong password, NOPERM for a read-only user', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: server(2).respPort as number,
      tls: { ca: String(tls.ca) },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await redis.connect();
      await expect(redis.get('shared')).rejects.toThrow(/^NOAUTH/);
      await expect(redis.auth('alice', 'not-her-password')).rejects.toThrow(/^WRONGPASS/);
      expect(await redis.auth('alice', 'alice-password')).toBe('OK');
      expect(await redis.get('shared')).not.toBeNull();
      await expect(redis.set('shared', 'from RESP')).rejects.toThrow(/^NOPERM .*may not write "shared"/);
    } finally {
      redis.disconnect();
    }
  });

  it('RESP HELLO ... AUTH logs in and switches the protocol in one command; a refused one changes nothing', async () => {
    const port = server(3).respPort as number;
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      tls: { ca: String(tls.ca) },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await redis.connect();
      await expect(redis.call('HELLO', '2', 'AUTH', 'alice', 'not-her-password')).rejects.toThrow(
        /^WRONGPASS/,
      );
      await expect(redis.get('shared')).rejects.toThrow(/^NOAUTH/);
      const hello = (await redis.call('HELLO', '2', 'AUTH', 'alice', 'alice-password')) as unknown[];
      expect(hello.slice(4, 6)).toEqual(['proto', 2]);
      await redis.get('shared'); // logged in: no NOAUTH
      await expect(redis.set('shared', 'from HELLO')).rejects.toThrow(/^NOPERM/);
    } finally {
      redis.disconnect();
    }
    // RESP3 (which ioredis does not parse): the HELLO reply is already a RESP3 map, and GET then works.
    const raw = tlsConnect({ host: '127.0.0.1', port, ca: String(tls.ca) });
    try {
      let got = '';
      raw.on('data', (d: Buffer) => (got += d.toString('latin1')));
      await new Promise<void>((r) => raw.once('secureConnect', () => r()));
      const command = (...parts: string[]) =>
        `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
      raw.write(command('HELLO', '3', 'AUTH', 'alice', 'alice-password') + command('GET', 'shared'));
      // The map ends with `modules` (an empty array), then GET's answer (a bulk string, or RESP3's null).
      await eventually(() => /\*0\r\n(\$\d+\r\n[^\r]*|_)\r\n$/.test(got), 30_000);
      expect(got.startsWith('%7\r\n')).toBe(true);
      expect(got).not.toContain('NOAUTH');
    } finally {
      raw.destroy();
    }
  });

  it('five failed logins close the connection', async () => {
    const impostor = await Impostor.connect(server(1).address, tls);
    try {
      for (let i = 0; i < 5; i++)
        impostor.send({ type: 'login', id: i + 1, user: 'root', password: `guess-${i}-xxxx` });
      await impostor.waitClosed(30_000);
      expect(
        impostor.received.filter((m) => (m as { code?: string }).code === 'UNAUTHENTICATED'),
      ).toHaveLength(5);
    } finally {
      impostor.close();
    }
  });

  it('a process without the token cannot pass for a peer to skip the checks', async () => {
    const impostor = await Impostor.connect(server(1).address, tls);
    try {
      impostor.send({ type: 'peer.hello', from: 2 });
      impostor.send({ type: 'kv', id: 7, op: { op: 'put', key: 'shared', value: 'forged' } });
      const reply = (await impostor.waitFor((m) => (m as { id?: number }).id === 7)) as { code?: string };
      expect(reply.code).toBe('UNAUTHENTICATED');
    } finally {
      impostor.close();
    }
    const status = await request(server(1).address, { type: 'status', id: 1 }, 5000, { tls });
    expect(status).toMatchObject({ type: 'status.ok' });
  });
});

describe('mutation check', () => {
  it('a server that skips the role check lets the read-only user write', async () => {
    await restartWithSwitch(cluster, server(3), 'PAXKV_UNSAFE_AUTH_SKIP_PERMISSIONS', tls);
    const raw = await RawClient.connect(server(3).address, tls);
    try {
      // The login reads the users through the restarted server's groups: retried while they settle
      // (UNAVAILABLE / NO_LEADER / TIMEOUT), like the write below.
      expect(
        await raw.callRetrying({ type: 'login', user: 'alice', password: 'alice-password' }, 60_000),
      ).toMatchObject({ type: 'login.ok' });
      // A session write (exactly-once), retried while the restarted server's groups settle.
      const reply = await raw.callRetrying(
        {
          type: 'kv',
          op: { op: 'put', key: 'shared', value: 'by alice' },
          session: { client: 'mutation-check', seq: 1 },
        },
        60_000,
      );
      expect(reply, JSON.stringify(reply)).toMatchObject({ type: 'kv.ok' });
    } finally {
      raw.close();
    }
    // Room for its three waits (the restart, the login and the write: up to 60 s each on a loaded machine).
  }, 200_000);
});
