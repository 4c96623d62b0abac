/**
 * Which of a pump's messages a leader may send before the storage flush of that pump (see
 * `ReplicaGroupConfig.releaseEarly`), and what they may say.
 *
 * A leader's `Accept` announces nothing about its own storage, so it may leave while the leader's own
 * log write is still being synced (etcd's raft does the same): the followers' writes then overlap the
 * leader's instead of following it. Two things still need care:
 *
 * - **Order per link.** The replication links are FIFO and Sequence Paxos relies on it: an early
 *   `Accept` to a peer may not overtake a message to that peer still waiting for an earlier flush
 *   (an `AcceptSync`, a late `Accept`, a `Prepare`, a heartbeat, ...). The one exception
 *   ({@link OVERTAKABLE}) is a `Decide`: it only raises the follower's decided index to a value that
 *   was safe when it was made, bounded by the follower's log (a prefix of the leader's in that
 *   ballot), so its place on the link does not matter. (Letting `Accept`s overtake heartbeats and
 *   read-index requests too changed the timing of elections enough to fail a reconfiguration test
 *   that expects its new leader to stay: not worth it for messages sent once per round.)
 * - **The decided index it carries.** The leader counts its own copy of an entry toward the majority
 *   as soon as the entry is in its log, before the entry is synced. That is safe only because every
 *   output of the pump that decided it waits for the flush. An early `Accept` made while an earlier
 *   flush is pending may therefore carry a decided index that counts the leader's unsynced copy: a
 *   follower would apply an entry that a leader crash could still undo. So such an `Accept` carries at
 *   most the highest decided index already announced by an output released after its flush (`safe`),
 *   and the leader's own value follows as a `Decide` once the pump's flush is done (only from the
 *   last pump that owes one to that peer: a later pump's `Decide` carries a higher value).
 *
 * When no earlier release is pending (every earlier write is durable), the decided index of an early
 * `Accept` is already safe: the followers can only have acknowledged entries sent in earlier pumps,
 * whose flushes are done.
 *
 * The same holds for a `Decide`, which therefore leaves early too when no earlier release is pending
 * or when it announces no more than the safe index. This matters most for a stop-sign: the pump that
 * decides it also seeds the next configuration's storage (a snapshot link and a checkpoint, tens of
 * ms), and the staying follower can seed its own only once it knows the sign is decided. Sent early,
 * the two seeds overlap instead of following each other.
 * @module
 */
import type { ConfigPaxosMessage, NodeId, OutgoingReconfigMessage } from '@paxkv/paxos';
import type { KvCommand } from './command.js';

type Out = OutgoingReconfigMessage<KvCommand>;

/** Late Paxos messages an early `Accept` may overtake (see the module notes). */
export const OVERTAKABLE: ReadonlySet<string> = new Set(['Decide']);

/** A `Decide` a pump owes a peer once its flush is done (its early `Accept` carried a lower index). */
interface Owed {
  readonly to: NodeId;
  readonly message: ConfigPaxosMessage<KvCommand>;
  /** Sequence number of the pump that owes it. */
  readonly pump: number;
}

/** The messages of one pump that wait for its flush, as {@link EarlyAccepts.split} left them. */
export interface LateMessages {
  readonly out: Out[];
  /** Messages counted as blocking their link (see {@link EarlyAccepts}). */
  readonly blocking: readonly NodeId[];
  readonly owed: readonly Owed[];
  readonly pump: number;
}

/** Split of one pump's messages (see {@link EarlyAccepts.split}). */
export interface EarlySplit {
  /** To send now. */
  readonly early: Out[];
  /** To hand to {@link EarlyAccepts.released} once the pump's flush is done. */
  readonly late: LateMessages;
}

function isPaxos(m: Out['message']): m is ConfigPaxosMessage<KvCommand> {
  return m.type === 'Paxos';
}

/** The decided index a Paxos message announces, if it announces one. */
function announcedDecided(m: Out['message']): number | undefined {
  if (!isPaxos(m)) return undefined;
  const t = m.msg.type;
  return t === 'Accept' || t === 'Decide' || t === 'AcceptSync' ? m.msg.decidedIndex : undefined;
}

/**
 * Per-link bookkeeping of a leader's early `Accept`s (see the module notes). One per replica group;
 * synchronous, no IO.
 */
export class EarlyAccepts {
  /** Per peer: messages released later (after a flush) that an early `Accept` must not overtake. */
  private readonly blocked = new Map<NodeId, number>();
  /** Per configuration: the highest decided index announced by a message that was safe to send. */
  private readonly safe = new Map<number, number>();
  /** Per peer and configuration (`peer:config`): the last pump that owes that peer a `Decide`. */
  private readonly lastOwing = new Map<string, number>();
  private pumps = 0;

  /**
   * @param unsafeUnclamped TESTING ONLY (mutation check): early `Accept`s keep the leader's decided
   * index even while an earlier flush is pending, i.e. the leader's own unsynced copy counts toward
   * the majority a follower is told about.
   * @param unsafeEarlyDecides TESTING ONLY (mutation check): every `Decide` leaves before its pump's
   * flush, even one that counts the leader's own unsynced copy.
   */
  constructor(
    private readonly unsafeUnclamped = false,
    private readonly unsafeEarlyDecides = false,
  ) {}

  /** True when a message to `peer` waits in the release chain and an `Accept` may not overtake it. */
  isBlocked(peer: NodeId): boolean {
    return (this.blocked.get(peer) ?? 0) > 0;
  }

  /** The decided index of configuration `config` that may be announced now. */
  safeDecided(config: number): number {
    return this.safe.get(config) ?? 0;
  }

  /**
   * Splits a pump's messages into those sent now and those sent after the pump's flush. `allDurable`:
   * no earlier release is pending (every write before this pump is durable).
   */
  split(out: readonly Out[], allDurable: boolean): EarlySplit {
    const pump = ++this.pumps;
    const early: Out[] = [];
    const late: Out[] = [];
    const blocking: NodeId[] = [];
    const owed: Owed[] = [];
    /** Peers with a blocking message earlier in this pump (made on the first). */
    let blockedHere: Set<NodeId> | undefined;
    for (const m of out) {
      const msg = m.message;
      if (isPaxos(msg) && msg.msg.type === 'Decide' && this.decideMayGo(msg, allDurable)) {
        if (allDurable) this.announce(msg.config, msg.msg.decidedIndex);
        early.push(m);
        continue;
      }
      if (isPaxos(msg) && msg.msg.type === 'Accept' && !this.isBlocked(m.to) && !blockedHere?.has(m.to)) {
        const accept = msg.msg;
        if (allDurable) {
          this.announce(msg.config, accept.decidedIndex);
          early.push(m);
          continue;
        }
        const safe = this.safeDecided(msg.config);
        if (accept.decidedIndex <= safe || this.unsafeUnclamped) {
          early.push(m);
          continue;
        }
        early.push({ to: m.to, message: { ...msg, msg: { ...accept, decidedIndex: safe } } });
        owed.push({
          to: m.to,
          message: {
            type: 'Paxos',
            config: msg.config,
            msg: { type: 'Decide', n: accept.n, decidedIndex: accept.decidedIndex },
          },
          pump,
        });
        this.lastOwing.set(`${m.to}:${msg.config}`, pump);
        continue;
      }
      late.push(m);
      if (isPaxos(msg) && OVERTAKABLE.has(msg.msg.type)) continue;
      blocking.push(m.to);
      if (blockedHere === undefined) blockedHere = new Set();
      blockedHere.add(m.to);
    }
    for (const p of blocking) this.blocked.set(p, (this.blocked.get(p) ?? 0) + 1);
    return { early, late: { out: late, blocking, owed, pump } };
  }

  /**
   * Whether a pump's `Decide` may leave before the pump's flush: when no earlier release is pending
   * (its index then counts only entries that the followers acknowledged, sent in earlier pumps, whose
   * flushes are done), or when it announces no more than an index already announced after a flush.
   * Otherwise it counts the leader's own unsynced copy and waits (unless mutated).
   */
  private decideMayGo(msg: ConfigPaxosMessage<KvCommand>, allDurable: boolean): boolean {
    if (allDurable || this.unsafeEarlyDecides) return true;
    return (announcedDecided(msg) ?? 0) <= this.safeDecided(msg.config);
  }

  /**
   * Records that a pump's flush is done and returns its messages to send now: its late messages plus
   * the `Decide`s it owes that no later pump owes too.
   */
  released(late: LateMessages): Out[] {
    for (const p of late.blocking) {
      const n = (this.blocked.get(p) ?? 0) - 1;
      if (n > 0) this.blocked.set(p, n);
      else this.blocked.delete(p);
    }
    const out = late.out;
    for (const m of out) {
      const d = announcedDecided(m.message);
      if (d !== undefined) this.announce((m.message as ConfigPaxosMessage<KvCommand>).config, d);
    }
    if (late.owed.length === 0) return out;
    const all = [...out];
    for (const o of late.owed) {
      // Made before the flush that is now done: safe to announce.
      this.announce(o.message.config, announcedDecided(o.message) ?? 0);
      const key = `${o.to}:${o.message.config}`;
      if (this.lastOwing.get(key) !== late.pump) continue;
      this.lastOwing.delete(key);
      all.push(o);
    }
    return all;
  }

  /** Records that every message this pump released outright was announced (a flushed pump). */
  releasedNow(out: readonly Out[]): void {
    for (const m of out) {
      const d = announcedDecided(m.message);
      if (d !== undefined) this.announce((m.message as ConfigPaxosMessage<KvCommand>).config, d);
    }
  }

  private announce(config: number, decided: number): void {
    if (decided > (this.safe.get(config) ?? 0)) this.safe.set(config, decided);
  }
}
