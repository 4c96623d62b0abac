/**
 * A one-request probe: connect to one server, send one framed message, read the reply with the same id,
 * close. Used for `status` of every server (each server reports only its own groups) and for readiness
 * checks of the launcher; key-value traffic goes through `@paxkv/client`.
 */
import { connect } from 'node:net';
import {
  encodeFrame,
  FrameDecoder,
  parseAddress,
  parseServerResponse,
  type ServerResponse,
} from '@paxkv/common';

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
    const socket = connect({ host: hp.host, port: hp.port });
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
    socket.on('connect', () => socket.write(encodeFrame(request)));
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (!frame.ok) return finish(new ProbeError(`bad reply from ${address}: ${frame.error.message}`));
        const parsed = parseServerResponse(frame.value);
        if (!parsed.ok) return finish(new ProbeError(`bad reply from ${address}: ${parsed.error.message}`));
        if (parsed.value.id === request.id) return finish(null, parsed.value);
      }
      return undefined;
    });
    socket.on('error', (e) => finish(new ProbeError(`cannot reach ${address}: ${e.message}`)));
    socket.on('close', () => finish(new ProbeError(`${address} closed the connection`)));
  });
}
