/**
 * The storage port of {@link SequencePaxos}, and an in-memory implementation.
 * @module
 */
import { BALLOT_ZERO, type Ballot } from './ballot.js';
import { InvalidArgumentError } from './errors.js';

/**
 * An application snapshot of the replicated state after applying the first `index` log entries.
 * `data` is opaque to the consensus core.
 */
export interface Snapshot {
  /** Number of log entries the snapshot covers: entries `[0, index)` are replaced by it. */
  readonly index: number;
  /** The application's serialized state. */
  readonly data: Uint8Array;
}

/**
 * Persistent state of one replica, written synchronously by {@link SequencePaxos}.
 *
 * **Indexes.** Log positions are 0-based and absolute: they keep counting across compaction. "Length"
 * and "index" values that describe a prefix are counts: `getDecidedIndex() === 5` means entries
 * `0..4` are decided; `getCompactedIndex() === 3` means entries `0..2` were replaced by the snapshot.
 * Always `compactedIndex <= decidedIndex <= logLength`.
 *
 * **THE ORDERING DUTY.** Every write returns when it is in the storage's buffer. A caller must not
 * release any output drained from SequencePaxos (outbox messages, decided entries, read-index results)
 * after a storage write until that write is durable. The in-memory storage is "durable" at once; a disk
 * storage buffers writes (group commit) and offers its own flush: the host drains the outputs, flushes,
 * and only then sends the messages and applies the decided entries. This is what makes a promise or
 * an accepted entry durable before the message that announces it leaves.
 *
 * **Atomic groups.** All writes made during one call into SequencePaxos (one `handle`, `tick`,
 * `propose`, `compact`...) form one group that must become durable atomically: after a crash either
 * all of a group's writes are visible or none (for example, an `AcceptSync` sets the accepted ballot
 * and rewrites the log suffix; persisting one without the other could lose decided entries). Groups
 * are applied in call order; a storage that loses its buffer in a crash must lose whole groups at
 * the tail, never a group in the middle. A write-ahead log gets this by framing each flushed batch
 * as one checksummed record and truncating a torn tail. Flushing at every drain satisfies it.
 *
 * @typeParam T the log entry (command) type.
 */
export interface Storage<T> {
  /** The highest ballot this replica promised (`BALLOT_ZERO` when fresh). */
  getPromise(): Ballot;
  /** Records a promise; the core only ever raises it. */
  setPromise(ballot: Ballot): void;
  /** The ballot of the leader whose log this replica last accepted (synced with), `BALLOT_ZERO` when fresh. */
  getAcceptedRound(): Ballot;
  /** Records the accepted ballot; the core calls it before writing entries of that ballot. */
  setAcceptedRound(ballot: Ballot): void;
  /**
   * The highest round number this replica used for its own leader-election ballot (`0` when fresh).
   * Persisted so that a fresh replica's head start (a preferred leader's) survives a restart; a replica
   * restarted on a promise starts its candidacy below that promise instead (see the README).
   */
  getBallotRound(): number;
  /** Records the replica's own election round; the core only ever raises it. */
  setBallotRound(round: number): void;
  /** Number of decided entries (a count: entries `[0, decidedIndex)` are decided). */
  getDecidedIndex(): number;
  /** Records the number of decided entries; the core only ever raises it. */
  setDecidedIndex(index: number): void;
  /** Number of log entries, counting the compacted prefix (so it is also the next entry's index). */
  getLogLength(): number;
  /** Appends entries at the end of the log. */
  appendEntries(entries: readonly T[]): void;
  /**
   * Truncates the log to `from` entries, then appends `entries` (so they get indexes `from, from+1, ...`).
   * `compactedIndex <= from <= logLength`.
   */
  appendOnPrefix(from: number, entries: readonly T[]): void;
  /**
   * Entries with indexes in `[from, to)`, where `compactedIndex <= from <= to <= logLength`.
   * The caller does not mutate the returned array.
   */
  getEntries(from: number, to: number): readonly T[];
  /** Number of entries replaced by the snapshot (`0` when there is no snapshot). */
  getCompactedIndex(): number;
  /** The latest snapshot, or `undefined` if none was taken or installed. */
  getSnapshot(): Snapshot | undefined;
  /**
   * Stores `snapshot` and drops the log entries below `snapshot.index`; entries at and above it are kept.
   * If `snapshot.index > logLength`, the log becomes empty with `logLength === snapshot.index`.
   * If `snapshot.index > decidedIndex`, the decided index is raised to it. The core only installs
   * snapshots with increasing indexes.
   */
  setSnapshot(snapshot: Snapshot): void;
}

/**
 * A {@link Storage} in memory: everything is "durable" when the call returns, and lost with the object.
 * Tests and the simulator keep the object across a simulated crash to model a disk that survived.
 */
export class MemoryStorage<T> implements Storage<T> {
  private promise: Ballot = BALLOT_ZERO;
  private acceptedRound: Ballot = BALLOT_ZERO;
  private ballotRound = 0;
  private decidedIndex = 0;
  private compactedIndex = 0;
  private snapshot: Snapshot | undefined = undefined;
  /** `log[i]` is the entry at absolute index `compactedIndex + i`. */
  private log: T[] = [];

  getPromise(): Ballot {
    return this.promise;
  }
  setPromise(ballot: Ballot): void {
    this.promise = ballot;
  }
  getAcceptedRound(): Ballot {
    return this.acceptedRound;
  }
  setAcceptedRound(ballot: Ballot): void {
    this.acceptedRound = ballot;
  }
  getBallotRound(): number {
    return this.ballotRound;
  }
  setBallotRound(round: number): void {
    this.ballotRound = round;
  }
  getDecidedIndex(): number {
    return this.decidedIndex;
  }
  setDecidedIndex(index: number): void {
    this.decidedIndex = index;
  }
  getLogLength(): number {
    return this.compactedIndex + this.log.length;
  }
  appendEntries(entries: readonly T[]): void {
    const log = this.log;
    for (let i = 0; i < entries.length; i++) log.push(entries[i] as T);
  }
  appendOnPrefix(from: number, entries: readonly T[]): void {
    const rel = from - this.compactedIndex;
    if (rel < 0 || rel > this.log.length) {
      throw new InvalidArgumentError(
        `appendOnPrefix(${from}) outside [${this.compactedIndex}, ${this.getLogLength()}]`,
      );
    }
    this.log.length = rel;
    this.appendEntries(entries);
  }
  getEntries(from: number, to: number): readonly T[] {
    const rel = from - this.compactedIndex;
    if (rel < 0 || to < from || to > this.getLogLength()) {
      throw new InvalidArgumentError(
        `getEntries(${from}, ${to}) outside [${this.compactedIndex}, ${this.getLogLength()}]`,
      );
    }
    return this.log.slice(rel, to - this.compactedIndex);
  }
  getCompactedIndex(): number {
    return this.compactedIndex;
  }
  getSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }
  setSnapshot(snapshot: Snapshot): void {
    const len = this.getLogLength();
    if (snapshot.index >= len) {
      this.log = [];
    } else {
      this.log = this.log.slice(snapshot.index - this.compactedIndex);
    }
    this.compactedIndex = snapshot.index;
    this.snapshot = snapshot;
    if (this.decidedIndex < snapshot.index) this.decidedIndex = snapshot.index;
  }
}
