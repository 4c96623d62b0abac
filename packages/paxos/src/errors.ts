/**
 * Typed errors raised by {@link SequencePaxos}.
 * @module
 */
import type { NodeId } from './ballot.js';

/** Base class of every error this package throws on purpose. */
export class PaxosError extends Error {
  override name = 'PaxosError';
}

/**
 * `propose` was called on a replica that knows no leader (an election is in progress or this replica
 * is cut off from a quorum). Nothing was appended or forwarded: retry later, or on another replica.
 */
export class NoLeaderError extends PaxosError {
  override name = 'NoLeaderError';
  constructor() {
    super('no leader is known at this replica: retry after an election completes, or on another replica');
  }
}

/**
 * A leader-only operation (`readIndex`) was called on a replica that is not the leader, or the leader
 * lost its leadership before the operation completed. `leaderHint` is the replica this one believes
 * to be the leader, if any: retry there.
 */
export class NotLeaderError extends PaxosError {
  override name = 'NotLeaderError';
  /** The replica believed to be the leader, or `undefined` if none is known. */
  readonly leaderHint: NodeId | undefined;
  constructor(leaderHint: NodeId | undefined) {
    super(
      leaderHint === undefined
        ? 'this replica is not the leader and knows no leader: retry after an election completes'
        : `this replica is not the leader: retry on replica ${leaderHint}`,
    );
    this.leaderHint = leaderHint;
  }
}

/** A constructor option or config field is invalid; the message names the field and the rule. */
export class PaxosConfigError extends PaxosError {
  override name = 'PaxosConfigError';
}

/**
 * An argument to a call on {@link SequencePaxos} is invalid (for example `compact` beyond the decided
 * index); the message says which rule was broken. The replica's state is unchanged.
 */
export class InvalidArgumentError extends PaxosError {
  override name = 'InvalidArgumentError';
}

/**
 * The replica cannot take more work right now (for example a leader still electing itself already
 * buffers `maxPendingProposals` proposals). Nothing was recorded: retry shortly.
 */
export class OverloadedError extends PaxosError {
  override name = 'OverloadedError';
}

/**
 * The configuration this replica belongs to is stopping or stopped: a stop-sign naming configuration
 * `nextConfigId` (replicas `nextMembers`) is in its log (`decided` says whether it is decided yet).
 * Nothing more is appended in this configuration: retry the proposal, read or reconfiguration on the
 * next configuration's replicas (once it is decided there; if the stop-sign is not decided yet it may
 * still be lost with its leader, then retry here).
 */
export class StoppedError extends PaxosError {
  override name = 'StoppedError';
  /** The configuration that follows. */
  readonly nextConfigId: number;
  /** Its replicas. */
  readonly nextMembers: readonly NodeId[];
  /** Whether the stop-sign is decided (the next configuration can start). */
  readonly decided: boolean;
  constructor(configId: number, nextConfigId: number, nextMembers: readonly NodeId[], decided: boolean) {
    super(
      `configuration ${configId} is ${decided ? 'stopped' : 'stopping'}: the group moves to configuration ${nextConfigId} (replicas ${nextMembers.join(', ')}); retry there`,
    );
    this.nextConfigId = nextConfigId;
    this.nextMembers = nextMembers;
    this.decided = decided;
  }
}
