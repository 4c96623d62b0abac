/**
 * Configuration of the bootstrap coordinator and member, with documented defaults and validation.
 * @module
 */
import { ConfigError, type ConfigIssue } from '@paxkv/common';
import { MAX_PARTITIONS } from './table.js';

/** Configuration of a {@link BootstrapCoordinator}. */
export interface CoordinatorConfig {
  /**
   * Number of live servers (the bootstrap server itself included when it registers itself) needed
   * before the lookup table is built. Must be at least `replication`. Default 3.
   */
  readonly threshold: number;
  /** Number of partitions P of the key space. Default 16. */
  readonly partitions: number;
  /** Replication factor δ: servers per partition group. Default 3. */
  readonly replication: number;
  /**
   * A member whose last check-in or heartbeat is older than this is marked suspected (and no longer
   * counts toward the start threshold). Should be a few member heartbeat intervals. Default 3000 ms.
   */
  readonly suspectAfterMs: number;
}

/** Defaults of {@link CoordinatorConfig}. */
export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = Object.freeze({
  threshold: 3,
  partitions: 16,
  replication: 3,
  suspectAfterMs: 3000,
});

/** Configuration of a {@link BootstrapMember}. */
export interface MemberConfig {
  /** Period of heartbeats to the bootstrap server once checked in. Default 1000 ms. */
  readonly heartbeatIntervalMs: number;
  /** Period of check-in attempts until a `checkin.ok` arrives. Default 1000 ms. */
  readonly checkinRetryMs: number;
}

/** Defaults of {@link MemberConfig}. */
export const DEFAULT_MEMBER_CONFIG: MemberConfig = Object.freeze({
  heartbeatIntervalMs: 1000,
  checkinRetryMs: 1000,
});

function int(issues: ConfigIssue[], path: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    issues.push({ path, problem: `must be an integer in ${min}..${max}, got ${String(v)}` });
  }
}

/**
 * Merges `partial` over {@link DEFAULT_COORDINATOR_CONFIG} and validates the result.
 * @throws {@link ConfigError} listing every invalid field.
 */
export function resolveCoordinatorConfig(partial: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  const c: CoordinatorConfig = { ...DEFAULT_COORDINATOR_CONFIG, ...stripUndefined(partial) };
  const issues: ConfigIssue[] = [];
  int(issues, 'threshold', c.threshold, 1, 1_000_000);
  int(issues, 'partitions', c.partitions, 1, MAX_PARTITIONS);
  int(issues, 'replication', c.replication, 1, 1_000_000);
  int(issues, 'suspectAfterMs', c.suspectAfterMs, 1, 86_400_000);
  if (issues.length === 0 && c.threshold < c.replication) {
    issues.push({
      path: 'threshold',
      problem: `must be at least the replication factor (${c.replication}) so that every group gets distinct servers, got ${c.threshold}`,
    });
  }
  if (issues.length > 0) throw new ConfigError({ source: 'bootstrap coordinator', issues });
  return Object.freeze(c);
}

/**
 * Merges `partial` over {@link DEFAULT_MEMBER_CONFIG} and validates the result.
 * @throws {@link ConfigError} listing every invalid field.
 */
export function resolveMemberConfig(partial: Partial<MemberConfig> = {}): MemberConfig {
  const c: MemberConfig = { ...DEFAULT_MEMBER_CONFIG, ...stripUndefined(partial) };
  const issues: ConfigIssue[] = [];
  int(issues, 'heartbeatIntervalMs', c.heartbeatIntervalMs, 1, 86_400_000);
  int(issues, 'checkinRetryMs', c.checkinRetryMs, 1, 86_400_000);
  if (issues.length > 0) throw new ConfigError({ source: 'bootstrap member', issues });
  return Object.freeze(c);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
