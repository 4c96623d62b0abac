/**
 * An outgoing, self-reconnecting connection to another server (a peer, or the bootstrap server).
 * Messages sent while the link is down are dropped and `send` returns false: for Sequence Paxos that is a
 * session break, and `onConnected` (called on every (re)connection) is where the caller calls
 * `reconnected(peer)` so the protocol re-synchronises. Reconnects use capped exponential backoff with jitter.
 */
import { connect } from 'node:net';
import { type PaxkvError, parseAddress } from '@paxkv/common';
import { FramedSocket } from './framed-socket.js';

/** Options of a {@link Link}. */
export interface LinkOptions {
  /** Largest frame, in bytes. */
  readonly maxFrameBytes: number;
  /** First reconnect delay, in ms. Default 50. */
  readonly reconnectMinMs?: number;
  /** Largest reconnect delay, in ms. Default 2000. */
  readonly reconnectMaxMs?: number;
  /** Connect attempt timeout, in ms. Default 2000. */
  readonly connectTimeoutMs?: number;
  /** Messages sent first on every new connection (e.g. `peer.hello`). */
  readonly hello?: () => unknown;
  /** Called after each successful (re)connection, after the hello was sent. */
  readonly onConnected?: () => void;
  /** Called when an established connection is lost. */
  readonly onDisconnected?: (reason: string) => void;
  /** Messages arriving on the link (replies). */
  readonly onMessage?: (value: unknown) => void;
  /** Undecodable frames from the remote side. */
  readonly onFrameError?: (error: PaxkvError) => void;
}

/** See the module comment. */
export class Link {
  private conn: FramedSocket | null = null;
  private connecting = false;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private addressValue: string,
    private readonly options: LinkOptions,
  ) {
    this.dial();
  }

  /** The address dialled. */
  get address(): string {
    return this.addressValue;
  }

  /** True while a connection is established. */
  get connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  /** Changes the address (a restarted server moved); reconnects if it differs. */
  setAddress(address: string): void {
    if (address === this.addressValue) return;
    this.addressValue = address;
    this.conn?.destroy('address changed');
  }

  /** Sends a message; false if the link is down or the message was refused. */
  send(message: unknown): boolean {
    if (!this.conn || this.conn.closed) return false;
    return this.conn.send(message);
  }

  /** Stops reconnecting and closes the connection. */
  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.conn?.end('link closed');
    this.conn = null;
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const min = this.options.reconnectMinMs ?? 50;
    const max = this.options.reconnectMaxMs ?? 2000;
    const base = Math.min(max, min * 2 ** Math.min(this.attempt, 16));
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dial();
    }, delay);
  }

  private dial(): void {
    if (this.stopped || this.connecting || this.connected) return;
    const hp = parseAddress(this.addressValue);
    if (hp instanceof Error) {
      this.schedule();
      return;
    }
    this.connecting = true;
    const socket = connect({ host: hp.host, port: hp.port });
    const timeout = setTimeout(() => socket.destroy(), this.options.connectTimeoutMs ?? 2000);
    let established = false;
    socket.once('connect', () => {
      clearTimeout(timeout);
      this.connecting = false;
      if (this.stopped) {
        socket.destroy();
        return;
      }
      established = true;
      this.attempt = 0;
      const conn = new FramedSocket(
        socket,
        { maxFrameBytes: this.options.maxFrameBytes },
        {
          onMessage: (v) => this.options.onMessage?.(v),
          onFrameError: (e) => this.options.onFrameError?.(e),
          onClose: (reason) => {
            if (this.conn === conn) this.conn = null;
            this.options.onDisconnected?.(reason);
            this.schedule();
          },
        },
      );
      this.conn = conn;
      const hello = this.options.hello?.();
      if (hello !== undefined) conn.send(hello);
      this.options.onConnected?.();
    });
    socket.once('error', () => {
      // 'close' follows.
    });
    socket.once('close', () => {
      clearTimeout(timeout);
      if (!established) {
        this.connecting = false;
        this.schedule();
      }
    });
  }
}
