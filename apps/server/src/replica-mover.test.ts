/**
 * Two metadata leaders run the same rejoin from different metadata versions (the session-5 full-suite
 * failure: a restarted server led the metadata group with a stale copy and re-ran a rejoin another
 * leader had finished), over a real replica group and a linearizable metadata register
 * (`test/mover-sim.ts`). Each step re-reads the move (`move-steps.ts`) and the group compares-and-sets
 * its configuration; with both rules broken on purpose the stale rejoin removes a replica the metadata
 * still lists.
 */
import { buildLookupTable, seedMetadata, startRejoin } from '@paxkv/bootstrap';
import { describe, expect, it } from 'vitest';
import { cluster, mover, nodes, register } from '../test/mover-sim.js';

async function staleRejoin(o: { unsafeGroup: boolean; unsafeMover: boolean }) {
  const { c, reconfigurer } = await cluster({ seed: 7, unsafeGroup: o.unsafeGroup });
  const seeded = seedMetadata(
    buildLookupTable({ nodes: nodes(3), partitions: 1, replication: 3, version: 1 }),
  );
  // Node 2's replica of partition 0 could not read its state: it asked to rejoin.
  const { reg, change } = register(startRejoin(seeded, 0, 2));
  const planned = reg.current;
  // The leader of the metadata group runs the rejoin: fence (configuration 1 without node 2), re-add.
  const fresh = mover({ reconfigurer: reconfigurer(), metadata: () => reg.current, change });
  fresh.run();
  expect(await c.runUntil(() => reg.current.moving.length === 0, 4000)).toBeGreaterThanOrEqual(0);
  expect(fresh.warnings).toEqual([]);
  expect(reg.current.table.groups[0]).toMatchObject({ replicas: [1, 2, 3], config: 2 });

  // The restarted server leads the metadata group for a moment, holding the version that planned it.
  const stale = mover({
    reconfigurer: reconfigurer(),
    metadata: () => planned,
    change,
    unsafe: o.unsafeMover ? 'heldMetadata' : 'none',
  });
  stale.run();
  expect(await c.runUntil(() => stale.warnings.length > 0, 4000)).toBeGreaterThanOrEqual(0);
  await c.runUntil(() => false, 200);
  return {
    warnings: stale.warnings,
    group: c.group(1)!.configuration,
    metadata: reg.current.table.groups[0],
  };
}

describe('ReplicaMover: a move run twice from different metadata versions', () => {
  it('the stale run stops before its first step: the move is no longer recorded (re-read through the metadata group)', async () => {
    const out = await staleRejoin({ unsafeGroup: false, unsafeMover: false });
    expect(out.warnings.join('\n')).toMatch(/no longer recorded at this step/);
    expect(out.group).toEqual({ configId: 2, members: [1, 2, 3] });
    expect(out.metadata).toMatchObject({ replicas: [1, 2, 3], config: 2 });
  });

  it('mutation: a step that trusts its stale copy is still refused by the group (configuration compare-and-set)', async () => {
    const out = await staleRejoin({ unsafeGroup: false, unsafeMover: true });
    expect(out.warnings.join('\n')).toMatch(/runs configuration 2 \[1, 2, 3\], not the expected 0/);
    expect(out.group).toEqual({ configId: 2, members: [1, 2, 3] });
  });

  it('mutation check: with both rules broken the stale rejoin removes node 2 behind the metadata (caught)', async () => {
    const out = await staleRejoin({ unsafeGroup: true, unsafeMover: true });
    // The group runs a configuration the metadata never recorded: node 2's replica never runs again.
    expect(out.group).toEqual({ configId: 3, members: [1, 3] });
    expect(out.metadata).toMatchObject({ replicas: [1, 2, 3], config: 2 });
  });
});
