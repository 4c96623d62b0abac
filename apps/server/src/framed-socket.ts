/**
 * A framed message connection over one `net.Socket`, as the server needs it on its single port: decoded
 * messages in (with per-frame decode errors reported, not thrown), messages out (frames coalesced per event
 * loop turn with cork/uncork), a high-water mark on unsent bytes so that a slow or stuck reader cannot make
 * the server buffer without bound, and one `close` notification.
 */
import type { Socket } from 'node:net';
import { encodeFrame, FrameDecoder, type PaxkvError } from '@paxkv/common';

/** Limits of a {@link FramedSocket}. */
export interface FramedSocketOptions {
  /** Largest frame accepted or sent, in bytes. */
  readonly maxFrameBytes: number;
  /**
   * Most bytes queued in the socket's write buffer; a send beyond it is refused and the connection is
   * closed (a reader this slow is treated as dead). Default 64 MiB.
   */
  readonly highWaterMarkBytes?: number;
}

/** Default {@link FramedSocketOptions.highWaterMarkBytes}: 64 MiB. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 64 * 1024 * 1024;

/** Callbacks of a {@link FramedSocket}. */
export interface FramedSocketHandlers {
  /** One decoded message (not validated: the caller checks it against its schema). */
  onMessage(value: unknown): void;
  /**
   * A frame that could not be decoded. `fatal` is true when the stream cannot continue (oversized frame):
   * the caller may send one error reply, then the socket closes itself.
   */
  onFrameError(error: PaxkvError, fatal: boolean): void;
  /** The connection closed (either side, or an error); called once. */
  onClose(reason: string): void;
}

/** A framed connection; see the module comment. */
export class FramedSocket {
  private readonly decoder: FrameDecoder;
  private readonly highWater: number;
  private corked = false;
  private closedFlag = false;

  constructor(
    readonly socket: Socket,
    private readonly options: FramedSocketOptions,
    private readonly handlers: FramedSocketHandlers,
  ) {
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.highWater = options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {
      // 'close' follows; the reason is reported there.
    });
    socket.on('close', (hadError) => this.finish(hadError ? 'socket error' : 'closed by peer'));
  }

  /** True once the connection is closed or closing. */
  get closed(): boolean {
    return this.closedFlag || this.socket.destroyed;
  }

  /** Remote `host:port`, for logs. */
  get remote(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  private onData(chunk: Buffer): void {
    if (this.closedFlag) return;
    const frames = this.decoder.push(chunk);
    for (const f of frames) {
      if (this.closedFlag) return;
      if (f.ok) {
        this.handlers.onMessage(f.value);
      } else {
        const fatal = this.decoder.failed !== undefined;
        this.handlers.onFrameError(f.error, fatal);
        if (fatal) {
          this.end('frame too large');
          return;
        }
      }
    }
  }

  /**
   * Sends one message. Returns false (and sends nothing) when the connection is closed, the message cannot
   * be encoded or exceeds the frame limit, or the peer is too far behind (then the connection is closed).
   */
  send(message: unknown): boolean {
    if (this.closed) return false;
    let frame: Uint8Array;
    try {
      frame = encodeFrame(message, { maxFrameBytes: this.options.maxFrameBytes });
    } catch {
      return false;
    }
    if (this.socket.writableLength + frame.length > this.highWater) {
      this.destroy(`peer too slow: more than ${this.highWater} bytes unsent`);
      return false;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
    return true;
  }

  /** Flushes what was sent and closes the connection gracefully. */
  end(reason = 'closed'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.corked) this.socket.uncork();
    this.socket.end();
    // A peer that never reads must not keep the socket open forever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish(reason);
  }

  /** Closes the connection at once, dropping unsent data. */
  destroy(reason = 'destroyed'): void {
    this.closedFlag = true;
    this.socket.destroy();
    this.finish(reason);
  }

  private finishedFlag = false;
  private finish(reason: string): void {
    if (this.finishedFlag) return;
    this.finishedFlag = true;
    this.closedFlag = true;
    this.handlers.onClose(reason);
  }
}
