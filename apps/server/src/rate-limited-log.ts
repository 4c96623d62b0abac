/**
 * "Log once per source": rejections of hostile or misconfigured input are logged at most once per
 * source (a remote host, say) per interval, so a flood of bad connections cannot flood the log. Every
 * rejection is still counted in the metrics.
 */

/** Remembers when each source was last logged; forgets the oldest beyond `maxSources`. */
export class RateLimitedLog {
  private readonly last = new Map<string, number>();

  /**
   * @param intervalMs log one source at most once per this many ms (default 60 s).
   * @param maxSources most sources remembered (default 1024); the oldest is forgotten first.
   */
  constructor(
    private readonly now: () => number,
    private readonly intervalMs = 60_000,
    private readonly maxSources = 1024,
  ) {}

  /** True when `source` may be logged now (and records that it was). */
  shouldLog(source: string): boolean {
    const now = this.now();
    const at = this.last.get(source);
    if (at !== undefined && now - at < this.intervalMs) return false;
    this.last.delete(source);
    this.last.set(source, now);
    if (this.last.size > this.maxSources) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    return true;
  }
}

/** The host part of `host:port` (`[::1]:7000` → `::1`), the unit rejections are limited by. */
export function hostOf(remote: string): string {
  const m = /^\[?([^\]]*)\]?:\d+$/.exec(remote);
  return m?.[1] ?? remote;
}
