/**
 * The state every part of one server shares: its settings, logger, metrics and clock, and the few facts
 * that change over its life (its node id, the lookup table in use, whether it is stopping). One object,
 * owned by `PaxkvServer`, passed to the modules that make up the server (inbound connections, the request
 * path, the bootstrap role, the group lifecycle, the peer links).
 */
import type { LookupTable, NodeId, TlsOptions } from '@paxkv/common';
import type { ServerConfig } from './config.js';
import type { ServerLogger } from './logger.js';
import type { ServerMetrics } from './metrics.js';

/** Shared, mutable state of one server (see the module comment). */
export interface ServerContext {
  readonly config: ServerConfig;
  readonly log: ServerLogger;
  readonly metrics: ServerMetrics;
  /** Monotonic clock in ms. */
  readonly now: () => number;
  /** This server's node id, null until the bootstrap server assigned one. */
  nodeId: NodeId | null;
  /** The lookup table in use, null before the cluster started. */
  table: LookupTable | null;
  /** Set once `stop()` began. */
  stopping: boolean;
  /** The address peers and clients use (`host:port`). */
  advertised: string;
  /**
   * Whether peers must prove the cluster token: then peer, paxos and bootstrap messages are accepted only
   * on connections whose handshake authenticated them.
   */
  readonly authRequired: boolean;
  /**
   * TLS material read from `tlsCert`/`tlsKey`/`tlsCa`, or undefined without TLS. With TLS, a peer proves
   * itself with a certificate the CA signed that allows server authentication and names its host.
   */
  readonly tls: TlsOptions | undefined;
}

/** A promise resolved after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once `p` settled or `ms` milliseconds passed, whichever is first; never rejects. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((r) => {
    timer = setTimeout(r, Math.max(0, ms));
  });
  try {
    await Promise.race([p.then(noop, noop), elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

const noop = (): void => {};
