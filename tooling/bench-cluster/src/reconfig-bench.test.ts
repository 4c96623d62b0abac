import { describe, expect, it } from 'vitest';
import { parseBenchArgs, UsageError } from './options.js';
import {
  analyzeReconfig,
  formatReconfigResult,
  type ReconfigResult,
  steadyWorstShare,
  summarizeRounds,
} from './reconfig-bench.js';
import { analyzeTrace, formatTrace, movesDoneBetween, PutLog } from './reconfig-trace.js';

describe('analyzeReconfig', () => {
  it('takes the steady rate from the seconds before the fault and measures the dip after it', () => {
    // 4 steady seconds at 1000/s; the fault at second 4; a dip to 700 and 850, back to 1000.
    const f = analyzeReconfig([1000, 1000, 1000, 1000, 950, 700, 850, 1000, 980, 1000], 4, 3_500);
    expect(f.steadyOpsPerSec).toBe(1000);
    expect(f.worstShare).toBe(0.7);
    // The last second below 90% is the 3rd after the fault: lower for 3 s.
    expect(f.dipMs).toBe(3_000);
    expect(f.secondsBelowGoal).toBe(1);
    // Mean over the 4 seconds the moves took (ceil 3.5 s): (950 + 700 + 850 + 1000) / 4.
    expect(f.meanShareDuring).toBe(0.875);
    expect(f.goalMet).toBe(false);
  });

  it('meets the goal when no second is 20% lower and the throughput is back within 15 s', () => {
    const series = [500, 520, 480, 500, ...new Array(14).fill(420), ...new Array(10).fill(500)];
    const f = analyzeReconfig(series, 4, 14_000);
    expect(f.worstShare).toBe(0.84);
    expect(f.dipMs).toBe(14_000);
    expect(f.goalMet).toBe(true);
    // The same depth for 16 s is too long.
    const long = analyzeReconfig([500, 500, ...new Array(16).fill(420), 500, 500], 2, 16_000);
    expect(long.dipMs).toBe(16_000);
    expect(long.goalMet).toBe(false);
  });

  it('reports no dip when the throughput never drops below 90%', () => {
    const f = analyzeReconfig([100, 100, 95, 91, 100], 2, 1_000);
    expect(f.dipMs).toBe(0);
    expect(f.worstShare).toBe(0.91);
    expect(f.goalMet).toBe(true);
  });

  it('prints the per-second series and the goal verdict', () => {
    const r: ReconfigResult = {
      fault: 'remove',
      concurrency: 64,
      groupsMoved: 12,
      firstMoveMs: 300,
      reconfigMs: 2_500,
      errors: 0,
      seriesOpsPerSec: [90, 110, 50, 100],
      faultSecond: 2,
      ...analyzeReconfig([90, 110, 50, 100], 2, 2_500),
    };
    const text = formatReconfigResult(r).join('\n');
    expect(text).toContain('12 groups moved in 2.5 s');
    expect(text).toContain('worst second 50% of steady');
    expect(text).toContain('NOT met');
    expect(text).toContain('steady 90 110 | from the fault 50 100');
    // With the spread of the steady seconds (90 and 110 around their mean of 100), the noise floor.
    expect(text).toContain(
      'share of steady per second from the fault: 50% 100% (the steady seconds themselves: 90%-110%)',
    );
  });
});

describe('movesDoneBetween', () => {
  it('finds the moves off the victim that completed between two polls (most are shorter than the poll interval)', () => {
    const before = [
      { partition: 0, replicas: [1, 2, 3] },
      { partition: 1, replicas: [4, 1, 2] },
      { partition: 2, replicas: [3, 4, 1] },
      { partition: 3, replicas: [2, 3, 4] },
    ];
    const after = [
      { partition: 0, replicas: [1, 2, 3] },
      { partition: 1, replicas: [1, 2, 3] }, // 4 -> 3, done
      { partition: 2, replicas: [3, 4, 1] }, // not moved yet
      { partition: 3, replicas: [2, 3, 1] }, // 4 -> 1, done
    ];
    expect(movesDoneBetween(before, after, 4, 900)).toEqual([
      { partition: 1, from: 4, to: 3, firstSeenMs: 900, lastSeenMs: 900, doneWhenSeen: true },
      { partition: 3, from: 4, to: 1, firstSeenMs: 900, lastSeenMs: 900, doneWhenSeen: true },
    ]);
    expect(movesDoneBetween(after, after, 4, 1200)).toEqual([]);
  });
});

describe('analyzeTrace', () => {
  it('finds the stalled partitions, the slow puts per second, the errors and the client counters', () => {
    const puts = new PutLog();
    // Steady window starts at 0, the fault at 2000 (second 2). Fast puts everywhere...
    for (let t = 0; t < 5000; t += 10) puts.add(t % 4, t, t + 5);
    // ...and partition 3 stalled 3.1 s from 2500 (an attempt timeout), partition 1 for 150 ms at 3200.
    puts.add(3, 2500, 5600);
    puts.add(1, 3200, 3350);
    puts.add(1, 1000, 1400); // before the fault: not counted
    puts.fail('TIMEOUT');
    const samples = [0, 0, 0, 4, 4, 4].map((n) => ({ retries: n, calls: 100 }));
    const t = analyzeTrace(
      puts,
      2000,
      0,
      6,
      2,
      samples,
      [
        { partition: 3, from: 4, to: 1, firstSeenMs: 400, lastSeenMs: 700 },
        { partition: 5, from: 4, to: 2, firstSeenMs: 1300, lastSeenMs: 1300, doneWhenSeen: true },
      ],
      [3, 250, 4, 5, 6, 7],
    );
    expect(t.stalls.map((s) => [s.partition, s.maxMs, s.atMs, s.slowPuts])).toEqual([
      [3, 3100, 500, 1],
      [1, 150, 1200, 1],
    ]);
    // Slow puts by the second they completed in (from the fault): 3350 -> 1, 5600 -> 3.
    expect(t.slowPerSecond).toEqual([0, 1, 0, 1]);
    expect(t.slowPartitionPerSecond).toEqual([-1, 1, -1, 3]);
    expect(t.errorsByKind).toEqual({ TIMEOUT: 1 });
    expect(t.clientPerSecond.retries).toEqual([0, 0, 4, 0, 0]);
    // Client waiting: second 0 has 100 puts of 5 ms on partitions 0 and 2; second 1 also the 400 ms
    // put of partition 1; second 5 only partition 3's stalled put.
    expect(t.meanLatencyMsPerSecond[0]).toBeCloseTo(5);
    expect(t.topPartitionSharePerSecond[0]).toBeCloseTo(0.5);
    expect(t.meanLatencyMsPerSecond[1]).toBeCloseTo(900 / 101);
    expect(t.topPartitionSharePerSecond[1]).toBeCloseTo(400 / 900);
    expect(t.meanLatencyMsPerSecond[5]).toBeCloseTo(3100);
    expect(t.topPartitionSharePerSecond[5]).toBeCloseTo(1);
    const text = formatTrace('reconfig kill', t, 2).join('\n');
    expect(text).toContain('mean put latency ms steady 5.0 8.9 | from the fault');
    expect(text).toContain('share of it on the most-waited partition steady 50% 44% | from the fault');
    expect(text).toContain(
      "load generator's longest event-loop delay ms steady 3 250 | from the fault 4 5 6 7",
    );
    expect(text).toContain('p3 3100 ms at 0.5 s (1 slow)');
    expect(text).toContain('errors by kind: TIMEOUT 1');
    expect(text).toContain('retries 4 0 0');
    expect(text).toContain('p3 4->1 0.4-0.7, p5 4->2 done by 1.3');
    expect(text).not.toContain('servers per second');
  });

  it("prints the servers' CPU per put and forwarded requests apart from the client's counters", () => {
    // Cumulative samples: CPU 500 ms a second before the fault (second 2), 900 after; 1000 then 300 puts/s.
    const cpu = [0, 500, 1000, 1900, 2800];
    const samples = cpu.map((ms, i) => ({
      retries: 0,
      serverCpuMs: ms,
      // Main threads: 400 ms a second before the fault, 500 after (helpers 100, then 400).
      serverMainCpuMs: [0, 400, 800, 1300, 1800][i] as number,
      forwarded: i < 3 ? 0 : 40 * (i - 2),
      fsyncs: 100 * i,
      fsyncSeconds: i < 3 ? 0.2 * i : 0.4 + 0.5 * (i - 2),
    }));
    const t = analyzeTrace(new PutLog(), 2000, 0, 4, 2, samples, []);
    const text = formatTrace('reconfig remove', t, 2, [1000, 1000, 300, 300]).join('\n');
    expect(text).toContain(
      'servers per second (all processes): CPU ms 500 500 | from the fault 900 900; of it helper threads (V8 compiler and GC, libuv) 100 100 | from the fault 400 400; CPU µs per put 500 500 | from the fault 3000 3000; forwarded requests 0 0 | from the fault 40 40; WAL syncs 100 100 | from the fault 100 100; mean sync ms 2.0 2.0 | from the fault 5.0 5.0',
    );
    expect(text).not.toMatch(/client per second[^\n]*serverCpuMs/);
    expect(text).not.toContain('event-loop delay');
  });
});

describe('summarizeRounds', () => {
  const result = (fault: 'remove' | 'kill', series: number[]): ReconfigResult => ({
    fault,
    concurrency: 64,
    groupsMoved: 12,
    firstMoveMs: 300,
    reconfigMs: 2_000,
    errors: 0,
    seriesOpsPerSec: series,
    faultSecond: 4,
    ...analyzeReconfig(series, 4, 2_000),
  });

  it('gives the median worst second, the rounds that met the goal and the steady windows as a control', () => {
    const rs = [
      // Steady 1000 (lowest steady second 900: 90%); worst 700 after the fault: not met.
      result('remove', [900, 1100, 1000, 1000, 700, 950, 1000]),
      // Steady 1000 (lowest 700: the steady window itself would "fail"); worst 850: met.
      result('remove', [700, 1300, 1000, 1000, 850, 1000, 1000]),
      // Steady 1000 (lowest 1000); worst 950: met.
      result('remove', [1000, 1000, 1000, 1000, 950, 1000, 1000]),
      result('kill', [1000, 1000, 1000, 1000, 500, 1000, 1000]),
    ];
    expect(steadyWorstShare(rs[1] as ReconfigResult)).toBeCloseTo(0.7);
    const lines = summarizeRounds(rs, ['remove', 'kill']);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('reconfig remove over 3 rounds: worst second median 85% (70% 85% 95%)');
    expect(lines[0]).toContain('goal met in 2 of 3');
    expect(lines[0]).toContain(
      'control, the steady windows by the same rule: worst second median 90% (90% 70% 100%), below 80% in 1 of 3',
    );
    expect(lines[1]).toContain('reconfig kill over 1 round: worst second median 50% (50%)');
    expect(lines[1]).toContain('goal met in 0 of 1');
    // A fault without any result (all rounds failed) gives no line.
    expect(summarizeRounds(rs.slice(0, 1), ['remove', 'kill'])).toHaveLength(1);
  });
});

describe('--reconfig flags', () => {
  it('parses the faults, windows and --replace-after, and refuses --reconfig with --tls', () => {
    const parsed = parseBenchArgs([
      '--reconfig',
      '--reconfig-faults',
      'kill',
      '--reconfig-steady',
      '3s',
      '--reconfig-tail',
      '2s',
      '--replace-after',
      '2',
      '--reconfig-rounds',
      '3',
    ]);
    if (parsed.help) throw new Error('unexpected help');
    expect(parsed.options).toMatchObject({
      reconfig: true,
      reconfigFaults: ['kill'],
      reconfigSteadyMs: 3_000,
      reconfigTailMs: 2_000,
      reconfigReplaceAfterS: 2,
      reconfigRounds: 3,
    });
    expect(() => parseBenchArgs(['--reconfig', '--reconfig-rounds', '0'])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--reconfig', '--tls'])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--reconfig-faults', 'crash'])).toThrow(/unknown "crash"/);
    expect(() => parseBenchArgs(['--reconfig-steady', '500ms'])).toThrow(/at least 1s/);
  });
});
