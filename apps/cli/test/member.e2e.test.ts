/**
 * `paxkv member list|add|remove` against a local 4-server cluster started by the CLI's launcher
 * (real processes, cluster token on): the answers, and the refusals that say what to do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { resolveServerCommand } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { type ClusterFile, isAlive, readClusterFile, startCluster } from '../src/cluster.js';
import { statusOf } from '../src/connect.js';
import { formatMemberList, parseMemberAddress, parseNodeId } from '../src/member-commands.js';

let dir: string;
let file: ClusterFile;

function killAll(): void {
  const f = dir ? readClusterFile(dir) : null;
  for (const n of f?.nodes ?? []) {
    if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
  }
}
process.on('exit', killAll);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await runCli(
    ['--servers', file.nodes.map((n) => n.address).join(','), '--timeout', '20000', ...args],
    {
      stdout,
      stderr,
      stdin: new PassThrough(),
      env: { PAXKV_SERVERS: '' },
      cwd: dir,
    },
  );
  return { code, stdout: out, stderr: err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'paxkv-cli-member-'));
  const started = await startCluster({
    dir,
    nodes: 4,
    partitions: 4,
    serverCommand: resolveServerCommand({ preferSource: true }),
    statusOf: (a) => statusOf(a, 2000),
    readyTimeoutMs: 60_000,
  });
  file = started.file;
}, 90_000);

afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('paxkv member', () => {
  it('lists the members from the replicated metadata', async () => {
    const r = await cli(['--json', 'member', 'list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      version: number;
      metaReplicas: number[];
      members: Array<{ id: number; state: string; replicas: number; metadata: boolean }>;
    };
    expect(out.metaReplicas).toEqual([1, 2, 3]);
    expect(out.members.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    // 4 partitions x 3 replicas over 4 servers: 3 each.
    expect(out.members.map((m) => m.replicas)).toEqual([3, 3, 3, 3]);
    const table = await cli(['member', 'list']);
    expect(table.stdout).toMatch(/ID\s+ADDRESS\s+STATE\s+REPLICAS\s+METADATA/);
    expect(table.stdout).toMatch(/metadata v\d+, replicated on nodes 1, 2, 3/);
  }, 60_000);

  it('adds and removes a spare, and refuses what it cannot do with a reason', async () => {
    const added = await cli(['member', 'add', '127.0.0.1:9']);
    const said = JSON.stringify(added);
    expect(added.code, said).toBe(0);
    const id = Number(/node (\d+) \(127\.0\.0\.1:9\) is a member/.exec(added.stdout)?.[1]);
    expect(id, said).toBeGreaterThanOrEqual(5);
    const listed = await cli(['-w', 'simple', 'member', 'list']);
    expect(listed.stdout, JSON.stringify(listed)).toMatch(
      new RegExp(`^${id}, 127\\.0\\.0\\.1:9, (spare|suspected), 0, no$`, 'm'),
    );
    const removed = await cli(['--json', 'member', 'remove', String(id)]);
    expect(removed.code, JSON.stringify(removed)).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ node: id, state: 'removed' });

    // The bootstrap server, a replica of the metadata group, can be removed: it drains first.
    const metadata = await cli(['member', 'remove', '1']);
    expect(metadata.code, JSON.stringify(metadata)).toBe(0);
    expect(metadata.stdout).toMatch(/node 1 .*is draining/);
    const unknown = await cli(['member', 'remove', '77']);
    expect(unknown.stderr).toMatch(/node 77 is not a member.*paxkv member list/);
    const taken = await cli(['member', 'add', file.nodes[3]!.address]);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(
      /holds replicas of partitions .*remove node \d first \(paxkv member remove \d\)/,
    );
    const badId = await cli(['member', 'remove', 'x']);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toMatch(/a node id is a positive integer/);
  }, 90_000);
});

describe('member command helpers', () => {
  it('parse their arguments and print moves in progress', () => {
    expect(parseNodeId('12')).toBe(12);
    expect(() => parseNodeId('0')).toThrow(/positive integer/);
    expect(parseMemberAddress('[::1]:7000')).toBe('[::1]:7000');
    expect(() => parseMemberAddress('host')).toThrow(/host:port/);
    const nodes = [1, 2, 3, 4].map((id) => ({ id, address: `h:${id}` }));
    const text = formatMemberList(
      {
        type: 'member.list.ok',
        id: 1,
        metadata: {
          table: {
            version: 9,
            partitions: 1,
            replication: 3,
            nodes,
            groups: [{ partition: 0, replicas: [1, 2, 3] }],
          },
          metaReplicas: [1, 2, 3],
          nextNodeId: 5,
          draining: [],
          moving: [{ partition: 0, from: 3, to: 4, reason: 'replace' }],
        },
        members: nodes.map((n) => ({
          ...n,
          state: n.id === 3 ? 'suspected' : n.id === 4 ? 'spare' : 'alive',
        })),
      },
      'table',
    );
    expect(text).toMatch(/moving: partition 0: node 3 -> node 4 \(replace\)/);
    expect(text).toMatch(/3\s+h:3\s+suspected\s+1\s+yes/);
  });
});
