/**
 * A {@link MemoryStorage} that checks the per-replica safety rules on every write.
 * @module
 */
import { type Ballot, compareBallots, formatBallot, type NodeId } from '../ballot.js';
import { MemoryStorage, type Snapshot } from '../storage.js';

/** A safety invariant was broken. The message says which one, where, and with what values. */
export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

/**
 * In-memory storage that throws {@link InvariantViolation} when a replica breaks a rule that must
 * hold at every write:
 * - the promise, the decided index and the election round only grow;
 * - the accepted ballot is never lower than the promise when set (no accepting from a lower ballot);
 * - log entries are only written while the accepted ballot equals the promise (a replica accepts
 *   entries only from the leader it promised);
 * - decided entries are never truncated, and the decided index never passes the log's end.
 */
export class CheckedStorage<T> extends MemoryStorage<T> {
  constructor(readonly pid: NodeId) {
    super();
  }

  private fail(rule: string): never {
    throw new InvariantViolation(`replica ${this.pid}: ${rule}`);
  }

  override setPromise(ballot: Ballot): void {
    if (compareBallots(ballot, this.getPromise()) < 0) {
      this.fail(`promise decreased from ${formatBallot(this.getPromise())} to ${formatBallot(ballot)}`);
    }
    super.setPromise(ballot);
  }

  override setAcceptedRound(ballot: Ballot): void {
    if (compareBallots(ballot, this.getPromise()) !== 0) {
      this.fail(
        `accepted ballot ${formatBallot(ballot)} differs from (is lower than) promise ${formatBallot(this.getPromise())}`,
      );
    }
    super.setAcceptedRound(ballot);
  }

  override setBallotRound(round: number): void {
    if (round < this.getBallotRound()) this.fail(`election round decreased to ${round}`);
    super.setBallotRound(round);
  }

  override setDecidedIndex(index: number): void {
    if (index < this.getDecidedIndex()) {
      this.fail(`decided index decreased from ${this.getDecidedIndex()} to ${index}`);
    }
    if (index > this.getLogLength())
      this.fail(`decided index ${index} beyond log length ${this.getLogLength()}`);
    super.setDecidedIndex(index);
  }

  private checkAccepting(): void {
    if (compareBallots(this.getAcceptedRound(), this.getPromise()) !== 0) {
      this.fail(
        `accepted entries of ballot ${formatBallot(this.getAcceptedRound())} lower than its promise ${formatBallot(this.getPromise())}`,
      );
    }
  }

  override appendEntries(entries: readonly T[]): void {
    this.checkAccepting();
    super.appendEntries(entries);
  }

  override appendOnPrefix(from: number, entries: readonly T[]): void {
    this.checkAccepting();
    if (from < this.getDecidedIndex()) {
      this.fail(`truncating decided entries: log cut to ${from} < decided ${this.getDecidedIndex()}`);
    }
    super.appendOnPrefix(from, entries);
  }

  override setSnapshot(snapshot: Snapshot): void {
    if (snapshot.index < this.getCompactedIndex()) {
      this.fail(`snapshot at ${snapshot.index} older than the compacted prefix ${this.getCompactedIndex()}`);
    }
    super.setSnapshot(snapshot);
  }
}
