import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  type ClusterStatus,
  encodeFrame,
  FrameDecoder,
  parseServerResponse,
  type ServerResponse,
} from '@paxkv/common';
import type { BenchClientTls } from './tls.js';

/** Default deadline of one status probe: 2,000 ms. */
export const DEFAULT_STATUS_TIMEOUT_MS = 2_000;

/**
 * Sends ONE request (`type` and fields; the id is set here) to ONE paxkv server on a fresh connection
 * and resolves with its validated answer (an `error` answer included), independently of the client
 * library's routing. Rejects on connection errors, an invalid answer, or after `timeoutMs`. With `tls`
 * it dials TLS trusting `tls.ca` (a `--tls` cluster serves nothing in clear).
 */
export function probeRequest(
  address: string,
  request: { readonly type: string } & Record<string, unknown>,
  timeoutMs = DEFAULT_STATUS_TIMEOUT_MS,
  tls?: BenchClientTls,
): Promise<ServerResponse> {
  const sep = address.lastIndexOf(':');
  const host = address.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(sep + 1));
  const what = `${request.type} of ${address}`;
  return new Promise<ServerResponse>((resolve, reject) => {
    const socket =
      tls === undefined
        ? connect({ host, port })
        : tlsConnect({ host, port, ca: tls.ca, cert: tls.cert, key: tls.key });
    const decoder = new FrameDecoder();
    let settled = false;
    const finish = (err: Error | undefined, reply?: ServerResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(reply as ServerResponse);
    };
    const timer = setTimeout(() => finish(new Error(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () =>
      socket.write(encodeFrame({ ...request, id: 1 })),
    );
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (!frame.ok) return finish(new Error(`${what}: ${frame.error.message}`));
        const parsed = parseServerResponse(frame.value);
        if (!parsed.ok) return finish(new Error(`${what}: ${parsed.error.message}`));
        if (parsed.value.id === 1) return finish(undefined, parsed.value);
      }
    });
    socket.once('error', (e) => finish(new Error(`${what}: ${e.message}`)));
    socket.once('close', () => finish(new Error(`${what}: connection closed`)));
  });
}

/**
 * Asks ONE paxkv server for its own view of the cluster (`status`), so the benchmark can tell which
 * server leads which partition. Rejects on connection errors, an `error` reply, or after `timeoutMs`.
 */
export async function probeStatus(
  address: string,
  timeoutMs = DEFAULT_STATUS_TIMEOUT_MS,
  tls?: BenchClientTls,
): Promise<ClusterStatus> {
  const msg = await probeRequest(address, { type: 'status' }, timeoutMs, tls);
  if (msg.type === 'status.ok') return msg.status;
  if (msg.type === 'error') throw new Error(`status of ${address}: ${msg.code} ${msg.message}`);
  throw new Error(`status of ${address}: unexpected answer ${msg.type}`);
}
