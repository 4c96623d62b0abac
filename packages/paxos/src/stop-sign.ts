/**
 * Stop-signs: the log entry that ends a configuration and names the next one.
 * @module
 */
import { isNodeId, type NodeId } from './ballot.js';

/** Most members a configuration may name (a bound for entries read from the wire). */
export const MAX_CONFIG_MEMBERS = 64;

/**
 * The entry that ends a configuration (Sequence Paxos reconfiguration, as in OmniPaxos). Once a
 * stop-sign naming configuration `configId` is decided in configuration `configId - 1`, that
 * configuration decides nothing after it; configuration `configId` (replicas `members`) starts from
 * the decided log up to and including the stop-sign.
 *
 * It is a plain object (msgpack and structured-clone friendly) told apart from application commands
 * by its `stopSign: true` field: an application command must never be an object with that field.
 */
export interface StopSign {
  /** Marker: the one field no application command may have. */
  readonly stopSign: true;
  /** Id of the configuration that starts after this stop-sign (the stopped one's id + 1). */
  readonly configId: number;
  /** The replicas of the next configuration: distinct positive integers, at least one. */
  readonly members: readonly NodeId[];
  /** Opaque data for the host (for example who asked for the change), or `null`. */
  readonly metadata: Uint8Array | null;
}

/** A log entry: an application command `T`, or a {@link StopSign}. */
export type LogEntry<T> = T | StopSign;

/** `true` when `members` is a non-empty list of at most {@link MAX_CONFIG_MEMBERS} distinct node ids. */
export function isMemberList(members: unknown): members is readonly NodeId[] {
  if (!Array.isArray(members) || members.length === 0 || members.length > MAX_CONFIG_MEMBERS) return false;
  const seen = new Set<number>();
  for (const m of members) {
    if (!isNodeId(m) || seen.has(m)) return false;
    seen.add(m);
  }
  return true;
}

/** `true` when `x` is a well-formed {@link StopSign} (checked field by field: safe on wire input). */
export function isStopSign(x: unknown): x is StopSign {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as { stopSign?: unknown; configId?: unknown; members?: unknown; metadata?: unknown };
  if (s.stopSign !== true) return false;
  return (
    typeof s.configId === 'number' &&
    Number.isSafeInteger(s.configId) &&
    s.configId > 0 &&
    isMemberList(s.members) &&
    (s.metadata === null || s.metadata instanceof Uint8Array)
  );
}

/** Builds a stop-sign (members sorted, copied). */
export function makeStopSign(
  configId: number,
  members: readonly NodeId[],
  metadata: Uint8Array | null = null,
): StopSign {
  return { stopSign: true, configId, members: [...members].sort((a, b) => a - b), metadata };
}

/** A one-line description, for logs and test output: `stop->c3{1,2,4}`. */
export function formatStopSign(s: StopSign): string {
  return `stop->c${s.configId}{${s.members.join(',')}}`;
}
