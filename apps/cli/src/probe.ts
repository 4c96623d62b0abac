/**
 * A one-request probe: connect to one server, send one framed message, read the reply with the same id,
 * close. Used for `status` of every server (each server reports only its own groups) and for readiness
 * checks of the launcher; key-value traffic goes through `@paxkv/client`.
 */
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  encodeFrame,
  FrameDecoder,
  parseAddress,
  parseServerResponse,
  type ServerResponse,
  tlsFailure,
  tlsMaterial,
} from '@paxkv/common';
import { clientSecurity } from './security-commands.js';

/** Thrown when the probe gets no usable answer in time; `message` says what happened. */
export class ProbeError extends Error {
  override readonly name = 'ProbeError';
}

/**
 * Sends `request` (which must carry `id`) to `address` and resolves with the validated reply of that id.
 * @throws {ProbeError} on connection failure, timeout, a closed connection or an invalid reply.
 */
export function probe(
  address: string,
  request: { type: string; id: number },
  timeoutMs: number,
): Promise<ServerResponse> {
  const hp = parseAddress(address);
  if (hp instanceof Error) return Promise.reject(new ProbeError(hp.message));
  return new Promise((resolvePromise, reject) => {
    // With TLS settings (--cacert, a local --tls cluster) the probe dials with TLS like the client.
    const tls = clientSecurity().tls;
    const socket = tls
      ? tlsConnect({
          host: hp.host,
          port: hp.port,
          ca: tlsMaterial(tls.ca),
          ...(tls.cert !== undefined ? { cert: tlsMaterial(tls.cert) } : {}),
          ...(tls.key !== undefined ? { key: tlsMaterial(tls.key) } : {}),
        })
      : connect({ host: hp.host, port: hp.port });
    const decoder = new FrameDecoder();
    let settled = false;
    const finish = (error: Error | null, value?: ServerResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolvePromise(value as ServerResponse);
    };
    const timer = setTimeout(
      () => finish(new ProbeError(`no answer from ${address} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(encodeFrame(request)));
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (!frame.ok) return finish(new ProbeError(`bad reply from ${address}: ${frame.error.message}`));
        const parsed = parseServerResponse(frame.value);
        if (!parsed.ok) return finish(new ProbeError(`bad reply from ${address}: ${parsed.error.message}`));
        if (parsed.value.id === request.id) return finish(null, parsed.value);
      }
      return undefined;
    });
    socket.on('error', (e) =>
      finish(
        new ProbeError(
          `cannot reach ${address}: ${(tls ? tlsFailure(e, address, 'dial')?.message : undefined) ?? e.message}`,
        ),
      ),
    );
    socket.on('close', () => finish(new ProbeError(`${address} closed the connection`)));
  });
}
