/**
 * What the server's transport refused or closed to protect itself, counted in `/metrics` and logged at
 * most once a minute per source host and kind (see {@link RateLimitedLog}).
 */
import type { TransportServer } from '@paxkv/common';
import type { ServerContext } from './context.js';
import { hostOf, type RateLimitedLog } from './rate-limited-log.js';

/** Characters of a TLS failure's message (address removed) that tell one kind of failure from another in the log limiter. */
const TLS_FAILURE_KIND_CHARS = 48;

/**
 * Attaches the transport's refusal listeners: failed TLS handshakes (`paxkv_auth_failures_total{reason="tls"}`),
 * evictions at the connection limit and refusals past `maxConnectionsPerHost`
 * (`paxkv_connections_evicted_total{reason="connection-limit"|"host-limit"}`).
 */
export function watchRefusals(
  transport: TransportServer,
  ctx: ServerContext,
  rejections: RateLimitedLog,
): void {
  transport.on('tlsError', (error, remote) => {
    ctx.metrics.authFailures.inc({ reason: 'tls' });
    // Keyed by host AND kind of failure (the message without the remote address): a plain-TCP client
    // must not hide behind an earlier rejection of another kind (a forged hello, a refused certificate)
    // from the same host within the interval; a flood of one kind is still logged once a minute.
    const kind = error.message.split(remote).join('').slice(0, TLS_FAILURE_KIND_CHARS);
    if (rejections.shouldLog(`${hostOf(remote)} tls ${kind}`)) {
      ctx.log.warn(
        { remote },
        `${error.message} (further failures from this host are counted in paxkv_auth_failures_total{reason="tls"} and logged at most once a minute)`,
      );
    }
  });
  transport.on('evicted', () => ctx.metrics.connectionsEvicted.inc({ reason: 'connection-limit' }));
  transport.on('rejected', (remote, reason) => {
    if (reason !== 'host-limit') return; // the connection limit evicts (evictWhenFull): counted above
    ctx.metrics.connectionsEvicted.inc({ reason: 'host-limit' });
    if (rejections.shouldLog(`${hostOf(remote)} host-limit`)) {
      ctx.log.warn(
        { remote, max: ctx.config.maxConnectionsPerHost },
        `refused a connection from ${hostOf(remote)}: it already holds ${ctx.config.maxConnectionsPerHost} unauthenticated connections (maxConnectionsPerHost; raise it for a host of many clients, or have them log in); further refusals from this host are counted in paxkv_connections_evicted_total{reason="host-limit"} and logged at most once a minute`,
      );
    }
  });
}
