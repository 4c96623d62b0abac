/** What a {@link PaxkvServer} is built from: the real collaborators in `main.ts`, others in tests. */
import type { Handshake } from '@paxkv/common';
import type { GroupFactory, PaxosMessageCheck } from './group-port.js';
import type { ServerLogger } from './logger.js';
import type { GroupReconfigurer } from './metadata-group.js';
import type { ServerMetrics } from './metrics.js';

/** Collaborators of a server (the real ones in `main.ts`, others in tests). */
export interface ServerDeps {
  /** Builds the replica group of one partition. */
  readonly groupFactory: GroupFactory;
  /** Validation of paxos messages from peers (shape, bounds of rounds and indexes, sender). */
  readonly checkPaxosMessage: PaxosMessageCheck;
  readonly logger: ServerLogger;
  /** Metrics registry; default a new one. */
  readonly metrics?: ServerMetrics;
  /** Monotonic clock in ms; default `performance.now`. */
  readonly now?: () => number;
  /**
   * Run on every connection this server accepts or dials, before it is used (see `Handshake` in
   * `@paxkv/common`). Default: the cluster-token handshake when `clusterToken`/`clusterTokenFile` is set,
   * else none.
   */
  readonly handshake?: Handshake;
  /** A replica group could not be opened (see `GroupHostDeps.onGroupOpenFailed`). Default: logged only. */
  readonly onGroupOpenFailed?: (partition: number, error: Error) => void;
  /**
   * Moves a replica of a data group (see `metadata-group.ts`). Default none: replica moves (member
   * removal, `--replace-after`, rebalancing) are planned and logged but not run.
   */
  readonly reconfigurer?: GroupReconfigurer;
}
