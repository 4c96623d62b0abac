/**
 * Exactly-once sessions for writes.
 *
 * The server remembers, per session id, the sequence number and result of the latest write only, and
 * rejects an older sequence number. A client with many writes in flight therefore cannot share one
 * session between them: a retry of write n after write n+1 was applied would be refused. The pool
 * gives every write in flight its own session *slot* (`<base>.<slot>`), each with its own increasing
 * `seq`; a slot is reused only after its previous write finished. A retried write keeps its slot and
 * seq, so the server applies it once.
 * @module
 */
import type { Session } from '@paxkv/common';

interface Slot {
  readonly index: number;
  readonly client: string;
  seq: number;
}

/** A session slot held by one write until {@link SessionPool.release}. */
export interface HeldSession {
  /** The session to send with every attempt of this write. */
  readonly session: Session;
  /** Internal slot index. */
  readonly slot: number;
}

/** Hands out `(client, seq)` pairs so that each session id has at most one write in flight. */
export class SessionPool {
  /** The base of every session id of this pool. */
  readonly base: string;
  readonly #slots: Slot[] = [];
  readonly #free: number[] = [];

  constructor(base: string) {
    this.base = base;
  }

  /** Number of slots created so far (the most writes that were in flight at once). */
  get size(): number {
    return this.#slots.length;
  }

  /** Takes the lowest free slot (or a new one) and the next sequence number of that slot. */
  acquire(): HeldSession {
    let slot: Slot;
    if (this.#free.length > 0) {
      let best = 0;
      for (let i = 1; i < this.#free.length; i++) if (this.#free[i]! < this.#free[best]!) best = i;
      const index = this.#free[best]!;
      this.#free[best] = this.#free[this.#free.length - 1]!;
      this.#free.pop();
      slot = this.#slots[index]!;
    } else {
      slot = { index: this.#slots.length, client: `${this.base}.${this.#slots.length}`, seq: 0 };
      this.#slots.push(slot);
    }
    slot.seq++;
    return { session: { client: slot.client, seq: slot.seq }, slot: slot.index };
  }

  /** Returns a slot once its write finished (successfully, failed, or given up). */
  release(held: HeldSession): void {
    this.#free.push(held.slot);
  }
}
