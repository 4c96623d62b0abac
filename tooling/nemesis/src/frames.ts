import { unpack } from 'msgpackr';

/** Default largest frame the proxy forwards (matches the product's default maximum frame of 16 MiB). */
export const DEFAULT_PROXY_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Length of the big-endian frame length prefix. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Splits a byte stream into whole frames (4-byte big-endian length + payload), keeping each frame's
 * header so frames can be forwarded unchanged.
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** @param maxFrameBytes - a frame whose declared payload is larger makes {@link push} report `oversized`. */
  constructor(private readonly maxFrameBytes: number = DEFAULT_PROXY_MAX_FRAME_BYTES) {}

  /** Bytes held that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds bytes and returns the whole frames now available (header included), or `oversized` when the next
   * frame declares a payload above the limit (the caller should close the connection).
   */
  push(chunk: Buffer): Buffer[] | 'oversized' {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const len = head.readUInt32BE(0);
      if (len > this.maxFrameBytes) return 'oversized';
      const total = FRAME_HEADER_BYTES + len;
      if (this.buffered < total) break;
      frames.push(this.take(total));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const all = Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}

/**
 * Reads the source node of a peer connection from its first frame: a msgpack `{ type: 'peer.hello', from }`
 * (or, with a cluster token, the handshake's `{ type: 'auth.hello', from, ... }`) with a positive integer
 * `from`. Returns `undefined` for anything else (the connection is a client's).
 * Never throws.
 */
export function peerHelloSource(frame: Buffer): number | undefined {
  if (frame.length <= FRAME_HEADER_BYTES) return undefined;
  let msg: unknown;
  try {
    msg = unpack(frame.subarray(FRAME_HEADER_BYTES));
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null) return undefined;
  const rec = msg as Record<string, unknown>;
  // With a cluster token the peer handshake comes first: its `auth.hello` names the dialling node too
  // (null for a member that has no id yet: that link is taken for a client's, like a bootstrap link).
  if (rec.type !== 'peer.hello' && rec.type !== 'auth.hello') return undefined;
  const from = rec.from;
  return typeof from === 'number' && Number.isInteger(from) && from > 0 ? from : undefined;
}

/** Encodes one message as a frame (tests and tools that speak to the proxy directly). */
export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}
