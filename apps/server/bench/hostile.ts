/**
 * bench:hostile — the good client's latency with and without amplification attacks, on real processes.
 *
 * Starts a local 3-server cluster (no token: the worst case, anyone may connect), runs one good client
 * (the `@paxkv/client` library: put then get of its own key, 20 ms apart) and alternates phases of
 * `--phase-seconds` (default 8): no attack, then an attack by `--attackers` worker threads (default 4),
 * for `--rounds` rounds (default 3), so machine noise falls on both sides alike. Each attacker cycles
 * through the amplification attacks of issue 14 against every server:
 *  - a stranger's 16 MiB frame of 16.7 M empty maps (~1.7 GB once decoded), connection after connection;
 *  - the same frame from a connection that first sent a valid `status` (a known client), back to back;
 *  - a 1 MiB frame of 1 M small integers from a known client (within the memory budget, but a decode of
 *    ~200 ms: refused by the value limit).
 * Prints the good client's p50/p99 (put + get round trip) without and under attack, their ratios, the
 * attack frames sent, and the servers' largest RSS. Errors of the good client are counted (should be 0).
 * An availability probe (`test/availability-probe.ts`) writes to every partition throughout and samples
 * every server's status: per phase kind, the longest time a partition went without an acknowledged
 * write, compared with one election timeout (`tickMs` x `electionTimeoutTicks`), and the leader changes
 * the servers counted; a forged ballot promised anywhere aborts the run.
 *
 * `--attack idle` replaces the amplification attackers with the issue's idle-connection flood: 10 000
 * connections that never send a byte, from a process of its own (`test/idle-flood.ts`, `ulimit -n`
 * raised for it), against server 1 at its default `maxConnections` (10 000), kept up (closed ones are
 * dialled again) for the phase, then closed. Needs an open-file limit of 10 512 (soft) / 10 064 (hard).
 * The servers then run with a 60 s header timeout (as the hostile suite's 30 s): with the default 10 s, a
 * flood that takes longer than that to open never holds 10 000 at once on a loaded machine; it becomes a
 * connect/close churn of ~1 000 connections a second instead (measured: 218 916 closed by the server in
 * 10 minutes at load 40). The ramp-up is bounded by 120 s; the line says whether the flood was held.
 * The attacker has loopback addresses of its own (`--attacker-hosts`, default 1: 127.0.0.2; N > 1:
 * 127.0.0.100 on, 10 000 / N connections each), and the servers run with `maxConnectionsPerHost`
 * `--per-host` (default 1024, the server's default; 0 = no limit, the comparison): one host then holds
 * 1024 and its other dials are refused (it backs off like a refused client), so its mass close tears
 * down 1024 sockets, not 10 000.
 *
 * `--trace` prints, around every close of the flood, 100 ms slices of the servers' event-loop delay and
 * CPU, the machine's CPU split, leader changes and link-down lines, and the probe's gaps
 * (`bench/hostile-trace.ts`).
 *
 * `--unprotected` starts the servers with the stranger limits off (`unidentifiedMaxFrameBytes` =
 * `maxFrameBytes`, no value limits): the comparison the limits are for, in the same conditions.
 *
 * Usage: pnpm --filter @paxkv/server bench:hostile [--rounds 3] [--phase-seconds 8] [--attackers 4]
 *   [--attack amplification|idle] [--attacker-hosts 1] [--per-host 1024] [--trace] [--unprotected]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createClient } from '@paxkv/client';
import { encodeFrame } from '@paxkv/common';
import { DEFAULT_PAXOS_CONFIG } from '@paxkv/paxos';
import { freePorts, resolveServerCommand, serverFlags, spawnServer } from '../src/launcher.js';
import { AvailabilityProbe, type WindowReport } from '../test/availability-probe.js';
import { fileDescriptorLimits, type IdleFloodReport, startIdleFlood } from '../test/hostile-helpers.js';
import { HostileTrace, type TracedProcess } from './hostile-trace.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'phase-seconds': { type: 'string', default: '8' },
    attackers: { type: 'string', default: '4' },
    unprotected: { type: 'boolean', default: false },
    attack: { type: 'string', default: 'amplification' },
    trace: { type: 'boolean', default: false },
    'attacker-hosts': { type: 'string', default: '1' },
    'per-host': { type: 'string', default: '1024' },
  },
});
const ATTACK = args.attack;
/** The idle flood of `--attack idle`: the issue's 10 000, against the default `maxConnections`. */
const IDLE_CONNECTIONS = 10_000;
const MAX_CONNECTIONS = 10_000;
/**
 * The servers' `maxConnectionsPerHost` (default 1024, the server's default; 0 = no limit, the behaviour
 * before the limit) and the attacking hosts: loopback addresses of their own (127.0.0.2 for one, else
 * 127.0.0.100 on), never 127.0.0.1 where the good client, the probe and the peers are — as a real
 * attacker comes from other hosts than the cluster's clients and servers.
 */
const PER_HOST = Number(args['per-host']);
const ATTACKER_HOSTS = Number(args['attacker-hosts']);
const ATTACKER_ADDRESSES =
  ATTACKER_HOSTS === 1
    ? ['127.0.0.2']
    : Array.from({ length: ATTACKER_HOSTS }, (_, i) => `127.0.0.${100 + i}`);
/** The servers' header timeout with `--attack idle` (default 10 s: see the README) and the ramp-up guard. */
const IDLE_HEADER_TIMEOUT_MS = 60_000;
const FLOOD_RAMP_UP_MS = 120_000;
if (ATTACK !== 'amplification' && ATTACK !== 'idle') {
  console.error('--attack amplification|idle please');
  process.exit(2);
}
if (ATTACK === 'idle') {
  const { soft, hard } = fileDescriptorLimits();
  if (soft < MAX_CONNECTIONS + 512 || hard < IDLE_CONNECTIONS + 64) {
    console.error(
      `--attack idle needs an open-file limit (ulimit -n) of ${MAX_CONNECTIONS + 512} (soft, for the servers) and ${IDLE_CONNECTIONS + 64} (hard, for the attacker); this shell has soft ${soft}, hard ${hard}`,
    );
    process.exit(2);
  }
}
const ROUNDS = Number(args.rounds);
const PHASE_MS = Number(args['phase-seconds']) * 1000;
const ATTACKERS = Number(args.attackers);
if (
  !(ROUNDS >= 1 && PHASE_MS >= 1000 && ATTACKERS >= 1) ||
  !(Number.isInteger(PER_HOST) && PER_HOST >= 0) ||
  !(Number.isInteger(ATTACKER_HOSTS) && ATTACKER_HOSTS >= 1 && ATTACKER_HOSTS <= 100)
) {
  console.error(
    '--rounds >= 1, --phase-seconds >= 1, --attackers >= 1, --per-host >= 0 and --attacker-hosts 1..100 please',
  );
  process.exit(2);
}

/** A frame of `count` copies of `element` in one array32. */
function arrayFrame(count: number, element: number): Buffer {
  const payload = Buffer.alloc(5 + count, element);
  payload[0] = 0xdd;
  payload.writeUInt32BE(count, 1);
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

// The attacker: plain node:net in a worker thread (its own event loop, like a separate attacking process).
const ATTACKER = `
const { connect } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { targets, amplification, integers, hello, index } = workerData;
const sent = { stranger: 0, client: 0, integers: 0 };
let stop = false;
parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
function open(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.on('data', () => {});
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  });
}
const closed = (s) => new Promise((r) => (s.destroyed ? r() : s.once('close', r)));
const drained = (s) => new Promise((r) => { if (s.destroyed) r(); else { s.once('drain', r); s.once('close', r); } });
async function stranger(port) {
  const s = await open(port);
  if (s.destroyed) return;
  s.write(amplification);
  sent.stranger++;
  await Promise.race([closed(s), new Promise((r) => setTimeout(r, 2000))]);
  s.destroy();
}
async function knownClient(port, frame, kind, count) {
  const s = await open(port);
  if (s.destroyed) return;
  s.write(hello);
  for (let i = 0; i < count && !stop && !s.destroyed; i++) {
    if (!s.write(frame)) await drained(s);
    sent[kind]++;
  }
  s.destroy();
}
(async () => {
  let n = index;
  while (!stop) {
    const port = targets[n % targets.length];
    const kind = n % 3;
    n++;
    if (kind === 0) await stranger(port);
    else if (kind === 1) await knownClient(port, amplification, 'client', 4);
    else await knownClient(port, integers, 'integers', 16);
  }
  parentPort.postMessage(sent);
})();
`;

/** The servers' paxos tick (the default, written out in their config file) and the election timeout. */
const TICK_MS = 20;
const ELECTION_TIMEOUT_MS = TICK_MS * DEFAULT_PAXOS_CONFIG.electionTimeoutTicks;
const PARTITIONS = 8;

/** One line of the availability summary for the windows of one kind. */
function availabilityLine(name: string, windows: readonly WindowReport[]): string {
  const gaps = new Map<number, number>();
  let changes = 0;
  for (const w of windows)
    for (const p of w.partitions) {
      gaps.set(p.partition, Math.max(gaps.get(p.partition) ?? 0, p.longestGapMs));
      changes += p.leaderChanges;
    }
  const worst = [...gaps.entries()].sort((a, b) => b[1] - a[1])[0] ?? [0, 0];
  const where = windows
    .flatMap((w) => w.partitions.map((p) => ({ w, p })))
    .sort((a, b) => b.p.longestGapMs - a.p.longestGapMs)[0];
  const over = [...gaps.values()].filter((g) => g > ELECTION_TIMEOUT_MS).length;
  const median = percentile([...gaps.values()], 50);
  return `  ${name.padEnd(14)} longest ${String(worst[1]).padStart(6)} ms (partition ${worst[0]}), median over partitions ${median.toFixed(0).padStart(5)} ms, ${over} of ${gaps.size} partitions > ${ELECTION_TIMEOUT_MS} ms; leader changes counted by the servers ${changes}${where ? `; the longest began ${where.p.longestGapStartMs} ms into its ${where.w.durationMs} ms window` : ''}`;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function waitHealthy(httpPorts: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await Promise.all(
      httpPorts.map((p) =>
        fetch(`http://127.0.0.1:${p}/health`)
          .then((r) => r.status === 200)
          .catch(() => false),
      ),
    );
    if (ok.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`the cluster was not healthy within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Sum over the servers of a Prometheus counter's samples whose labels contain `labels` (e.g. `code="X"`). */
async function counter(httpPorts: readonly number[], name: string, labels = ''): Promise<number> {
  let total = 0;
  for (const p of httpPorts) {
    const text = await fetch(`http://127.0.0.1:${p}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || (labels !== '' && !line.includes(labels))) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(value)) total += value;
    }
  }
  return total;
}

/**
 * The servers' event-loop delay since the previous call, in ms (prom-client resets its
 * `monitorEventLoopDelay` histogram on every scrape): the largest max and the largest p99 over the servers.
 */
async function loopDelay(httpPorts: readonly number[]): Promise<{ max: number; p99: number }> {
  return {
    max: (await gauges(httpPorts, 'nodejs_eventloop_lag_max_seconds')) * 1000,
    p99: (await gauges(httpPorts, 'nodejs_eventloop_lag_p99_seconds')) * 1000,
  };
}

/** The largest value of a gauge over the servers. */
async function gauges(httpPorts: readonly number[], name: string): Promise<number> {
  let max = 0;
  for (const p of httpPorts) {
    const text = await fetch(`http://127.0.0.1:${p}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (line) max = Math.max(max, Number(line.slice(name.length + 1)));
  }
  return max;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-bench-hostile-'));
  const ports = await freePorts(6);
  const clientPorts = ports.slice(0, 3);
  const httpPorts = ports.slice(3);
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      args.unprotected
        ? {
            tickMs: TICK_MS,
            unidentifiedMaxFrameBytes: 16 * 1024 * 1024,
            unidentifiedMaxItemsPerFrame: 1 << 30,
            clientMaxItemsPerFrame: 1 << 30,
          }
        : {
            tickMs: TICK_MS,
            maxConnectionsPerHost: PER_HOST,
            ...(ATTACK === 'idle' ? { headerTimeoutMs: IDLE_HEADER_TIMEOUT_MS } : {}),
          },
    ),
  );
  const traceDir = join(dir, 'trace');
  if (args.trace) mkdirSync(traceDir);
  const preload = fileURLToPath(new URL('./hostile-trace-preload.mjs', import.meta.url));
  const command = resolveServerCommand({
    preferSource: true,
    ...(args.trace ? { nodeArgs: ['--import', pathToFileURL(preload).href] } : {}),
  });
  const children = clientPorts.map((port, i) =>
    spawnServer(
      command,
      serverFlags({
        host: '127.0.0.1',
        port,
        httpPort: httpPorts[i],
        dataDir: join(dir, `node-${i + 1}`),
        partitions: PARTITIONS,
        replication: 3,
        bootstrapThreshold: 3,
        fsync: 'batch',
        logLevel: args.trace ? 'debug' : 'error',
        join: i === 0 ? undefined : `127.0.0.1:${clientPorts[0]}`,
        insecure: true, // the worst case the attacks are for: no token, no TLS
        extra: ['--config', configFile],
      }),
      {
        logFile: join(dir, `node-${i + 1}.log`),
        ...(args.trace ? { env: { ...process.env, PAXKV_LOOP_TRACE_DIR: traceDir } } : {}),
      },
    ),
  );
  const client = createClient({
    servers: clientPorts.map((p) => `127.0.0.1:${p}`),
    requestTimeoutMs: 30_000,
  });
  const workers: Worker[] = [];
  let probe: AvailabilityProbe | null = null;
  let trace: HostileTrace | null = null;
  let attackerPid: number | undefined;
  try {
    await waitHealthy(httpPorts, 300_000);
    const probeServers = clientPorts.map((port, i) => ({
      address: `127.0.0.1:${port}`,
      httpPort: httpPorts[i] as number,
      child: children[i],
    }));
    probe = await AvailabilityProbe.start({
      servers: () => probeServers,
      via: () => probeServers[0]!,
      partitions: PARTITIONS,
    });
    const windows = { quiet: [] as WindowReport[], attack: [] as WindowReport[] };
    const good = { quiet: [] as number[], attack: [] as number[], errors: 0, seq: 0 };
    let phase = 'warmup' as 'quiet' | 'attack' | 'warmup';
    let running = true;
    const loop = (async () => {
      while (running) {
        const value = `v${++good.seq}`;
        const t0 = performance.now();
        try {
          await client.put('good', value);
          if ((await client.get('good')) !== value) good.errors++;
          const ms = performance.now() - t0;
          if (phase !== 'warmup') good[phase].push(ms);
        } catch {
          good.errors++;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 3000)); // warm-up: leaders settled, connections open
    if (args.trace) {
      const traced: TracedProcess[] = children.map((c, i) => ({ name: `server${i + 1}`, pid: c.pid }));
      trace = new HostileTrace(
        () => [...traced, { name: 'attacker', pid: attackerPid }, { name: 'bench', pid: process.pid }],
        traceDir,
        children.map((_, i) => join(dir, `node-${i + 1}.log`)),
      );
    }
    const amplification = arrayFrame(16 * 1024 * 1024 - 16 - 5, 0x80);
    const integers = arrayFrame(1024 * 1024 - 5, 0x01);
    const hello = Buffer.from(encodeFrame({ type: 'status', id: 1 }));
    const sent = { stranger: 0, client: 0, integers: 0 };
    const floods: IdleFloodReport[] = [];
    const floodTimes: string[] = [];
    let maxRss = 0;
    const rssTimer = setInterval(() => {
      for (const c of children) maxRss = Math.max(maxRss, rssMiB(c.pid));
    }, 200);
    const lag = { quiet: { max: 0, p99: 0 }, attack: { max: 0, p99: 0 } };
    const phaseLag = async (which: 'quiet' | 'attack') => {
      const l = await loopDelay(httpPorts);
      lag[which] = { max: Math.max(lag[which].max, l.max), p99: Math.max(lag[which].p99, l.p99) };
    };
    for (let round = 0; round < ROUNDS; round++) {
      await loopDelay(httpPorts); // resets the servers' event-loop delay histograms
      phase = 'quiet';
      const quiet = await probe.window(
        `no attack ${round + 1}`,
        () => new Promise((r) => setTimeout(r, PHASE_MS)),
      );
      windows.quiet.push(quiet.report);
      await phaseLag('quiet');
      phase = 'attack';
      const attack = await probe.window(`attack ${round + 1}`, async () => {
        if (ATTACK === 'idle') {
          trace?.mark(`flood start ${round + 1}`);
          const flood = startIdleFlood(
            { host: '127.0.0.1', port: clientPorts[0] as number, httpPort: httpPorts[0] as number },
            IDLE_CONNECTIONS,
            MAX_CONNECTIONS,
            { from: ATTACKER_ADDRESSES, perHost: PER_HOST },
          );
          attackerPid = flood.pid;
          const started = Date.now();
          try {
            // Ramp-up is bounded: on a starved machine the server may never hold them all at once.
            floods.push(
              await flood
                .next('holding', FLOOD_RAMP_UP_MS)
                .catch(() => flood.reports.at(-1) ?? { event: 'wave' as const }),
            );
            floodTimes.push(
              `${floods.at(-1)?.event === 'holding' ? 'held' : 'NOT held'} at +${Date.now() - started} ms`,
            );
            await new Promise((r) => setTimeout(r, PHASE_MS));
          } finally {
            trace?.mark(`close ${round + 1}`);
            await flood.close();
            floodTimes.push(`closed at +${Date.now() - started} ms`);
          }
          // After the close: the servers' loop-delay histograms include the teardown of the flood.
          await phaseLag('attack');
          return;
        }
        const batch = Array.from(
          { length: ATTACKERS },
          (_, index) =>
            new Worker(ATTACKER, {
              eval: true,
              workerData: { targets: clientPorts, amplification, integers, hello, index },
            }),
        );
        workers.push(...batch);
        const reports = batch.map(
          (w) => new Promise<typeof sent>((resolve) => w.once('message', (m: typeof sent) => resolve(m))),
        );
        await new Promise((r) => setTimeout(r, PHASE_MS));
        await phaseLag('attack');
        for (const w of batch) w.postMessage('stop');
        for (const r of await Promise.all(reports)) {
          sent.stranger += r.stranger;
          sent.client += r.client;
          sent.integers += r.integers;
        }
        for (const w of batch) await w.terminate();
      });
      windows.attack.push(attack.report);
      phase = 'warmup'; // let the last attack frames drain before the next quiet phase
      await new Promise((r) => setTimeout(r, 1000));
    }
    clearInterval(rssTimer);
    trace?.stop();
    running = false;
    await loop;
    const refusedAtHeader = await counter(
      httpPorts,
      'paxkv_unidentified_frames_refused_total',
      'code="FRAME_TOO_LARGE"',
    );
    const refusedArriving = await counter(httpPorts, 'paxkv_bad_input_total', 'code="DECODE_FAILED"');
    const refusedHostLimit = await counter(
      httpPorts,
      'paxkv_connections_evicted_total',
      'reason="host-limit"',
    );
    const line = (name: string, xs: number[]) =>
      `  ${name.padEnd(14)} ops ${String(xs.length).padStart(5)}  p50 ${percentile(xs, 50).toFixed(1).padStart(7)}  p99 ${percentile(xs, 99).toFixed(1).padStart(7)}`;
    const p99q = percentile(good.quiet, 99);
    const p99a = percentile(good.attack, 99);
    console.log(
      [
        `# bench:hostile ${new Date().toISOString()} ${
          args.unprotected ? 'UNPROTECTED (stranger limits off)' : 'default limits'
        }; attack ${ATTACK}; 3 servers, 8 partitions, no token; ${ROUNDS} rounds x (${PHASE_MS / 1000} s quiet + ${PHASE_MS / 1000} s attack by ${ATTACK === 'idle' ? 'the idle flood' : `${ATTACKERS} attackers`}); load average ${loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')}`,
        'good client (put + get round trip, ms):',
        line('no attack', good.quiet),
        line('under attack', good.attack),
        `  p99 ratio attack/no-attack ${(p99a / p99q).toFixed(2)}x   p50 ratio ${(
          percentile(good.attack, 50) / percentile(good.quiet, 50)
        ).toFixed(2)}x   good-client errors ${good.errors}`,
        ATTACK === 'idle'
          ? `idle flood: ${IDLE_CONNECTIONS} connections to server 1 (maxConnections ${MAX_CONNECTIONS}, maxConnectionsPerHost ${PER_HOST === 0 ? 'off' : PER_HOST}) per attack phase from ${ATTACKER_HOSTS === 1 ? 'one host (127.0.0.2)' : `${ATTACKER_HOSTS} hosts (${ATTACKER_ADDRESSES[0]}-${ATTACKER_ADDRESSES.at(-1)})`}; server connections when held ${floods.map((f) => f.serverConnections).join(', ')}; closed by the server while ramping up (evictions, header timeouts, host-limit refusals) ${floods.map((f) => f.closedByServer).join(', ')}; ${floodTimes.join(', ')} (from the start of the attack); largest server RSS ${maxRss.toFixed(0)} MiB`
          : `attack frames sent: ${sent.stranger} stranger 16 MiB empty-map frames, ${sent.client} known-client 16 MiB empty-map frames, ${sent.integers} known-client 1 M-integer frames; largest server RSS ${maxRss.toFixed(0)} MiB`,
        `servers' event-loop delay (largest over the servers and phases, ms): no attack max ${lag.quiet.max.toFixed(1)} p99 ${lag.quiet.p99.toFixed(1)}; under attack max ${lag.attack.max.toFixed(1)} p99 ${lag.attack.p99.toFixed(1)}`,
        `availability (longest time without an acknowledged write, per partition, max over the rounds; one election timeout = ${ELECTION_TIMEOUT_MS} ms):`,
        availabilityLine('no attack', windows.quiet),
        availabilityLine('under attack', windows.attack),
        `  probe writes acknowledged ${[...windows.quiet, ...windows.attack].reduce((n, w) => n + w.partitions.reduce((m, p) => m + p.writes, 0), 0)}, errors ${probe.errors.length}; no replica promised a forged ballot`,
        `servers refused ${refusedAtHeader} stranger frames at their header (paxkv_unidentified_frames_refused_total) and ${refusedArriving} frames while they arrived (paxkv_bad_input_total{code="DECODE_FAILED"}); ${refusedHostLimit} connections past maxConnectionsPerHost`,
      ].join('\n'),
    );
    if (trace)
      console.log(
        trace.report(probe.gaps(150), new Map(children.map((c, i) => [c.pid as number, `server${i + 1}`]))),
      );
  } finally {
    await probe?.stop();
    for (const w of workers) await w.terminate();
    await client.close();
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
