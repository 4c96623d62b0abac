/**
 * bench:hostile --trace: loaded into each server with `node --import` (never in production). Every
 * 100 ms it appends one JSON line to `$PAXKV_LOOP_TRACE_DIR/<pid>.jsonl`: the wall time, the largest
 * event-loop delay seen in the slice (ms, `monitorEventLoopDelay` at 2 ms resolution, reset every slice)
 * and the process's user and system CPU in the slice (ms). A blocked loop shows as a late line whose
 * delay is as long as the block. Written with one synchronous append per slice (~100 bytes).
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const dir = process.env.PAXKV_LOOP_TRACE_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.jsonl`);
  const histogram = monitorEventLoopDelay({ resolution: 2 });
  histogram.enable();
  let cpu = process.cpuUsage();
  setInterval(() => {
    const now = process.cpuUsage();
    const line = {
      t: Date.now(),
      pid: process.pid,
      delayMs: Math.round(histogram.max / 1e5) / 10,
      userMs: Math.round((now.user - cpu.user) / 100) / 10,
      sysMs: Math.round((now.system - cpu.system) / 100) / 10,
    };
    cpu = now;
    histogram.reset();
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 100).unref();
}
