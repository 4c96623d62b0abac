import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster, TargetOptions } from './cluster.js';
import { loadKeys } from './load-generator.js';
import { processRssBytes } from './proc-stats.js';
import type { MemoryResult } from './report.js';
import { makeValue } from './workload.js';

/** Parameters of the memory figure. */
export interface MemorySpec {
  readonly keys: number;
  readonly valueBytes: number;
  readonly concurrency: number;
  /** Pause after the load before reading RSS, so background work (snapshots, compaction) settles. Default 2,000 ms. */
  readonly settleMs?: number;
  readonly target: TargetOptions;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Key `i` of the memory figure: `m` + 7 digits (8 bytes), distinct from the table's `k` keys. */
export function memoryKeyOf(i: number): string {
  return 'm' + String(i).padStart(7, '0');
}

/**
 * The memory figure: RSS of every server (from `/proc/<pid>/status`), before and after writing
 * `keys` distinct keys of `valueBytes`-byte values, each write acknowledged (durable) before the
 * next one of its worker.
 */
export async function measureMemory(cluster: LocalCluster, spec: MemorySpec): Promise<MemoryResult> {
  const rss = () => cluster.servers.map((s) => processRssBytes(s.pid) ?? 0);
  const rssBeforeBytes = rss();
  const target = await cluster.createTarget(spec.target);
  try {
    const t0 = performance.now();
    await loadKeys(target, spec.keys, (i) => makeValue(`${i}:`, spec.valueBytes), {
      concurrency: spec.concurrency,
      keyOf: memoryKeyOf,
      onProgress: (p) => spec.onProgress?.(p.done, p.total),
    });
    const loadSeconds = (performance.now() - t0) / 1_000;
    await sleep(spec.settleMs ?? 2_000);
    return {
      keys: spec.keys,
      valueBytes: spec.valueBytes,
      rssBeforeBytes,
      rssAfterBytes: rss(),
      loadSeconds: Math.round(loadSeconds * 10) / 10,
      loadOpsPerSec: Math.round(spec.keys / loadSeconds),
    };
  } finally {
    await target.close();
  }
}
