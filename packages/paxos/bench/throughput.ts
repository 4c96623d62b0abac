/**
 * Throughput of the consensus core: decided commands per second for 3 replicas in one process, over
 * the simulator's network at zero latency, 100-byte commands, with batching. Run with
 * `pnpm --filter @paxkv/paxos bench` (options: --commands N, --batch B, --window W).
 *
 * "Decided" counts a command once, when it is decided at the leader; the run ends only when every
 * replica has decided (and drained) every command, so followers' work is included in the time.
 */
import { type LogEntry, MemoryStorage, type PaxosMessage, SequencePaxos } from '../src/index.js';
import { type SimNode, Simulator } from '../src/testing/index.js';

type Cmd = Uint8Array;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

class BenchNode implements SimNode<PaxosMessage<LogEntry<Cmd>>> {
  decided = 0;
  constructor(readonly paxos: SequencePaxos<Cmd>) {}
  handle(from: number, m: PaxosMessage<LogEntry<Cmd>>): void {
    this.paxos.handle(from, m);
    this.decided += this.paxos.drainDecided().length;
  }
  tick(): void {
    this.paxos.tick();
  }
  drainOutbox() {
    return this.paxos.drainOutbox();
  }
  reconnected(peer: number): void {
    this.paxos.reconnected(peer);
  }
}

interface Result {
  batch: number;
  commands: number;
  seconds: number;
  perSecond: number;
  messages: number;
}

function run(commands: number, batch: number, window: number): Result {
  const ids = [1, 2, 3];
  const nodes = new Map<number, BenchNode>();
  const sim = new Simulator<PaxosMessage<LogEntry<Cmd>>>({
    seed: 1,
    nodeIds: ids,
    minDelay: 0,
    maxDelay: 0,
    factory: (pid) => {
      const n = new BenchNode(
        new SequencePaxos<Cmd>({
          pid,
          peers: ids.filter((p) => p !== pid),
          storage: new MemoryStorage<Cmd>(),
          config: { maxBatchSize: batch, maxInflight: window, maxPendingProposals: window * 4 },
        }),
      );
      nodes.set(pid, n);
      return n;
    },
  });
  if (
    sim.runUntil(
      () => ids.some((p) => nodes.get(p)?.paxos.phase === 'accept' && nodes.get(p)?.paxos.role === 'leader'),
      500,
    ) < 0
  ) {
    throw new Error('no leader elected');
  }
  const leaderPid = ids.find((p) => nodes.get(p)?.paxos.role === 'leader') as number;
  const leader = nodes.get(leaderPid) as BenchNode;
  // A pool of distinct 100-byte commands (the core never looks inside them).
  const pool = Array.from({ length: 4096 }, (_, i) => {
    const c = new Uint8Array(100);
    c.fill(i & 0xff);
    return c;
  });
  const base = leader.paxos.decidedIndex;
  const startMsgs = sim.stats.delivered;
  const t0 = performance.now();
  let proposed = 0;
  const target = base + commands;
  const allDone = () => ids.every((p) => (nodes.get(p) as BenchNode).paxos.decidedIndex >= target);
  while (!allDone()) {
    // Keep the pipeline full: propose up to `window` commands beyond what the leader decided.
    const room = Math.min(commands - proposed, window - (proposed - (leader.paxos.decidedIndex - base)));
    if (room > 0) {
      sim.withNode(leaderPid, () => {
        for (let i = 0; i < room; i++) leader.paxos.propose(pool[(proposed + i) & 4095] as Cmd);
      });
      proposed += room;
    }
    if (sim.deliverDue() === 0 && room <= 0) sim.step();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    batch,
    commands,
    seconds,
    perSecond: commands / seconds,
    messages: sim.stats.delivered - startMsgs,
  };
}

const commands = arg('--commands', 2_000_000);
const window = arg('--window', 65_536);
const batches = process.argv.includes('--batch') ? [arg('--batch', 1024)] : [64, 256, 1024, 4096];
console.log(`paxos core throughput: 3 replicas, one process, zero-latency simulated network, 100 B commands`);
console.log(`commands per run: ${commands}, pipelining window: ${window} entries`);
run(Math.min(commands, 200_000), 1024, window); // warm-up (JIT)
for (const batch of batches) {
  const r = run(commands, batch, window);
  console.log(
    `maxBatchSize=${String(r.batch).padStart(5)}  ${Math.round(r.perSecond).toLocaleString('en-US').padStart(11)} decided commands/s  (${r.seconds.toFixed(2)} s, ${r.messages} messages delivered)`,
  );
}
