/**
 * A global budget of inbound bytes for every connection of one server: the bytes of frames that have
 * started to arrive but are not complete yet. Without it, each connection may hold one partial frame of
 * up to `maxFrameBytes` for as long as it likes (24 half-sent 16 MiB frames were +235 MB). Past the
 * budget the holder of the largest partial frame is closed, untrusted connections before trusted ones
 * (an authenticated peer sending a large frame is not evicted to make room for strangers).
 * @module
 */
import { UnavailableError } from '../errors.js';

/** What the budget needs from a connection. */
export interface BudgetHolder {
  /** Authenticated peers are evicted only when no untrusted holder is left. */
  readonly trusted: boolean;
  /** Closes the connection at once, reporting `reason`. */
  destroy(reason: UnavailableError): void;
}

/** See the module comment. */
export class InboundBudget {
  private readonly held = new Map<BudgetHolder, number>();
  private usedBytes = 0;
  private evictions = 0;

  /** @param limitBytes most bytes of partial frames held across all connections (positive). */
  constructor(readonly limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) {
      throw new RangeError(`limitBytes must be a positive integer, got ${limitBytes}`);
    }
  }

  /** Bytes held now. */
  get used(): number {
    return this.usedBytes;
  }

  /** Connections closed so far to stay within the budget. */
  get evicted(): number {
    return this.evictions;
  }

  /**
   * Records that `holder` now holds `bytes` of partial frames (0 when it holds none or closed). If the
   * total goes past the limit, closes holders (largest untrusted first) until it fits again.
   */
  update(holder: BudgetHolder, bytes: number): void {
    const before = this.held.get(holder) ?? 0;
    if (bytes === before) return;
    this.usedBytes += bytes - before;
    if (bytes > 0) this.held.set(holder, bytes);
    else this.held.delete(holder);
    while (this.usedBytes > this.limitBytes) {
      const victim = this.largest(false) ?? this.largest(true);
      if (!victim) break;
      const size = this.held.get(victim) ?? 0;
      this.held.delete(victim);
      this.usedBytes -= size;
      this.evictions++;
      victim.destroy(
        new UnavailableError({
          reason: `the server's inbound buffer budget (${this.limitBytes} bytes) is exhausted and this connection held the largest partial frame (${size} bytes)`,
        }),
      );
    }
  }

  private largest(trusted: boolean): BudgetHolder | undefined {
    let best: BudgetHolder | undefined;
    let bestSize = -1;
    for (const [h, size] of this.held) {
      if (h.trusted === trusted && size > bestSize) {
        best = h;
        bestSize = size;
      }
    }
    return best;
  }
}
