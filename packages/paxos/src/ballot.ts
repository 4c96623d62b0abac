/**
 * Node identifiers and ballots.
 * @module
 */

/** Identifier of a replica: a positive integer, unique within one replication group. */
export type NodeId = number;

/**
 * A ballot (round number, proposer id). Ballots are totally ordered by `n`, then by `pid`.
 * The zero ballot {@link BALLOT_ZERO} is lower than every ballot a replica can use.
 */
export interface Ballot {
  /** Round number, a non-negative integer. */
  readonly n: number;
  /** Replica that owns this ballot. `0` only in {@link BALLOT_ZERO}. */
  readonly pid: NodeId;
}

/** The lowest ballot: nothing promised, nothing accepted. */
export const BALLOT_ZERO: Ballot = Object.freeze({ n: 0, pid: 0 });

/**
 * Total order on ballots.
 * @returns a negative number if `a < b`, zero if they are equal, a positive number if `a > b`.
 */
export function compareBallots(a: Ballot, b: Ballot): number {
  return a.n !== b.n ? a.n - b.n : a.pid - b.pid;
}

/** `true` when both ballots are equal. */
export function ballotEquals(a: Ballot, b: Ballot): boolean {
  return a.n === b.n && a.pid === b.pid;
}

/** `true` when `x` is a valid node id (a positive safe integer). */
export function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** `true` when `x` is a structurally valid ballot (non-negative integer round, non-negative integer pid). */
export function isBallot(x: unknown): x is Ballot {
  if (typeof x !== 'object' || x === null) return false;
  const b = x as { n?: unknown; pid?: unknown };
  return (
    typeof b.n === 'number' &&
    Number.isSafeInteger(b.n) &&
    b.n >= 0 &&
    typeof b.pid === 'number' &&
    Number.isSafeInteger(b.pid) &&
    b.pid >= 0
  );
}

/** Formats a ballot as `n.pid`, for logs and test output. */
export function formatBallot(b: Ballot): string {
  return `${b.n}.${b.pid}`;
}
