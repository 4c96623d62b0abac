/**
 * Configuration of {@link SequencePaxos}: every timeout, batch size and limit, in ticks or counts.
 * @module
 */
import { PaxosConfigError } from './errors.js';

/**
 * Testing-only protocol mutations, used to show that the simulator catches broken rules.
 * Never set anything but `'none'` outside tests: every other value makes the replica unsafe.
 */
export type UnsafeMutation =
  /** Correct behaviour. */
  | 'none'
  /** A follower accepts `Accept` messages from a ballot lower than its promise. */
  | 'acceptLowerBallot'
  /** The leader decides its whole log as soon as it appends, without waiting for a majority. */
  | 'decideWithoutQuorum'
  /** The leader keeps appending proposals after a stop-sign (its configuration never stops). */
  | 'appendAfterStopSign'
  /**
   * `ReconfigurablePaxos`: the next configuration starts (and seeds joining replicas) as soon as its
   * stop-sign is in the log, before it is decided.
   */
  | 'startBeforeStopSignDecided'
  /**
   * When the session to the leader breaks, a follower raises its ballot at once even though a
   * quorum-connected peer still hears the leader (a healthy leader is deposed over one broken link).
   */
  | 'raiseOnLeaderSessionBreak'
  /**
   * A read-index round asks one peer fewer than a majority needs and completes once every peer it
   * asked answered (a quorum of the asked instead of a majority of the replicas).
   */
  | 'readQuorumOfAsked'
  /**
   * `ReconfigurablePaxos` (liveness, not safety): every configuration's instance starts with BLE round
   * 0, so the stopped configuration's leader does not keep the leadership and a late joiner with a
   * higher id takes it over right after the start (a second leader change per reconfiguration).
   */
  | 'freshBallotsOnStart'
  /**
   * BLE (liveness, not safety): a replica that knows no leader ends its round once a MAJORITY of the
   * replicas (itself included) answered, instead of every peer: after a restart of all replicas it can
   * elect a lower ballot just before the highest one answers, and leadership changes again.
   */
  | 'earlyRoundOnMajority'
  /**
   * `ReconfigurablePaxos` (cost, not safety): a replica whose log holds the stop-sign that creates a
   * configuration asks for that configuration's state (`JoinRequest`) as soon as it hears of it, instead of
   * starting from its own log once the sign is decided: a leader that leaves then sends a whole
   * snapshot to every replica that stays.
   */
  | 'eagerJoinRequests'
  /**
   * BLE (liveness, not safety): the replicas of a configuration start it at slightly different times
   * (the successor claims at once; the others once they learn the stop-sign is decided; a joiner once
   * its state arrived), so their first heartbeat rounds go partly unanswered. Without the start grace, a
   * claimant does not ask again the peers that ask it first and loses its quorum-connected flag after an
   * unanswered first round, and a replica that knows no leader does not follow the ballot it just
   * promised: a joiner then elects itself over the successor (a second leader change in a
   * reconfiguration whose leader left).
   */
  | 'noStartGrace';

/** Tunables of one replica. Times are in ticks (one call of `tick()`), sizes in entries. */
export interface PaxosConfig {
  /**
   * Length of one Ballot Leader Election heartbeat round, in ticks. Every round a replica asks all
   * peers for a heartbeat and, at the end of the round, re-evaluates who leads. Default `5`.
   */
  heartbeatTicks: number;
  /**
   * A replica that has not seen the current leader among the quorum-connected repliers for this many
   * ticks raises its own ballot to take over. Must be at least `heartbeatTicks`. Default `15`.
   */
  electionTimeoutTicks: number;
  /** Most entries carried by one `Accept` or `AcceptSync` message, and the proposal batch size. Default `1024`. */
  maxBatchSize: number;
  /**
   * Most bytes of entries one `Accept` carries (and the part of an `AcceptSync` past the log the leader
   * adopted, which it must carry whole), as measured by the replica's `entryBytes` option: the leader
   * batches by size as well as by count, so a follower catching up on big entries is never sent one
   * message larger than the host's transport takes. A batch always carries at least one entry. Ignored
   * without `entryBytes`. Default `8388608` (8 MiB).
   */
  maxBatchBytes: number;
  /**
   * Most entries the leader sends to one follower beyond what that follower has acknowledged
   * (pipelining window). Default `8192`.
   */
  maxInflight: number;
  /**
   * A message that got no answer within this many ticks is sent again (Prepare, entries not yet
   * acknowledged, Decide, PrepareReq, read-index rounds). Default `10`.
   */
  resendTicks: number;
  /**
   * A read-index round first asks only as many peers as a majority needs (those that answered the
   * previous round first); it asks the others once it got no majority within this many ticks, or at
   * once when the session to an asked peer breaks. Halves the messages of reads in a 3-replica group.
   * `0` asks every peer at once. Default `2`.
   */
  readFallbackTicks: number;
  /** Most proposals buffered at a leader in the prepare phase; more throw `NoLeaderError`. Default `100000`. */
  maxPendingProposals: number;
  /** Testing only: break one protocol rule on purpose (see {@link UnsafeMutation}). Default `'none'`. */
  unsafeMutation: UnsafeMutation;
}

/** The defaults of every {@link PaxosConfig} field. */
export const DEFAULT_PAXOS_CONFIG: Readonly<PaxosConfig> = Object.freeze({
  heartbeatTicks: 5,
  electionTimeoutTicks: 15,
  maxBatchSize: 1024,
  maxBatchBytes: 8 * 1024 * 1024,
  maxInflight: 8192,
  resendTicks: 10,
  readFallbackTicks: 2,
  maxPendingProposals: 100_000,
  unsafeMutation: 'none',
});

function positiveInt(cfg: PaxosConfig, key: keyof PaxosConfig): void {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new PaxosConfigError(`config.${key} must be a positive integer, got ${String(v)}`);
  }
}

/**
 * Merges `partial` over the defaults and validates the result.
 * @throws PaxosConfigError naming the field that is invalid.
 */
export function resolveConfig(partial: Partial<PaxosConfig> | undefined): PaxosConfig {
  const cfg: PaxosConfig = { ...DEFAULT_PAXOS_CONFIG, ...(partial ?? {}) };
  for (const key of [
    'heartbeatTicks',
    'electionTimeoutTicks',
    'maxBatchSize',
    'maxBatchBytes',
    'maxInflight',
    'resendTicks',
    'maxPendingProposals',
  ] as const) {
    positiveInt(cfg, key);
  }
  if (!Number.isSafeInteger(cfg.readFallbackTicks) || cfg.readFallbackTicks < 0) {
    throw new PaxosConfigError(
      `config.readFallbackTicks must be a non-negative integer, got ${String(cfg.readFallbackTicks)}`,
    );
  }
  if (cfg.electionTimeoutTicks < cfg.heartbeatTicks) {
    throw new PaxosConfigError(
      `config.electionTimeoutTicks (${cfg.electionTimeoutTicks}) must be >= config.heartbeatTicks (${cfg.heartbeatTicks})`,
    );
  }
  if (
    ![
      'none',
      'acceptLowerBallot',
      'decideWithoutQuorum',
      'appendAfterStopSign',
      'startBeforeStopSignDecided',
      'raiseOnLeaderSessionBreak',
      'readQuorumOfAsked',
      'freshBallotsOnStart',
      'earlyRoundOnMajority',
      'eagerJoinRequests',
      'noStartGrace',
    ].includes(cfg.unsafeMutation)
  ) {
    throw new PaxosConfigError(`config.unsafeMutation is unknown: ${String(cfg.unsafeMutation)}`);
  }
  return cfg;
}
