/**
 * Memory per key of a partition's state: what `pnpm bench:cluster --keys N` measures as RSS, taken apart
 * in one process where the garbage collector can be forced, so that the figure does not depend on the
 * machine's load (memory is not time).
 *
 * Two modes (MEMORY_BENCH_MODE):
 * - `sm` (default): `MEMORY_BENCH_PARTITIONS` state machines (default 16, as a bench:cluster server)
 *   apply `MEMORY_BENCH_KEYS` session puts (default 1 000 000, 64 clients) of distinct keys `m0000000`
 *   with 100-byte string values, each command decoded from msgpack bytes as a replica receives it.
 * - `group`: the same puts through real {@link ReplicaGroup}s: 3 replicas of each partition in this
 *   process (one write-ahead log per replica set, on the real file system, messages through msgpack),
 *   snapshots every `snapshotEveryEntries` (default of the group); the figure is per replica (the
 *   process holds three copies).
 *
 * After the load: `global.gc()` (run with `--expose-gc`), then heap used, external/array-buffer bytes and
 * RSS, minus the same before the load, per key. `MEMORY_BENCH_HEAP_SNAPSHOT=FILE` also writes a heap
 * snapshot and prints the largest constructors by self size (`summary` below);
 * `MEMORY_BENCH_SUMMARIZE=FILE` only prints that summary of an existing snapshot.
 *
 * Run: `pnpm --filter @paxkv/kvstore bench:memory` (env MEMORY_BENCH_MODE, MEMORY_BENCH_KEYS,
 * MEMORY_BENCH_PARTITIONS, MEMORY_BENCH_VALUE_BYTES, MEMORY_BENCH_HEAP_SNAPSHOT).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { partitionOf, type Session } from '@paxkv/common';
import type { ReconfigMessage } from '@paxkv/paxos';
import { decode, encode } from '../src/codec.js';
import { type KvCommand, KvStateMachine, NodeDisk, ReplicaGroup, WriteAheadLog } from '../src/index.js';

const mode = process.env.MEMORY_BENCH_MODE ?? 'sm';
const keys = Number(process.env.MEMORY_BENCH_KEYS ?? 1_000_000);
const partitions = Number(process.env.MEMORY_BENCH_PARTITIONS ?? 16);
const valueBytes = Number(process.env.MEMORY_BENCH_VALUE_BYTES ?? 100);
const heapSnapshot = process.env.MEMORY_BENCH_HEAP_SNAPSHOT;
const clients = 64;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (the bench:memory script does)');

const FILLER = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.repeat(64);
/** Key `i`: as bench:cluster's memory figure (`m` + 7 digits). */
const keyOf = (i: number): string => `m${String(i).padStart(7, '0')}`;
/** Value of key `i`: as bench:cluster's (`i:` then filler, `valueBytes` long). */
const valueOfKey = (i: number): string => `${i}:${FILLER}`.slice(0, valueBytes);
const command = (i: number): KvCommand & { session: Session } => ({
  id: `p${i}`,
  op: { op: 'put', key: keyOf(i), value: valueOfKey(i) },
  session: { client: `c${i % clients}`, seq: Math.floor(i / clients) + 1 },
});

interface Usage {
  heap: number;
  external: number;
  rss: number;
}
function usage(): Usage {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external + m.arrayBuffers, rss: m.rss };
}

const perKey = (bytes: number, copies: number) => Math.round(bytes / keys / copies);

async function loadStateMachines(): Promise<{ keep: unknown; copies: number; close?: () => Promise<void> }> {
  const machines = Array.from({ length: partitions }, (_, p) => new KvStateMachine({}, p));
  for (let i = 0; i < keys; i++) {
    const c = decode(encode(command(i)), 'command') as KvCommand;
    const m = machines[partitionOf(c.op.op === 'put' ? c.op.key : '', partitions)] as KvStateMachine;
    const out = m.apply(m.appliedIndex, c);
    if (!out.ok) throw out.error;
  }
  return { keep: machines, copies: 1 };
}

async function loadGroups(): Promise<{ keep: unknown; copies: number; close: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'paxkv-memory-bench-'));
  const disk = new NodeDisk();
  const ids = [1, 2, 3];
  const wals: WriteAheadLog[] = [];
  const groups = new Map<string, ReplicaGroup>();
  for (const pid of ids) {
    const { wal } = await WriteAheadLog.open({ disk, dir: join(root, `n${pid}`, 'wal'), fsync: 'never' });
    wals.push(wal);
  }
  for (let p = 0; p < partitions; p++) {
    for (const pid of ids) {
      const g = await ReplicaGroup.open({
        partition: p,
        pid,
        peers: ids.filter((x) => x !== pid),
        wal: wals[pid - 1] as WriteAheadLog,
        disk,
        dir: join(root, `n${pid}`, `p${p}`),
        nonce: 'memory',
        send: (to, message) => {
          const bytes = encode(message);
          setImmediate(() =>
            groups.get(`${p}/${to}`)?.handle(pid, decode(bytes, 'message') as ReconfigMessage<KvCommand>),
          );
        },
      });
      groups.set(`${p}/${pid}`, g);
    }
  }
  const ticker = setInterval(() => {
    for (const g of groups.values()) g.tick();
  }, 5);
  const leaderOf = async (p: number): Promise<ReplicaGroup> => {
    for (;;) {
      const l = ids
        .map((pid) => groups.get(`${p}/${pid}`) as ReplicaGroup)
        .find((g) => g.role === 'leader' && g.phase === 'accept');
      if (l) return l;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (;;) {
        const i = next++;
        if (i >= keys) return;
        const c = command(i);
        const key = c.op.op === 'put' ? c.op.key : '';
        for (;;) {
          try {
            await (await leaderOf(partitionOf(key, partitions))).submit(c.op, { session: c.session });
            break;
          } catch {
            // a leader change: retry on the new leader (same session and sequence number)
          }
        }
        if (i % 100_000 === 0 && i > 0) process.stderr.write(`  ${i} keys\n`);
      }
    }),
  );
  // Let followers apply the last entries.
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(ticker);
  return {
    keep: groups,
    copies: ids.length,
    close: async () => {
      for (const g of groups.values()) await g.close();
      for (const w of wals) await w.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Self size per constructor (node type + name) of a V8 heap snapshot, largest first: where the bytes
 * of the heap are (not who retains them). Reads the file as bytes (a snapshot of a large heap is longer
 * than the longest string V8 can make, so `JSON.parse` of the whole file is not an option).
 */
function summary(file: string, top = 25): string[] {
  const buf = readFileSync(file);
  const text = (from: number, to: number) => buf.toString('latin1', from, to);
  const headerEnd = buf.indexOf('"nodes":');
  const meta = JSON.parse(text(buf.indexOf('{', 1), headerEnd).replace(/,\s*$/, '')) as {
    meta: { node_fields: string[]; node_types: [string[]] };
  };
  const fields = meta.meta.node_fields;
  const types = meta.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  // The nodes: one flat array of integers.
  const nodes: number[] = [];
  let at = buf.indexOf('[', headerEnd) + 1;
  for (let n = 0; ; at++) {
    const c = buf[at] as number;
    if (c >= 48 && c <= 57) n = n * 10 + c - 48;
    else if (c === 44 || c === 93) {
      nodes.push(n);
      n = 0;
      if (c === 93) break;
    }
  }
  // The strings: decode only the names of objects (constructors).
  const named = new Set(['object', 'closure', 'native', 'hidden']);
  const wanted = new Set<number>();
  for (let n = 0; n < nodes.length; n += fields.length)
    if (named.has(types[nodes[n + iType] as number] as string)) wanted.add(nodes[n + iName] as number);
  const names = new Map<number, string>();
  at = buf.indexOf('[', buf.indexOf('"strings":')) + 1;
  for (let i = 0; ; i++) {
    const start = buf.indexOf(34, at); // opening quote
    if (start < 0) break;
    let end = start + 1;
    while (buf[end] !== 34) end += buf[end] === 92 ? 2 : 1;
    if (wanted.has(i)) names.set(i, JSON.parse(buf.toString('utf8', start, end + 1)) as string);
    at = end + 1;
    while (buf[at] === 32 || buf[at] === 10 || buf[at] === 44) at++;
    if (buf[at] === 93) break;
  }
  const by = new Map<string, { count: number; bytes: number }>();
  for (let n = 0; n < nodes.length; n += fields.length) {
    const type = types[nodes[n + iType] as number] as string;
    const name = named.has(type) ? (names.get(nodes[n + iName] as number) ?? '') : '';
    const k = `${type}${name ? ` ${name.slice(0, 60)}` : ''}`;
    const s = by.get(k) ?? { count: 0, bytes: 0 };
    s.count++;
    s.bytes += nodes[n + iSize] as number;
    by.set(k, s);
  }
  return [...by.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(
      ([k, s]) =>
        `  ${(s.bytes / 1e6).toFixed(1).padStart(8)} MB ${String(s.count).padStart(9)} x ${(s.bytes / keys).toFixed(1).padStart(7)} B/key  ${k}`,
    );
}

const summarize = process.env.MEMORY_BENCH_SUMMARIZE;
if (summarize) {
  // Only summarise an existing heap snapshot (per key of MEMORY_BENCH_KEYS).
  for (const line of summary(summarize)) console.log(line);
  process.exit(0);
}

const before = usage();
const t0 = performance.now();
const loaded = mode === 'group' ? await loadGroups() : await loadStateMachines();
const seconds = (performance.now() - t0) / 1000;
const after = usage();
const c = loaded.copies;
console.log(
  `memory bench (${mode}): ${keys.toLocaleString('en-US')} keys of ${valueBytes} B values, ${partitions} partitions, ` +
    `${c} ${c === 1 ? 'copy' : 'replicas'}, loaded in ${seconds.toFixed(1)} s; per key and copy, after gc: ` +
    `heap ${perKey(after.heap - before.heap, c)} B + external ${perKey(after.external - before.external, c)} B = ` +
    `${perKey(after.heap - before.heap + after.external - before.external, c)} B; RSS ${perKey(after.rss - before.rss, c)} B`,
);
if (heapSnapshot) {
  writeHeapSnapshot(heapSnapshot);
  console.log(`heap snapshot ${heapSnapshot}, self size by constructor (whole process):`);
  for (const line of summary(heapSnapshot)) console.log(line);
}
await loaded.close?.();
// Keep the loaded state reachable until the figures are taken.
void loaded.keep;
