import { describe, expect, it } from 'vitest';
import { ReplicaGroup, type ReplicaGroupConfig } from './replica-group.js';
import type { AppendFile, Disk } from './storage/disk.js';
import { SimDisk } from './storage/sim-disk.js';
import { WriteAheadLog } from './storage/wal.js';

/** A disk whose fsyncs start failing (EIO) once `failing` is set. */
class FailingDisk extends SimDisk {
  failing = false;
  override async openAppend(path: string): Promise<AppendFile> {
    const f = await super.openAppend(path);
    return {
      get size() {
        return f.size;
      },
      write: (d) => f.write(d),
      sync: () =>
        this.failing ? Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) : f.sync(),
      close: () => f.close(),
    };
  }
}

async function until(pred: () => boolean, group: ReplicaGroup, max = 200): Promise<void> {
  for (let i = 0; i < max && !pred(); i++) {
    group.tick();
    await new Promise((r) => setImmediate(r));
  }
}

describe('ReplicaGroup on a single replica', () => {
  it('refuses a bad snapshotLogRatio or snapshotJitter with an error that names the setting', async () => {
    type Case = readonly [Partial<ReplicaGroupConfig>, RegExp];
    const cases: Case[] = [
      ...[-0.1, Number.NaN, Number.POSITIVE_INFINITY].map(
        (r): Case => [{ snapshotLogRatio: r }, /snapshotLogRatio/],
      ),
      ...[-0.1, 1, Number.NaN].map(
        (j): Case => [{ snapshotJitter: j }, /snapshotJitter must be a number in \[0, 1\)/],
      ),
    ];
    for (const [config, error] of cases) {
      const disk: Disk = new SimDisk();
      const { wal } = await WriteAheadLog.open({ disk, dir: '/wal' });
      await expect(
        ReplicaGroup.open({ partition: 0, pid: 1, peers: [], wal, disk, dir: '/d', send: () => {}, config }),
        JSON.stringify(config),
      ).rejects.toThrow(error);
    }
  });

  it('serves writes and reads alone, and survives a restart', async () => {
    const disk: Disk = new SimDisk();
    const open = async () => {
      const { wal } = await WriteAheadLog.open({ disk, dir: '/wal' });
      return ReplicaGroup.open({
        partition: 3,
        pid: 1,
        peers: [],
        wal,
        disk,
        dir: '/d',
        send: () => {},
        nonce: 'x',
      });
    };
    let g = await open();
    await until(() => g.role === 'leader' && g.phase === 'accept', g);
    const put = g.submit(
      { op: 'put', key: 'k', value: new Uint8Array([1, 2]) },
      { session: { client: 'c', seq: 1 } },
    );
    await until(() => g.appliedIndex > 0, g);
    expect(await put).toMatchObject({
      result: {
        op: 'put',
        created: true,
        createRevision: 1,
        modRevision: 1,
        version: 1,
        revision: 1,
        partition: 3,
      },
      stale: false,
    });
    const get = g.submit({ op: 'get', key: 'k' });
    await until(() => g.pendingRequests === 0, g);
    expect(await get).toMatchObject({
      result: { op: 'get', value: new Uint8Array([1, 2]), version: 1, revision: 1 },
      stale: false,
    });
    await g.close();
    g = await open();
    await until(() => g.appliedIndex > 0, g);
    expect(g.sessionOf('c')?.seq).toBe(1);
    expect(await g.submit({ op: 'get', key: 'k' }, { consistency: 'stale' })).toMatchObject({ stale: true });
  });

  it('stops for good on a failed fsync, failing pending requests and calling onFatal', async () => {
    const disk = new FailingDisk();
    const fatal: Error[] = [];
    const { wal } = await WriteAheadLog.open({ disk, dir: '/wal' });
    const g = await ReplicaGroup.open({
      partition: 0,
      pid: 1,
      peers: [],
      wal,
      disk,
      dir: '/d',
      send: () => {},
      onFatal: (e) => fatal.push(e),
    });
    await until(() => g.role === 'leader' && g.phase === 'accept', g);
    disk.failing = true;
    const put = g.submit({ op: 'put', key: 'k', value: 'v' }).catch((e: unknown) => e);
    await until(() => g.failure !== undefined, g);
    expect(await put).toMatchObject({ code: 'UNAVAILABLE' });
    expect(fatal).toHaveLength(1);
    expect(fatal[0]?.name).toBe('WalFailedError');
    expect(fatal[0]?.message).toMatch(/restart the replica/);
    await expect(g.submit({ op: 'get', key: 'k' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
