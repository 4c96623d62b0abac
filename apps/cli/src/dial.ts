/**
 * The connect phase of one-shot commands (`--dial-timeout`): before a request is sent, at least one of the
 * servers must accept a TCP connection within the dial timeout, so an unreachable `--servers` fails in
 * about that long (or at once when the port refuses) instead of after the whole request deadline.
 */
import { connect } from 'node:net';
import { parseAddress } from '@paxkv/common';

/** Default connect timeout, in ms (`--dial-timeout`). */
export const DEFAULT_DIAL_TIMEOUT_MS = 2_000;

/** No server accepted a connection in time; the message lists why for each. */
export class DialError extends Error {
  override readonly name = 'DialError';
  readonly code = 'UNAVAILABLE';
}

function dialOne(address: string, timeoutMs: number): Promise<void> {
  const hp = parseAddress(address);
  if (hp instanceof Error) return Promise.reject(hp);
  return new Promise((resolveDial, reject) => {
    const socket = connect({ host: hp.host, port: hp.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolveDial();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Resolves as soon as one of `servers` accepts a connection.
 * @throws {DialError} when none does within `timeoutMs`.
 */
export async function dialAny(servers: readonly string[], timeoutMs: number): Promise<void> {
  const errors: string[] = [];
  await Promise.any(
    servers.map((s) =>
      dialOne(s, timeoutMs).catch((e: Error) => {
        errors.push(`${s}: ${e.message}`);
        throw e;
      }),
    ),
  ).catch(() => {
    throw new DialError(
      `cannot connect to any server within ${timeoutMs} ms (${errors.join('; ')}): check --servers, or raise --dial-timeout`,
    );
  });
}
