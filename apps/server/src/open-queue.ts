/**
 * The order in which a server opens its replica groups.
 * @module
 */

/**
 * Runs open jobs one at a time, in the order they were queued, except that the partitions clients wait
 * for go first, in the order they were first asked for ({@link OpenQueue.prioritize}).
 *
 * Opening replays a group's state from disk (CPU-bound). A restarted server with much data would
 * otherwise finish all its groups together, at the end; one at a time, each serves (and elects) while
 * the next replays. In plain order, a request for the partition queued last waits for every other
 * group; prioritized, it waits for the open in progress and for the partitions asked for before it.
 * First asked, first opened: a later request never overtakes an earlier one.
 */
export class OpenQueue {
  private readonly waiting: { readonly partition: number; readonly start: () => void }[] = [];
  /** The first this many of `waiting` were asked for, in that order. */
  private asked = 0;
  private running = false;

  /** Queues `job` (the open of `partition`); settles as it does. */
  run<T>(partition: number, job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        // A job that throws before its first await rejects its caller like any failed open.
        Promise.resolve()
          .then(job)
          .then(resolve, reject)
          .finally(() => {
            this.running = false;
            this.next();
          });
      };
      this.waiting.push({ partition, start });
      // Started after the caller's turn, as a chained promise would be: the caller registers the open
      // before it runs.
      queueMicrotask(() => this.next());
    });
  }

  /**
   * Moves the queued open of `partition` ahead of every open nobody asked for, behind those asked for
   * before it. Returns whether it moved (false: not queued, or asked for already).
   */
  prioritize(partition: number): boolean {
    const i = this.waiting.findIndex((w) => w.partition === partition);
    if (i < this.asked) return false;
    const [w] = this.waiting.splice(i, 1);
    this.waiting.splice(this.asked, 0, w as (typeof this.waiting)[number]);
    this.asked++;
    return true;
  }

  /** Opens queued and not started. */
  get queued(): number {
    return this.waiting.length;
  }

  private next(): void {
    if (this.running) return;
    const w = this.waiting.shift();
    if (w === undefined) return;
    if (this.asked > 0) this.asked--;
    this.running = true;
    w.start();
  }
}
