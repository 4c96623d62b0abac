import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TlsOptions } from '@paxkv/common';
import { pack, unpack } from 'msgpackr';
import { encodeFrame, FrameSplitter } from './frames.js';
import { parseHostPort } from './proxy.js';

/** Default time a one-shot request may take. */
export const DEFAULT_RPC_TIMEOUT_MS = 2000;

/** The part of a server's `status.ok` reply the nemesis uses (see `ClusterStatus` in `@paxkv/common`). */
export interface ServerStatusView {
  /** The answering server's node id. */
  readonly node: number;
  /** Whether the server has a lookup table yet. */
  readonly hasTable: boolean;
  /** The replica groups hosted by the server. */
  readonly groups: ReadonlyArray<{
    readonly partition: number;
    readonly leader: number | null;
    readonly role: string;
  }>;
}

/**
 * Sends one framed request (`{ ...message, id }`) to `address` on a fresh connection and resolves with the
 * reply of the same id, or rejects after `timeoutMs` or when the connection fails. The connection is
 * always closed. Used for status queries that must bypass the client library (and the proxy). With `tls`
 * it dials TLS, trusting `tls.ca`.
 */
export function requestOnce(
  address: string,
  message: Record<string, unknown>,
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  tls?: TlsOptions,
): Promise<unknown> {
  const { host, port } = parseHostPort(address);
  const id = 1;
  return new Promise((resolve, reject) => {
    const socket = tls === undefined ? connect({ host, port }) : tlsConnect({ host, port, ca: pem(tls.ca) });
    const split = new FrameSplitter();
    let done = false;
    const finish = (err: Error | undefined, value?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`no reply from ${address} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error(`connection to ${address} closed before a reply`)));
    socket.on(tls === undefined ? 'connect' : 'secureConnect', () =>
      socket.write(encodeFrame(pack({ ...message, id }))),
    );
    socket.on('data', (chunk: Buffer) => {
      const frames = split.push(chunk);
      if (frames === 'oversized') return finish(new Error(`oversized reply from ${address}`));
      for (const f of frames) {
        let msg: unknown;
        try {
          msg = unpack(f.subarray(4));
        } catch (e) {
          return finish(new Error(`undecodable reply from ${address}: ${(e as Error).message}`));
        }
        if (typeof msg === 'object' && msg !== null && (msg as { id?: unknown }).id === id)
          return finish(undefined, msg);
      }
    });
  });
}

/**
 * Asks a server for its status and returns the fields the nemesis needs.
 * @throws Error when the server does not answer, answers with an error, or answers something else.
 */
export async function fetchStatus(
  address: string,
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  tls?: TlsOptions,
): Promise<ServerStatusView> {
  const reply = (await requestOnce(address, { type: 'status' }, timeoutMs, tls)) as Record<string, unknown>;
  if (reply.type !== 'status.ok') {
    throw new Error(
      `status of ${address} failed: ${String(reply.code ?? reply.type)} ${String(reply.message ?? '')}`,
    );
  }
  const status = reply.status as Record<string, unknown> | undefined;
  if (typeof status !== 'object' || status === null || typeof status.node !== 'number') {
    throw new Error(`status of ${address} has no node id`);
  }
  const groups = Array.isArray(status.groups) ? (status.groups as ServerStatusView['groups']) : [];
  return { node: status.node, hasTable: status.table !== null && status.table !== undefined, groups };
}

/** A PEM given as text or bytes, as `node:tls` takes it. */
function pem(value: string | Uint8Array): string {
  return typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
}
