/**
 * The CLI against a local cluster started with `paxkv cluster start --tls --auth`: the throwaway CA is
 * picked up from the cluster directory (status, get, put all over TLS), a command without a login gets
 * UNAUTHENTICATED, root (password in `<dir>/root-password`) adds users, `paxkv login` saves a session
 * token that later commands use, a read-only user gets PERMISSION_DENIED on put, and `--cacert` with
 * another CA fails with a message that says so. Every server is SIGKILLed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCertificateAuthority } from '@paxkv/server/certs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, readClusterFile } from '../src/cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI_MAIN = join(here, '..', 'src', 'main.ts');
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

let dir: string;

function killAll(): void {
  const f = dir ? readClusterFile(dir) : null;
  for (const n of f?.nodes ?? []) if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
}
process.on('exit', killAll);

/** Runs the CLI from source with `--dir <cluster dir>` first; resolves with exit code and output. */
function cli(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@paxkv/source', '--import', tsx, CLI_MAIN, '--dir', dir, ...args],
      {
        env: {
          ...process.env,
          PAXKV_SERVERS: '',
          PAXKV_SERVER_FROM_SOURCE: '1',
          PAXKV_TOKEN_FILE: join(dir, 'session-token'),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'paxkv-cli-security-'));
  const r = await cli([
    'cluster',
    'start',
    '--tls',
    '--auth',
    '--detach',
    '--nodes',
    '3',
    '--partitions',
    '4',
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cli(['cluster', 'stop']);
  killAll();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('paxkv against a --tls --auth local cluster', () => {
  it('speaks TLS with the cluster CA and refuses commands without a login', async () => {
    const status = await cli(['status']);
    expect(status.code, status.stderr).toBe(0);
    const anonymous = await cli(['get', 'k']);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toContain('UNAUTHENTICATED');
  }, 60_000);

  it('root adds users; login saves a token; a read-only user gets PERMISSION_DENIED on put', async () => {
    const root = ['--user', 'root', '--password-file', join(dir, 'root-password')];
    expect((await cli([...root, 'user', 'add', 'alice', '--role', 'read'], 'alice-password\n')).code).toBe(0);
    expect((await cli([...root, 'user', 'add', 'bob', '--role', 'readwrite'], 'bob-password\n')).code).toBe(
      0,
    );
    expect((await cli([...root, 'role', 'add', 'app', '--readwrite', 'app/'])).code).toBe(0);
    const list = await cli([...root, 'user', 'list']);
    expect(list.stdout).toContain('alice\tread');
    expect(list.stdout).toContain('bob\treadwrite');

    const bobFile = join(dir, 'bob-password');
    writeFileSync(bobFile, 'bob-password\n', { mode: 0o600 });
    expect((await cli(['--user', 'bob', '--password-file', bobFile, 'put', 'greeting', 'hello'])).code).toBe(
      0,
    );

    const login = await cli(['--user', 'alice', 'login'], 'alice-password\n');
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('logged in as alice');
    expect(readFileSync(join(dir, 'session-token'), 'utf8')).toMatch(/^v1\./);
    const get = await cli(['get', 'greeting']);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain('hello');
    const put = await cli(['put', 'greeting', 'bye']);
    expect(put.code).not.toBe(0);
    expect(put.stderr).toContain('PERMISSION_DENIED');
  }, 240_000);

  it('member list/add/remove log in: UNAUTHENTICATED without, PERMISSION_DENIED for a reader, done by root', async () => {
    const none = ['--token-file', join(dir, 'no-such-token'), '--timeout', '20000'];
    const anonymous = await cli([...none, 'member', 'add', '127.0.0.1:9']);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/paxkv member add: .*(log in|login)/i);
    // alice (role read, her session token saved by the previous test) may list but not add.
    const listed = await cli(['--timeout', '20000', '--json', 'member', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { members: unknown[] }).members).toHaveLength(3);
    const reader = await cli(['--timeout', '20000', 'member', 'add', '127.0.0.1:9']);
    expect(reader.code).not.toBe(0);
    expect(reader.stderr).toMatch(/paxkv member add: .*alice.*member\.add/);
    const root = ['--user', 'root', '--password-file', join(dir, 'root-password'), '--timeout', '20000'];
    const added = await cli([...root, 'member', 'add', '127.0.0.1:9']);
    expect(added.code, added.stderr).toBe(0);
    const id = Number(/node (\d+) \(127\.0\.0\.1:9\) is a member/.exec(added.stdout)?.[1]);
    expect(id).toBeGreaterThanOrEqual(4);
    const removed = await cli([...root, '--json', 'member', 'remove', String(id)]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ node: id, state: 'removed' });
  }, 240_000);

  it("root's client certificate of the local --tls cluster logs in without a password", async () => {
    const cert = ['--cert', join(dir, 'tls', 'client.pem'), '--key', join(dir, 'tls', 'client-key.pem')];
    const none = ['--token-file', join(dir, 'no-such-token'), '--timeout', '20000'];
    const put = await cli([...cert, ...none, 'put', 'by-certificate', 'root wrote this']);
    expect(put.code, put.stderr).toBe(0);
    const get = await cli([...cert, ...none, 'get', 'by-certificate']);
    expect(get.stdout).toContain('root wrote this');
    // Without the certificate (and no token) the same put is refused.
    const anonymous = await cli([...none, 'put', 'by-certificate', 'nobody']);
    expect(anonymous.stderr).toContain('UNAUTHENTICATED');
  }, 120_000);

  it('another CA fails with a message that says so', async () => {
    const other = await createCertificateAuthority();
    const ca = join(dir, 'other-ca.pem');
    writeFileSync(ca, other.cert);
    const r = await cli(['--cacert', ca, '--timeout', '3000', 'get', 'greeting']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('not signed by the CA this client trusts');
  }, 60_000);
});
