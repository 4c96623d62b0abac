/** Accounting of failed peer handshakes: counted by reason, logged at most once a minute per host. */
import { type Handshake, isPaxkvError, PeerAuthError } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { ServerMetrics } from './metrics.js';
import { hostOf, RateLimitedLog } from './rate-limited-log.js';

/**
 * Wraps a handshake so that every failure is counted in `paxkv_auth_failures_total{reason}` and logged
 * once per remote host a minute (a flood of bad handshakes must not flood the log), then rethrown.
 */
export function countedHandshake(
  hook: Handshake,
  ctx: Pick<ServerContext, 'now' | 'log'>,
  metrics: Pick<ServerMetrics, 'authFailures'>,
): Handshake {
  const limiter = new RateLimitedLog(ctx.now);
  return async (channel) => {
    try {
      return await hook(channel);
    } catch (e) {
      const reason =
        e instanceof PeerAuthError ? e.failure : isPaxkvError(e) ? e.code.toLowerCase() : 'internal';
      metrics.authFailures.inc({ reason });
      if (limiter.shouldLog(hostOf(channel.remoteAddress))) {
        ctx.log.warn(
          { remote: channel.remoteAddress, role: channel.role, reason, err: (e as Error).message },
          `peer handshake with ${channel.remoteAddress} failed (${reason}); further failures from this host are counted in paxkv_auth_failures_total and logged at most once a minute`,
        );
      }
      throw e;
    }
  };
}
