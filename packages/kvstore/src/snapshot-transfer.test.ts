/**
 * Chunked snapshot transfer between two ends over a hostile link (loss, duplication, reordering,
 * corruption, a receiver restart), every bound of the wire messages, and the mutation check: a receiver
 * that appends chunks whatever their offset and skips the checksum is caught delivering wrong bytes.
 */
import type { NodeId, ReconfigMessage } from '@paxkv/paxos';
import { Rng } from '@paxkv/paxos/testing';
import { describe, expect, it } from 'vitest';
import {
  checkGroupMessage,
  DEFAULT_SNAPSHOT_TRANSFER_CONFIG,
  isSnapshotTransferMessage,
  MAX_TRANSFER_CHUNK_BYTES,
  type SnapshotChunk,
  type SnapshotChunkAck,
  SnapshotTransfer,
  type SnapshotTransferConfig,
  type SnapshotTransferMessage,
  TransferBudget,
} from './snapshot-transfer.js';

const SENDER = 1;
const RECEIVER = 2;

/** An AcceptSync carrying a snapshot of `size` pseudo-random bytes (a catch-up message). */
function acceptSync(size: number, seed: number, round = 3): ReconfigMessage<unknown> {
  const data = new Uint8Array(size);
  const rng = new Rng(seed);
  for (let i = 0; i < size; i++) data[i] = rng.int(256);
  return {
    type: 'Paxos',
    config: 0,
    msg: {
      type: 'AcceptSync',
      n: { n: round, pid: SENDER },
      syncIndex: 40,
      entries: [],
      snapshot: { index: 40, data },
      decidedIndex: 40,
    },
  };
}

function snapshotOf(m: ReconfigMessage<unknown>): Uint8Array {
  if (m.type !== 'Paxos' || m.msg.type !== 'AcceptSync' || m.msg.snapshot === null)
    throw new Error('no snapshot');
  return m.msg.snapshot.data;
}

/** Byte equality (vitest's deep equality walks typed arrays element by element: slow). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

interface Wire {
  readonly to: NodeId;
  readonly message: SnapshotTransferMessage;
}

interface LinkFaults {
  readonly loss?: number;
  readonly duplicate?: number;
  /** Chance that a delivery picks a random queued message instead of the oldest. */
  readonly reorder?: number;
  /** Chance that a chunk's data gets one byte flipped. */
  readonly corrupt?: number;
}

/**
 * Runs a transfer of `message` from SENDER to RECEIVER over a faulty link (seeded), ticking both ends,
 * until the sender considers it complete or `maxSteps` pass. Returns what the receiver delivered.
 */
function runTransfer(
  message: ReconfigMessage<unknown>,
  seed: number,
  faults: LinkFaults,
  config: Partial<SnapshotTransferConfig>,
  receiverConfig: Partial<SnapshotTransferConfig> = config,
  hooks: {
    onStep?: (ends: {
      receiver: SnapshotTransfer;
      restart: () => SnapshotTransfer;
    }) => SnapshotTransfer | undefined;
    maxSteps?: number;
  } = {},
) {
  const rng = new Rng(seed);
  const queue: Wire[] = [];
  const sender = new SnapshotTransfer(config, (to, m) => queue.push({ to, message: m }));
  const makeReceiver = () => new SnapshotTransfer(receiverConfig, (to, m) => queue.push({ to, message: m }));
  let receiver = makeReceiver();
  const delivered: Uint8Array[] = [];
  expect(sender.offer(RECEIVER, message)).toBe(true);
  let steps = 0;
  for (; steps < (hooks.maxSteps ?? 20_000) && sender.stats.completed === 0; steps++) {
    const replaced = hooks.onStep?.({ receiver, restart: makeReceiver });
    if (replaced) receiver = replaced;
    if (steps % 3 === 0) {
      sender.tick();
      receiver.tick();
    }
    for (let k = 0; k < 4 && queue.length > 0; k++) {
      const at = rng.chance(faults.reorder ?? 0) ? rng.int(queue.length) : 0;
      const [w] = queue.splice(at, 1) as [Wire];
      if (rng.chance(faults.loss ?? 0)) continue;
      let m = w.message;
      if (m.type === 'SnapshotChunk' && rng.chance(faults.corrupt ?? 0)) {
        const data = new Uint8Array(m.data);
        const i = rng.int(data.length);
        data[i] = (data[i] as number) ^ 0x40;
        m = { ...m, data };
      }
      if (rng.chance(faults.duplicate ?? 0)) queue.splice(rng.int(queue.length + 1), 0, { ...w, message: m });
      if (w.to === RECEIVER) {
        if (m.type !== 'SnapshotChunk') throw new Error('the receiver got an ack');
        const r = receiver.receive(SENDER, m);
        if (r.kind === 'delivered') delivered.push(snapshotOf(r.message));
      } else if (m.type === 'SnapshotAck') {
        sender.onAck(RECEIVER, m);
      }
    }
  }
  return { sender, receiver, delivered, steps };
}

const SMALL: Partial<SnapshotTransferConfig> = { chunkBytes: 1024, windowChunks: 4, resendTicks: 4 };

describe('SnapshotTransfer', () => {
  it('sends a message no larger than one chunk as it is', () => {
    const t = new SnapshotTransfer(SMALL, () => {
      throw new Error('must not send');
    });
    expect(t.offer(RECEIVER, acceptSync(500, 1))).toBe(false);
    // Only catch-up messages are taken, whatever their size.
    const accept: ReconfigMessage<unknown> = {
      type: 'Paxos',
      config: 0,
      msg: { type: 'Accept', n: { n: 1, pid: 1 }, start: 0, entries: ['x'.repeat(5000)], decidedIndex: 0 },
    };
    expect(t.offer(RECEIVER, accept)).toBe(false);
  });

  it('delivers exactly the bytes sent, once, over a clean link, in bounded chunks', () => {
    const m = acceptSync(50_000, 2);
    const { sender, receiver, delivered } = runTransfer(m, 1, {}, SMALL);
    expect(delivered).toHaveLength(1);
    expect(same(delivered[0] as Uint8Array, snapshotOf(m))).toBe(true);
    expect(sender.stats.completed).toBe(1);
    // The snapshot's bytes in 1 KiB chunks, then the rest of the message (its head) in one.
    expect(sender.stats.chunksSent).toBe(Math.ceil(50_000 / 1024) + 1);
    expect(receiver.stagedBytes).toBe(0);
  });

  it('delivers exactly the bytes sent under loss, duplication, reordering and corruption (40 seeds)', () => {
    const m = acceptSync(30_000, 3);
    const want = snapshotOf(m);
    let discarded = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { sender, receiver, delivered } = runTransfer(
        m,
        seed,
        { loss: 0.05, duplicate: 0.1, reorder: 0.2, corrupt: 0.01 },
        SMALL,
      );
      expect(sender.stats.completed, `seed ${seed}`).toBe(1);
      expect(delivered.length, `seed ${seed}`).toBeGreaterThanOrEqual(1);
      for (const d of delivered) expect(same(d, want), `seed ${seed}`).toBe(true);
      discarded += receiver.stats.discarded;
    }
    // Corrupted chunks were caught by the checksum (and the transfer started over).
    expect(discarded).toBeGreaterThan(0);
  });

  it('mutation: a receiver that ignores offsets and the checksum is caught delivering wrong bytes', () => {
    const m = acceptSync(30_000, 3);
    const want = snapshotOf(m);
    let wrong = 0;
    for (let seed = 1; seed <= 10 && wrong === 0; seed++) {
      const { delivered } = runTransfer(
        m,
        seed,
        { reorder: 0.1 },
        SMALL,
        { ...SMALL, unsafeMutation: 'unverifiedChunks' },
        { maxSteps: 3000 },
      );
      for (const d of delivered) if (!same(d, want)) wrong++;
    }
    expect(wrong).toBeGreaterThan(0);
  });

  it('starts over when the receiver restarts mid-transfer (its staging is gone, nothing was installed)', () => {
    const m = acceptSync(40_000, 4);
    let restarted = false;
    const { sender, delivered } = runTransfer(m, 5, {}, SMALL, SMALL, {
      onStep: ({ receiver, restart }) => {
        if (restarted || receiver.stagedBytes < 10_000) return undefined;
        restarted = true;
        return restart();
      },
    });
    expect(restarted).toBe(true);
    expect(sender.stats.completed).toBe(1);
    expect(delivered).toHaveLength(1);
    expect(same(delivered[0] as Uint8Array, snapshotOf(m))).toBe(true);
  });

  it('does not restart a transfer already on its way; a newer ballot supersedes it', () => {
    const sent: SnapshotTransferMessage[] = [];
    const t = new SnapshotTransfer(SMALL, (_to, m) => sent.push(m));
    expect(t.offer(RECEIVER, acceptSync(10_000, 6))).toBe(true);
    expect(t.offer(RECEIVER, acceptSync(10_000, 6))).toBe(true);
    expect(t.stats).toMatchObject({ started: 1, deduplicated: 1 });
    expect(sent).toHaveLength(4); // one window
    expect(t.offer(RECEIVER, acceptSync(10_000, 6, 4))).toBe(true);
    expect(t.stats).toMatchObject({ started: 2, abandoned: 1 });
    const ids = new Set(sent.map((m) => (m as SnapshotChunk).id));
    expect(ids.size).toBe(2);
  });

  it('keeps at most one window of chunks unacknowledged', () => {
    const sent: SnapshotTransferMessage[] = [];
    const t = new SnapshotTransfer(SMALL, (_to, m) => sent.push(m));
    t.offer(RECEIVER, acceptSync(100_000, 7));
    expect(sent).toHaveLength(4);
    for (let i = 0; i < 50; i++) t.tick(); // resends, still one window at a time
    const offsets = sent.map((m) => (m as SnapshotChunk).offset);
    expect(Math.max(...offsets)).toBe(3 * 1024);
    t.onAck(RECEIVER, { type: 'SnapshotAck', id: (sent[0] as SnapshotChunk).id, next: 2048, done: false });
    expect(Math.max(...sent.map((m) => (m as SnapshotChunk).offset))).toBe(5 * 1024);
  });

  it('recognises a request whose answer is streaming (the core would only rebuild it)', () => {
    const chunks: SnapshotChunk[] = [];
    new SnapshotTransfer(SMALL, (_to, x) => chunks.push(x as SnapshotChunk)).offer(
      RECEIVER,
      acceptSync(20_000, 12),
    );
    const r = new SnapshotTransfer(SMALL, () => {});
    const prepareReq = (n: number, pid = SENDER): ReconfigMessage<unknown> => ({
      type: 'Paxos',
      config: 0,
      msg: { type: 'PrepareReq', n: { n, pid } },
    });
    expect(r.answersInFlight(SENDER, prepareReq(3))).toBe(false); // nothing staged yet
    r.receive(SENDER, chunks[0] as SnapshotChunk);
    expect(r.answersInFlight(SENDER, prepareReq(3))).toBe(true);
    expect(r.answersInFlight(SENDER, prepareReq(4))).toBe(false); // another ballot
    expect(r.answersInFlight(3, prepareReq(3))).toBe(false); // another peer
    expect(r.answersInFlight(SENDER, { type: 'JoinRequest', config: 0 })).toBe(false); // another kind
    const prepare: ReconfigMessage<unknown> = {
      type: 'Paxos',
      config: 0,
      msg: {
        type: 'Prepare',
        n: { n: 3, pid: SENDER },
        decidedIndex: 0,
        acceptedRound: { n: 0, pid: 0 },
        logLength: 0,
      },
    };
    expect(r.answersInFlight(SENDER, prepare)).toBe(false); // a Prepare asks for a Promise
    for (let i = 0; i < 2 * (SMALL.resendTicks as number); i++) r.tick();
    expect(r.answersInFlight(SENDER, prepareReq(3))).toBe(false); // stalled: ask again
  });

  it('a new transfer of the same snapshot (a new ballot) goes on from the staged bytes', () => {
    const toReceiver: SnapshotChunk[] = [];
    const toSender: SnapshotChunkAck[] = [];
    const sender = new SnapshotTransfer(SMALL, (_to, m) => toReceiver.push(m as SnapshotChunk));
    const receiver = new SnapshotTransfer(SMALL, (_to, m) => toSender.push(m as SnapshotChunkAck));
    let delivered: ReconfigMessage<unknown> | undefined;
    const exchange = (until: () => boolean) => {
      while (!until() && toReceiver.length + toSender.length > 0) {
        const c = toReceiver.shift();
        if (c) {
          const r = receiver.receive(SENDER, c);
          if (r.kind === 'delivered') delivered = r.message;
        }
        const a = toSender.shift();
        if (a) sender.onAck(RECEIVER, a);
      }
    };
    sender.offer(RECEIVER, acceptSync(40_000, 13, 3));
    exchange(() => receiver.stagedBytes >= 20_000);
    const staged = receiver.stagedBytes;
    toReceiver.length = 0; // the old leader's chunks in flight are lost
    toSender.length = 0;
    const m = acceptSync(40_000, 13, 4); // re-elected with ballot 4: same snapshot, a new transfer
    sender.offer(RECEIVER, m);
    const before = sender.stats.chunksSent;
    const offsets: number[] = [];
    const sent = toReceiver;
    exchange(() => {
      for (const c of sent) if (!offsets.includes(c.offset)) offsets.push(c.offset);
      return delivered !== undefined;
    });
    expect(receiver.stats.resumed).toBe(1);
    expect(delivered).toBeDefined();
    expect(same(snapshotOf(delivered as ReconfigMessage<unknown>), snapshotOf(m))).toBe(true);
    expect((delivered as { msg: { n: { n: number } } }).msg.n.n).toBe(4);
    // Only the first window was sent again below what was staged; the rest went on from there.
    expect(offsets.filter((o) => o < staged).length).toBeLessThanOrEqual(4);
    expect(sender.stats.chunksSent - before).toBeLessThan(Math.ceil(40_000 / 1024));
  });

  it('after a session reset, resends from the last acknowledged offset, and again until acknowledged', () => {
    const sent: SnapshotChunk[] = [];
    const t = new SnapshotTransfer(SMALL, (_to, m) => sent.push(m as SnapshotChunk));
    t.offer(RECEIVER, acceptSync(20_000, 14));
    const id = (sent[0] as SnapshotChunk).id;
    t.onAck(RECEIVER, { type: 'SnapshotAck', id, next: 2048, done: false }); // 2 more chunks go out
    sent.length = 0;
    t.peerReset(RECEIVER); // the link broke: the window in flight is lost
    expect(sent.map((c) => c.offset)).toEqual([2048, 3072, 4096, 5120]);
    sent.length = 0;
    for (let i = 0; i < (SMALL.resendTicks as number); i++) t.tick();
    expect(sent.map((c) => c.offset)).toEqual([2048, 3072, 4096, 5120]);
  });

  it("shares one staging budget between a server's groups, and gives every byte back", () => {
    const budget = new TransferBudget(5000);
    const chunks: SnapshotChunk[] = [];
    new SnapshotTransfer(SMALL, (_to, m) => chunks.push(m as SnapshotChunk)).offer(
      RECEIVER,
      acceptSync(20_000, 15),
    );
    const a = new SnapshotTransfer(SMALL, () => {}, undefined, budget);
    const b = new SnapshotTransfer(SMALL, () => {}, undefined, budget);
    for (const c of chunks.slice(0, 3)) expect(a.receive(SENDER, c).kind).toBe('staged');
    expect(budget.usedBytes).toBe(3072);
    expect(b.receive(SENDER, chunks[0] as SnapshotChunk).kind).toBe('staged');
    expect(b.receive(SENDER, chunks[1] as SnapshotChunk)).toMatchObject({ kind: 'refused' }); // 5120 > 5000
    expect(b.stagedBytes).toBe(1024);
    for (let i = 0; i < DEFAULT_SNAPSHOT_TRANSFER_CONFIG.idleTimeoutTicks; i++) a.tick();
    expect(budget.usedBytes).toBe(1024); // a's idle staging gave its bytes back
    b.clear();
    expect(budget.usedBytes).toBe(0);
    // A whole transfer through a shared budget ends with nothing held.
    const m = acceptSync(4000, 16);
    const wire: SnapshotTransferMessage[] = [];
    const tx = new SnapshotTransfer(SMALL, (_to, x) => wire.push(x));
    const rx = new SnapshotTransfer(SMALL, (_to, x) => wire.push(x), undefined, budget);
    tx.offer(RECEIVER, m);
    let delivered = false;
    while (wire.length > 0) {
      const x = wire.shift() as SnapshotTransferMessage;
      if (x.type === 'SnapshotAck') tx.onAck(RECEIVER, x);
      else delivered ||= rx.receive(SENDER, x).kind === 'delivered';
    }
    expect(delivered).toBe(true);
    expect(budget.usedBytes).toBe(0);
  });

  it('a restarted sender (ids from 1 again) is not mistaken for the transfer it delivered before', () => {
    const first = acceptSync(5000, 17);
    const again = acceptSync(5000, 18); // same sizes and ballot, other bytes
    const toSender: SnapshotChunkAck[] = [];
    const receiver = new SnapshotTransfer(SMALL, (_to, x) => toSender.push(x as SnapshotChunkAck));
    const run = (m: ReconfigMessage<unknown>) => {
      const chunks: SnapshotChunk[] = [];
      const outcomes: ReturnType<SnapshotTransfer['receive']>[] = [];
      const sender = new SnapshotTransfer(SMALL, (_to, x) => chunks.push(x as SnapshotChunk));
      sender.offer(RECEIVER, m);
      while (chunks.length + toSender.length > 0) {
        const c = chunks.shift();
        if (c) outcomes.push(receiver.receive(SENDER, c));
        const a = toSender.shift();
        if (a) sender.onAck(RECEIVER, a);
      }
      return outcomes;
    };
    expect(run(first).some((r) => r.kind === 'delivered')).toBe(true);
    const second = run(again).find((r) => r.kind === 'delivered');
    expect(second).toBeDefined();
    expect(
      same(snapshotOf((second as { message: ReconfigMessage<unknown> }).message), snapshotOf(again)),
    ).toBe(true);
  });

  it('drops an idle transfer on both sides', () => {
    const cfg = { ...SMALL, idleTimeoutTicks: 20 };
    const toReceiver: SnapshotTransferMessage[] = [];
    const events: string[] = [];
    const sender = new SnapshotTransfer(
      cfg,
      (_to, m) => toReceiver.push(m),
      (e) => events.push(`${e.event} ${e.type} to ${e.to} ${e.bytes > 20_000 ? 'all bytes' : e.bytes}`),
    );
    const receiver = new SnapshotTransfer(cfg, () => {});
    sender.offer(RECEIVER, acceptSync(20_000, 8));
    receiver.receive(SENDER, toReceiver[0] as SnapshotChunk);
    expect(receiver.stagedBytes).toBe(1024);
    for (let i = 0; i < 20; i++) {
      sender.tick();
      receiver.tick();
    }
    expect(receiver.stagedBytes).toBe(0);
    expect(receiver.stats.discarded).toBe(1);
    expect(sender.stats.abandoned).toBe(1);
    expect(events).toEqual([
      `started AcceptSync to ${RECEIVER} all bytes`,
      `abandoned AcceptSync to ${RECEIVER} all bytes`,
    ]);
  });

  it('refuses a transfer over its cap, and stages at most two senders', () => {
    const big = new SnapshotTransfer({ ...SMALL, maxBytes: 5000 }, () => {});
    const chunks: SnapshotChunk[] = [];
    new SnapshotTransfer(SMALL, (_to, m) => chunks.push(m as SnapshotChunk)).offer(
      RECEIVER,
      acceptSync(20_000, 9),
    );
    expect(big.receive(SENDER, chunks[0] as SnapshotChunk)).toMatchObject({ kind: 'refused' });
    expect(big.stagedBytes).toBe(0);
    const r = new SnapshotTransfer(SMALL, () => {});
    for (const from of [3, 4, 5]) r.receive(from, chunks[0] as SnapshotChunk);
    expect(r.stagedBytes).toBe(2 * 1024);
    // Both stagings are progressing: the third sender is refused (it resends from 0 later) and
    // nothing is evicted (evicting them in turn let senders evict each other forever).
    expect(r.stats.discarded).toBe(0);
    // Once the idlest made no progress for two resend intervals, a new sender takes its place.
    for (let i = 0; i < 2 * 4; i++) r.tick(); // SMALL.resendTicks is 4
    r.receive(5, chunks[0] as SnapshotChunk);
    expect(r.stats.discarded).toBe(1);
    expect(r.stagedBytes).toBe(2 * 1024);
  });

  it('discards a transfer whose chunks disagree with the message they carry', () => {
    const m = acceptSync(3000, 10);
    const chunks: SnapshotChunk[] = [];
    new SnapshotTransfer(SMALL, (_to, x) => chunks.push(x as SnapshotChunk)).offer(RECEIVER, m);
    // Same bytes, but the chunks claim another ballot than the AcceptSync inside.
    const liar = chunks.map((c) => ({ ...c, n: { n: 9, pid: SENDER } }));
    const r = new SnapshotTransfer(SMALL, () => {});
    const outcomes = liar.map((c) => r.receive(SENDER, c));
    expect(outcomes.at(-1)).toMatchObject({ kind: 'discarded' });
    expect(r.stats.delivered).toBe(0);
  });

  it('bounds every field of a transfer message from the wire', () => {
    const chunks: SnapshotChunk[] = [];
    new SnapshotTransfer(SMALL, (_to, x) => chunks.push(x as SnapshotChunk)).offer(
      RECEIVER,
      acceptSync(3000, 11),
    );
    const c = chunks[0] as SnapshotChunk;
    expect(isSnapshotTransferMessage(c)).toBe(true);
    expect(checkGroupMessage(SENDER, c)).toBeNull();
    const bad: unknown[] = [
      { ...c, id: -1 },
      { ...c, id: 2 ** 60 },
      { ...c, config: 1.5 },
      { ...c, kind: 'Accept' },
      { ...c, n: null },
      { ...c, kind: 'JoinState' }, // a JoinState has no ballot
      { ...c, n: { n: 2 ** 50, pid: 1 } },
      { ...c, sum: new Uint8Array(31) },
      { ...c, headSum: new Uint8Array(33) },
      { ...c, dataBytes: c.total }, // no head
      { ...c, dataBytes: 100 }, // the chunk spans the snapshot and the head
      { ...c, dataBytes: -1 },
      { ...c, data: new Uint8Array(0) },
      { ...c, data: new Uint8Array(MAX_TRANSFER_CHUNK_BYTES + 1), total: MAX_TRANSFER_CHUNK_BYTES * 2 },
      { ...c, offset: c.total - 10 }, // runs past the total
      { ...c, total: Number.MAX_SAFE_INTEGER + 2 },
      { ...c, data: 'bytes' },
      { type: 'SnapshotAck', id: 1, next: -1, done: false },
      { type: 'SnapshotAck', id: 1, next: 5, done: 'yes' },
    ];
    for (const b of bad) {
      expect(
        isSnapshotTransferMessage(b),
        JSON.stringify(b, (_k, v) => (v instanceof Uint8Array ? v.length : v)),
      ).toBe(false);
      expect(checkGroupMessage(SENDER, b)).toBe('malformed');
    }
    expect(isSnapshotTransferMessage({ type: 'SnapshotAck', id: 1, next: 5, done: true })).toBe(true);
    // Reconfiguration messages still go through the paxos package's validation.
    expect(checkGroupMessage(SENDER, { type: 'JoinRequest', config: 2 })).toBeNull();
    expect(checkGroupMessage(SENDER, { type: 'JoinRequest', config: -2 })).toBe('malformed');
  });

  it('checks its config', () => {
    expect(() => new SnapshotTransfer({ chunkBytes: 0 }, () => {})).toThrow(/chunkBytes/);
    expect(() => new SnapshotTransfer({ chunkBytes: MAX_TRANSFER_CHUNK_BYTES + 1 }, () => {})).toThrow(
      /at most/,
    );
    expect(() => new SnapshotTransfer({ windowChunks: 1.5 }, () => {})).toThrow(/windowChunks/);
  });
});
