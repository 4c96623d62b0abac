import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type ClusterStatus, encodeFrame, FrameDecoder, parseServerResponse } from '@paxkv/common';
import type { BenchClientTls } from './tls.js';

/** Default deadline of one status probe: 2,000 ms. */
export const DEFAULT_STATUS_TIMEOUT_MS = 2_000;

/**
 * Asks ONE paxkv server for its own view of the cluster (`status` request on a fresh connection),
 * independently of the client library's routing, so the benchmark can tell which server leads which
 * partition. Rejects on connection errors, an `error` reply, or after `timeoutMs`. With `tls` it dials
 * TLS trusting `tls.ca` (a `--tls` cluster serves nothing in clear).
 */
export function probeStatus(
  address: string,
  timeoutMs = DEFAULT_STATUS_TIMEOUT_MS,
  tls?: BenchClientTls,
): Promise<ClusterStatus> {
  const sep = address.lastIndexOf(':');
  const host = address.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(sep + 1));
  return new Promise<ClusterStatus>((resolve, reject) => {
    const socket =
      tls === undefined
        ? connect({ host, port })
        : tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key });
    const decoder = new FrameDecoder();
    let settled = false;
    const finish = (err: Error | undefined, status?: ClusterStatus): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(status as ClusterStatus);
    };
    const timer = setTimeout(
      () => finish(new Error(`status of ${address}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () =>
      socket.write(encodeFrame({ type: 'status', id: 1 })),
    );
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (!frame.ok) return finish(new Error(`status of ${address}: ${frame.error.message}`));
        const parsed = parseServerResponse(frame.value);
        if (!parsed.ok) return finish(new Error(`status of ${address}: ${parsed.error.message}`));
        const msg = parsed.value;
        if (msg.type === 'status.ok') return finish(undefined, msg.status);
        if (msg.type === 'error')
          return finish(new Error(`status of ${address}: ${msg.code} ${msg.message}`));
      }
    });
    socket.once('error', (e) => finish(new Error(`status of ${address}: ${e.message}`)));
    socket.once('close', () => finish(new Error(`status of ${address}: connection closed`)));
  });
}
