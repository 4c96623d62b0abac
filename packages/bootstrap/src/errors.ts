/**
 * Typed errors of the bootstrap protocol. They extend the shared paxkv error classes so that they
 * carry a stable wire code and can be sent with `errorMessage(e)`.
 * @module
 */
import { BadRequestError, ConfigError, type PaxkvErrorOptions } from '@paxkv/common';

/**
 * A lookup table cannot be built because a replication group needs more distinct servers than there
 * are. Start more servers (or lower the replication factor) before the table is built.
 */
export class ReplicationTooLargeError extends ConfigError {
  /** The requested replication factor δ. */
  readonly replication: number;
  /** How many servers were available. */
  readonly nodes: number;
  constructor(details: { replication: number; nodes: number }, options?: PaxkvErrorOptions) {
    super(
      {
        issues: [
          {
            path: 'replication',
            problem: `a replication factor of ${details.replication} needs at least ${details.replication} servers, only ${details.nodes} available; start more servers or lower --replication`,
          },
        ],
      },
      options,
    );
    this.replication = details.replication;
    this.nodes = details.nodes;
  }
}

/**
 * A lookup table failed validation (a partition without a group, a group with the wrong number of
 * replicas, an unknown or repeated node, ...). `problems` lists every violation found.
 */
export class InvalidLookupTableError extends BadRequestError {
  /** Every problem found, one sentence each. */
  readonly problems: readonly string[];
  constructor(details: { problems: readonly string[] }, options?: PaxkvErrorOptions) {
    super({ field: 'table', problem: details.problems.join('; ') || 'invalid lookup table' }, options);
    this.problems = details.problems;
  }
}

/**
 * A membership change was refused (a removed id checking in, an address that belongs to a server
 * holding replicas, a removal that would leave a group short, ...). Wire code `BAD_REQUEST`: sending the
 * same change again fails again; the message says what to do instead.
 */
export class MembershipRefusedError extends BadRequestError {
  /** Why, and what to do. */
  readonly reason: string;
  constructor(details: { field: string; reason: string }, options?: PaxkvErrorOptions) {
    super(
      { field: details.field, problem: details.reason },
      { ...options, message: `membership change refused: ${details.reason}` },
    );
    this.reason = details.reason;
  }
}
