/**
 * Bootstrap benchmark: cost of building and validating lookup tables, and of the coordinator's
 * per-message and per-tick work with many members. Run: `pnpm --filter @paxkv/bootstrap bench`.
 */
import { BootstrapCoordinator, buildLookupTable, validateLookupTable } from '../src/index.js';

function time<T>(label: string, iterations: number, f: (i: number) => T): void {
  for (let i = 0; i < Math.min(iterations, 50); i++) f(i);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) f(i);
  const per = (performance.now() - t0) / iterations;
  const human = per >= 1 ? `${per.toFixed(2)} ms` : `${(per * 1000).toFixed(2)} µs`;
  console.log(`${label.padEnd(58)} ${human.padStart(12)} per op  (${Math.round(1000 / per)} ops/s)`);
}

const nodes = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: i + 1, address: `10.0.${i >> 8}.${i & 255}:7000` }));

for (const [n, p, d] of [
  [3, 16, 3],
  [10, 256, 3],
  [100, 4096, 5],
] as const) {
  const input = { nodes: nodes(n), partitions: p, replication: d, version: 1 };
  time(`buildLookupTable n=${n} P=${p} δ=${d}`, n === 100 ? 50 : 2000, () => buildLookupTable(input));
  const t = buildLookupTable(input);
  time(`validateLookupTable n=${n} P=${p} δ=${d}`, n === 100 ? 50 : 2000, () => validateLookupTable(t));
}

for (const members of [10, 1000]) {
  const c = new BootstrapCoordinator({
    self: { address: '10.9.0.1:7000' },
    config: { threshold: 3, partitions: 64 },
  });
  for (let i = 0; i < members; i++)
    c.handleCheckin({ type: 'checkin', address: `10.1.${i >> 8}.${i & 255}:7000` }, 0);
  c.drainOutbox();
  let now = 0;
  const later = () => {
    now += 0.001;
    return now;
  };
  time(`coordinator heartbeat, ${members} members`, 200_000, (i) =>
    c.handleHeartbeat({ type: 'heartbeat', nodeId: 2 + (i % members) }, later()),
  );
  time(`coordinator tick, ${members} members`, 20_000, () => c.tick(later()));
  time(`coordinator re-check-in + drainOutbox, ${members} members`, members === 1000 ? 500 : 20_000, (i) => {
    c.handleCheckin({ type: 'checkin', address: `10.1.0.${2 + (i % 8)}:7000`, nodeId: 1 + (i % 8) + 1 }, now);
    return c.drainOutbox();
  });
}
