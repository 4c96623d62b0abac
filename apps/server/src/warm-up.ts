/**
 * The server's start-up warm-up (`--warm-up`): `warmUpDelayMs` after the server is up, one run of
 * `warmUpReplicaGroups` (`@paxkv/kvstore`), so the first replica move under load does not make V8
 * recompile the hot put path on full cores (see that function for why). It yields at every simulated
 * step, stops when the server closes, and a failure of it is logged, never fatal.
 * @module
 */
import type { WarmUpState } from '@paxkv/common';
import { type WarmUpReport, warmUpReplicaGroups } from '@paxkv/kvstore';
import type { ServerLogger } from './logger.js';

/** The part of the server configuration the warm-up reads. */
export interface WarmUpConfig {
  /** Whether to run it (`--warm-up`). */
  readonly warmUp: boolean;
  /** Milliseconds from {@link ServerWarmUp.start} to the run. */
  readonly warmUpDelayMs: number;
}

/** Runs the warm-up once per process, after a delay; see the module comment. */
export class ServerWarmUp {
  private timer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private running: Promise<void> | null = null;
  /** The last run's report (undefined before it ended). */
  report: WarmUpReport | undefined;
  private stateNow: WarmUpState;

  constructor(
    private readonly config: WarmUpConfig,
    private readonly log: ServerLogger,
    private readonly run: typeof warmUpReplicaGroups = warmUpReplicaGroups,
  ) {
    this.stateNow = config.warmUp ? 'scheduled' : 'off';
  }

  /** Where the warm-up is, for `status` (a benchmark waits for `done` before it measures). */
  get state(): WarmUpState {
    return this.stateNow;
  }

  /** Schedules the run (once; nothing when `warmUp` is off). */
  start(): void {
    if (!this.config.warmUp || this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.stateNow = 'running';
      this.running = this.runOnce();
    }, this.config.warmUpDelayMs);
    // A server that closes before the delay is not held open by it.
    this.timer.unref();
  }

  /** Cancels a scheduled run, stops one in progress, and resolves once it has stopped. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stateNow === 'scheduled' || this.stateNow === 'running') this.stateNow = 'stopped';
    this.abort.abort();
    await this.running;
  }

  private async runOnce(): Promise<void> {
    const started = performance.now();
    const cpu = process.cpuUsage();
    try {
      const r = await this.run({ signal: this.abort.signal });
      this.report = r;
      if (r.aborted) return;
      this.stateNow = 'done';
      const used = process.cpuUsage(cpu);
      const ms = Math.round(performance.now() - started);
      this.log.info(
        { ...r, ms, processCpuMs: Math.round((used.user + used.system) / 1000) },
        `warm-up done in ${ms} ms: ${r.reconfigurations} reconfigurations, ${r.joins} joins by snapshot transfer, ${r.operations} operations in ${r.steps} simulated steps (in memory)`,
      );
    } catch (e) {
      this.stateNow = 'failed';
      this.log.warn(
        { err: e instanceof Error ? e.message : String(e) },
        'the start-up warm-up failed (the server is not affected; its first replica move may be slower)',
      );
    }
  }
}
