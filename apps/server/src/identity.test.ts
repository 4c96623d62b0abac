import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IDENTITY_FILE, IdentityFileError, readIdentity, writeIdentity } from './identity.js';

const table = {
  version: 3,
  partitions: 2,
  replication: 1,
  nodes: [{ id: 1, address: '127.0.0.1:7001' }],
  groups: [
    { partition: 0, replicas: [1] },
    { partition: 1, replicas: [1] },
  ],
};

describe('identity file', () => {
  it('is empty when absent, and round-trips node id, table and spares', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-id-'));
    expect(readIdentity(dir)).toEqual({ version: 1, nodeId: null, table: null, spares: [] });
    const identity = {
      version: 1 as const,
      nodeId: 4,
      table,
      spares: [{ id: 5, address: '127.0.0.1:7005' }],
    };
    writeIdentity(dir, identity);
    expect(readIdentity(dir)).toEqual(identity);
    expect(readdirSync(dir)).toEqual([IDENTITY_FILE]);
  });

  it('reports a corrupt or invalid file instead of starting with a wrong identity', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-id-'));
    writeFileSync(join(dir, IDENTITY_FILE), '{"version":1,"nodeId":');
    expect(() => readIdentity(dir)).toThrow(IdentityFileError);
    writeFileSync(join(dir, IDENTITY_FILE), JSON.stringify({ version: 1, nodeId: -2, table: null }));
    expect(() => readIdentity(dir)).toThrow(/nodeId/);
  });
});
