import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_FILE,
  CLUSTER_TOKEN_FILE,
  ClusterError,
  type ClusterFile,
  DEFAULT_REPLACE_AFTER_S,
  freePort,
  isAlive,
  readClusterFile,
  serverFlags,
  stopCluster,
  writeClusterFile,
} from './cluster.js';

function sample(dir: string): ClusterFile {
  return {
    version: 1,
    dir,
    partitions: 8,
    replication: 3,
    fsync: 'always',
    nodes: [1, 2, 3].map((index) => ({
      index,
      address: `127.0.0.1:${7000 + index}`,
      port: 7000 + index,
      httpPort: 9000 + index,
      dataDir: join(dir, `node-${index}`),
      logFile: join(dir, `node-${index}`, 'server.log'),
      pid: null,
    })),
  };
}

describe('cluster file', () => {
  it('round-trips and is absent in a fresh dir', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-cluster-'));
    expect(readClusterFile(dir)).toBeNull();
    writeClusterFile(sample(dir));
    expect(readClusterFile(dir)).toEqual(sample(dir));
  });

  it('rejects a file that is not JSON or not a cluster file, saying what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-cluster-'));
    writeFileSync(join(dir, CLUSTER_FILE), '{oops');
    expect(() => readClusterFile(dir)).toThrow(ClusterError);
    writeFileSync(join(dir, CLUSTER_FILE), JSON.stringify({ version: 2 }));
    expect(() => readClusterFile(dir)).toThrow(/not a paxkv cluster file/);
  });

  it('refuses to stop a cluster that does not exist', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-cluster-'));
    await expect(stopCluster(dir)).rejects.toThrow(/nothing to stop/);
  });
});

describe('serverFlags', () => {
  it('passes the cluster token file when the cluster has one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-token-flags-'));
    const file = sample(dir);
    const node = file.nodes[1] as ClusterFile['nodes'][number];
    expect(serverFlags(file, node, 'info')).not.toContain('--cluster-token-file');
    writeFileSync(join(dir, CLUSTER_TOKEN_FILE), 'x'.repeat(64));
    const flags = serverFlags(file, node, 'info');
    expect(
      flags.slice(flags.indexOf('--cluster-token-file'), flags.indexOf('--cluster-token-file') + 2),
    ).toEqual(['--cluster-token-file', join(dir, CLUSTER_TOKEN_FILE)]);
  });

  it("passes the cluster's --replace-after to every server (the server's default when the file has none)", () => {
    const file = sample('/tmp/x');
    const value = (f: ClusterFile) => {
      const flags = serverFlags(f, f.nodes[2] as ClusterFile['nodes'][number], 'info');
      return flags[flags.indexOf('--replace-after') + 1];
    };
    expect(value(file)).toBe(String(DEFAULT_REPLACE_AFTER_S));
    expect(value({ ...file, replaceAfter: 3 })).toBe('3');
    expect(value({ ...file, replaceAfter: 0 })).toBe('0');
  });

  it('starts the first server as the bootstrap server and makes the others join it', () => {
    const file = sample('/tmp/x');
    const first = serverFlags(file, file.nodes[0] as ClusterFile['nodes'][number], 'info');
    const second = serverFlags(file, file.nodes[1] as ClusterFile['nodes'][number], 'warn');
    expect(first).not.toContain('--join');
    for (const [flag, value] of [
      ['--join', '127.0.0.1:7001'],
      ['--port', '7002'],
      ['--http-port', '9002'],
      ['--fsync', 'always'],
      ['--partitions', '8'],
      ['--replication', '3'],
      ['--bootstrap-threshold', '3'],
      ['--log-level', 'warn'],
    ]) {
      expect(second[second.indexOf(flag as string) + 1]).toBe(value);
    }
    expect(second).not.toContain('--resp-port');
    const withResp = serverFlags(
      file,
      { ...(file.nodes[1] as ClusterFile['nodes'][number]), respPort: 6381 },
      'info',
    );
    expect(withResp.slice(withResp.indexOf('--resp-port'), withResp.indexOf('--resp-port') + 2)).toEqual([
      '--resp-port',
      '6381',
    ]);
  });
});

describe('process helpers', () => {
  it('knows whether a pid is alive', () => {
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(null)).toBe(false);
    expect(isAlive(2 ** 22 + 12345)).toBe(false);
  });

  it('finds free ports', async () => {
    const p = await freePort();
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(65536);
  });
});
