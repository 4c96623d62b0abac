import { compareKeys } from '@paxkv/common';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad.js';
import { decode } from '../src/codec.js';
import { OrderedMap } from '../src/ordered-map.js';
import { KvStateMachine } from '../src/state-machine.js';

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const N = 100000;
const sm = new KvStateMachine({}, 0);
const v = 'v'.repeat(256);
for (let i = 0; i < N; i++)
  sm.apply(i, {
    id: `x${i}`,
    op: { op: 'put', key: `k${String((i * 7919) % N).padStart(7, '0')}`, value: v },
    session: { client: 'c', seq: i + 1 },
  });
const snap = sm.snapshot();
for (let r = 0; r < 3; r++) {
  const c0 = cpu();
  const m = KvStateMachine.fromSnapshot(snap);
  const c1 = cpu();
  const raw = decode(snap, 'x') as { data: unknown[] };
  const c2 = cpu();
  const t = new OrderedMap<unknown>();
  for (let i = 0; i < raw.data.length; i += 5) t.set(raw.data[i] as string, raw.data[i + 1]);
  const c3 = cpu();
  const keys: string[] = [];
  const vals: unknown[] = [];
  for (let i = 0; i < raw.data.length; i += 5) {
    keys.push(raw.data[i] as string);
    vals.push(raw.data[i + 1]);
  }
  const b = bulkLoad(keys, vals, 64, compareKeys);
  const c4 = cpu();
  console.log(
    `fromSnapshot ${(c1 - c0).toFixed(0)} ms (${(m as KvStateMachine).size}), decode ${(c2 - c1).toFixed(0)}, btree set ${(c3 - c2).toFixed(0)}, bulkLoad ${(c4 - c3).toFixed(0)} (${b.size}) snap ${(snap.length / 2 ** 20).toFixed(1)} MiB`,
  );
}
