/**
 * The simulator's own contract. DESIGN.md pitfall "Links": FIFO sessions, reordering only across
 * links, a drop is a session break that loses everything in flight until the link heals, and then
 * `reconnected` is called on both sides.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';
import { type SimNode, SimulationError, Simulator } from './simulator.js';

interface Ping {
  readonly seq: number;
}

/** Sends `burst` numbered messages to every peer on each tick; records what it receives. */
class Chatty implements SimNode<Ping> {
  readonly got: Array<[number, number]> = [];
  readonly reconnects: number[] = [];
  private out: Array<{ to: number; message: Ping }> = [];
  private seq = 0;
  constructor(
    readonly pid: number,
    private readonly peers: number[],
    private readonly burst = 3,
  ) {}
  handle(from: number, m: Ping): void {
    this.got.push([from, m.seq]);
  }
  tick(): void {
    for (let i = 0; i < this.burst; i++)
      for (const p of this.peers) this.out.push({ to: p, message: { seq: this.seq++ } });
  }
  drainOutbox() {
    const o = this.out;
    this.out = [];
    return o;
  }
  reconnected(peer: number): void {
    this.reconnects.push(peer);
  }
}

function make(seed: number, extra: Partial<ConstructorParameters<typeof Simulator<Ping>>[0]> = {}) {
  const ids = [1, 2, 3];
  const nodes = new Map<number, Chatty>();
  const restarts: Array<[number, number]> = [];
  const sim = new Simulator<Ping>({
    seed,
    nodeIds: ids,
    maxDelay: 5,
    factory: (pid, count) => {
      restarts.push([pid, count]);
      const n = new Chatty(
        pid,
        ids.filter((p) => p !== pid),
      );
      nodes.set(pid, n);
      return n;
    },
    ...extra,
  });
  return { sim, nodes, restarts };
}

describe('Rng', () => {
  it('is deterministic per seed and covers its range', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.int(10));
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.int(10)));
    expect(new Set(xs).size).toBe(10);
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
  });
});

describe('Simulator', () => {
  it('replays exactly given the same seed', () => {
    const trace = (seed: number) => {
      const { sim, nodes } = make(seed);
      sim.run(50);
      return [...nodes.values()].map((n) => n.got.slice());
    };
    expect(trace(7)).toEqual(trace(7));
    expect(trace(7)).not.toEqual(trace(8));
  });

  it('delivers in FIFO order per link, interleaving across links', () => {
    const { sim, nodes } = make(3);
    sim.run(40);
    for (const n of nodes.values()) {
      const byPeer = new Map<number, number[]>();
      for (const [from, seq] of n.got) byPeer.set(from, [...(byPeer.get(from) ?? []), seq]);
      for (const seqs of byPeer.values()) expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    // Across links the order is mixed: node 1 does not receive all of 2's messages before 3's.
    const first = nodes
      .get(1)!
      .got.slice(0, 30)
      .map(([f]) => f);
    expect(new Set(first).size).toBe(2);
  });

  it('a drop breaks the session: in-flight messages are lost, nothing passes until it heals, then both sides get reconnected', () => {
    const { sim, nodes } = make(5);
    sim.tickAll(); // messages queued with delays
    expect(sim.pending(1, 2).length).toBeGreaterThan(0);
    sim.disconnect(1, 2);
    expect(sim.pending(1, 2)).toEqual([]);
    expect(sim.pending(2, 1)).toEqual([]);
    sim.run(10);
    expect(nodes.get(2)!.got.filter(([f]) => f === 1)).toEqual([]);
    sim.connect(1, 2);
    expect(nodes.get(1)!.reconnects).toEqual([2]);
    expect(nodes.get(2)!.reconnects).toEqual([1]);
    sim.run(10);
    expect(nodes.get(2)!.got.some(([f]) => f === 1)).toBe(true);
  });

  it('a crash drops the node object and its in-flight messages; a restart rebuilds it through the factory', () => {
    const { sim, nodes, restarts } = make(9);
    sim.run(3);
    const old = nodes.get(2)!;
    sim.crash(2);
    expect(sim.isUp(2)).toBe(false);
    expect(sim.pending(1, 2)).toEqual([]);
    sim.run(3);
    sim.restart(2);
    expect(restarts).toContainEqual([2, 1]);
    const fresh = nodes.get(2)!;
    expect(fresh).not.toBe(old);
    expect(fresh.reconnects.sort()).toEqual([1, 3]);
    expect(nodes.get(1)!.reconnects).toContain(2);
  });

  it('partitions: sessions across groups break, inside groups stay up', () => {
    const { sim } = make(1);
    sim.partition([[1, 2], [3]]);
    expect(sim.isConnected(1, 2)).toBe(true);
    expect(sim.isConnected(1, 3)).toBe(false);
    expect(sim.isConnected(2, 3)).toBe(false);
    sim.healAll();
    expect(sim.isConnected(2, 3)).toBe(true);
  });

  it('duplicates a message only right after itself on its link (FIFO kept)', () => {
    const { sim, nodes } = make(11, { duplicateProbability: 0.2 });
    sim.run(30);
    expect(sim.stats.duplicated).toBeGreaterThan(0);
    for (const n of nodes.values()) {
      const byPeer = new Map<number, number[]>();
      for (const [from, seq] of n.got) byPeer.set(from, [...(byPeer.get(from) ?? []), seq]);
      for (const seqs of byPeer.values()) expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  });

  it('reports an exception of a node with the seed to replay', () => {
    const sim = new Simulator<Ping>({
      seed: 1234,
      nodeIds: [1, 2],
      factory: (pid) => ({
        handle: () => {
          throw new Error('boom');
        },
        tick: () => {},
        drainOutbox: () => (pid === 1 ? [{ to: 2, message: { seq: 0 } }] : []),
        reconnected: () => {},
      }),
    });
    expect(() => sim.run(5)).toThrow(SimulationError);
    try {
      sim.run(5);
    } catch (e) {
      expect((e as SimulationError).seed).toBe(1234);
      expect((e as Error).message).toMatch(/replay with seed 1234.*boom/);
    }
  });
});
