import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each slow test file took in a full run (`pnpm test` at 07:00 UTC on 2026-12-06, default tier,
 * two workers, on a 2-core machine at load average 35: every figure is about 3-5 times its quiet value,
 * and CPU-bound simulations stretch more than tests that wait on events). Only the ORDER of the run
 * depends on these figures: with two workers the longest files must start first, or one of them starts
 * last and the run waits for it alone. A file missing here (or slower than written) only costs wall time,
 * never a result. Vitest's own cache of the last run's durations (in `node_modules/.vite`) takes
 * precedence where it exists; this table is for a fresh clone (CI), which has no cache.
 */
export const EXPECTED_SECONDS: Readonly<Record<string, number>> = {
  'packages/kvstore/src/testing/group-simulation.test.ts': 473,
  'packages/paxos/src/testing/reconfiguration.test.ts': 211,
  'tooling/nemesis/src/nemesis.e2e.test.ts': 196,
  'scripts/readme-examples.test.ts': 100,
  'apps/cli/test/e2e.test.ts': 75,
  'apps/cli/test/security.e2e.test.ts': 70,
  'apps/server/test/hostile-peers.test.ts': 61,
  'apps/cli/test/snapshot.e2e.test.ts': 53,
  'apps/server/test/client-auth.test.ts': 53,
  'tooling/bench-cluster/src/paxkv.test.ts': 51,
  'packages/linearizability-checker/test/porcupine-histories.test.ts': 44,
  'packages/paxos/src/testing/simulation-five.test.ts': 42,
  'packages/kvstore/src/testing/lease-watch-simulation.test.ts': 38,
  'packages/paxos/src/testing/simulation.test.ts': 33,
  'apps/cli/test/cluster-add.e2e.test.ts': 30,
  'apps/server/test/locks.test.ts': 27,
  'apps/server/test/rejoin.test.ts': 26,
  'apps/server/test/resp-cluster.test.ts': 25,
  'apps/server/test/cluster.test.ts': 23,
  'apps/server/test/resp-faults.test.ts': 23,
  'tooling/bench-cluster/src/tls-bench.test.ts': 22,
  'tooling/nemesis/src/blackhole.e2e.test.ts': 22,
  'apps/server/test/watch.test.ts': 19,
  'apps/server/test/hostile-auth.test.ts': 17,
};

/**
 * Runs the test files longest first, across projects (vitest's default runs project after project, and
 * within a project longest first only when it has a cache of a previous run). Longest-first keeps both
 * workers busy to the end of the run.
 */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const cache = this.ctx.cache;
    const estimate = (spec: TestSpecification): number => {
      const path = relative(root, spec.moduleId);
      const cached = cache.getFileTestResults(`${spec.project.name}:${path}`)?.duration;
      if (cached !== undefined && cached > 0) return cached;
      const expected = EXPECTED_SECONDS[path];
      // Unknown files: a test file's size is a weak hint, and they are all short.
      return expected !== undefined
        ? expected * 1000
        : (cache.getFileStats(`${spec.project.name}:${path}`)?.size ?? 0) / 100;
    };
    const weights = new Map(files.map((f) => [f, estimate(f)] as const));
    return [...files].sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        (weights.get(b) ?? 0) - (weights.get(a) ?? 0),
    );
  }
}
