/**
 * The `paxkv` program: commander definitions and the glue between the commands, the client, the
 * launcher and the output. {@link runCli} never calls `process.exit`: it resolves to the exit code.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createClient } from '@paxkv/client';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type BenchReport, formatBenchReport, runBench, WORKLOADS, type Workload } from './bench.js';
import {
  addClusterNode,
  ClusterError,
  type ClusterFile,
  clusterServers,
  DEFAULT_REPLACE_AFTER_S,
  isServerProcess,
  readClusterFile,
  startCluster,
  stopCluster,
} from './cluster.js';
import { CommandSyntaxError, type KvCommand, parseCommand } from './commands.js';
import { bashCompletion, SHELLS, zshCompletion } from './completion.js';
import { metadataOf, openClient, statusOf } from './connect.js';
import {
  casRevisionOutcome,
  DATA_COMMAND_USAGE,
  parseRevisionFlag,
  parseTxnJson,
  type RangeCliOptions,
  type RevisionExpectation,
  rangeOutcome,
  runPromptDataLine,
  txnOutcome,
  withClient,
} from './data-commands.js';
import { DEFAULT_DIAL_TIMEOUT_MS, dialAny } from './dial.js';
import { EXIT, errorOutcome, execute, type Outcome } from './execute.js';
import { type CommandContext, parseTtl, putWithTtl, registerLeaseCommands } from './lease-commands.js';
import { registerMemberCommands, requestMemberAdd } from './member-commands.js';
import { runPrompt } from './prompt.js';
import {
  addSecurityOptions,
  clientSecurity,
  configureSecurity,
  registerSecurityCommands,
  SecurityConfigError,
  type SecurityFlags,
} from './security-commands.js';
import { formatSummary, readSnapshotFile, restoreSnapshot, saveSnapshot } from './snapshot-commands.js';
import { SnapshotFileError } from './snapshot-file.js';
import { formatStatus, mergeStatus, type StatusView } from './status-view.js';
import { suggest } from './suggest.js';
import { resolveValue, ValueInputError } from './value-input.js';
import {
  type EndpointHealth,
  endpointStatus,
  formatEndpointStatus,
  formatHealth,
  OUTPUT_FORMATS,
  type OutputFormat,
  renderSimple,
  renderTable,
} from './views.js';
import { registerWatchCommands } from './watch-commands.js';

/** Default directory of the local cluster (relative to the working directory). */
export const DEFAULT_CLUSTER_DIR = '.paxkv';
/** Default per-request deadline of one-shot commands and the prompt, in ms. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Where the CLI writes; injectable for tests. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

const defaultIo = (): CliIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
});

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function positiveInt(name: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer`);
    return Number(raw);
  };
}

function wholeSeconds(name: string, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) > max)
      throw new InvalidArgumentError(`${name} must be a whole number of seconds from 0 to ${max}`);
    return Number(raw);
  };
}

function seconds(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive number of seconds`);
    return n;
  };
}

/** A user-facing failure: printed as `paxkv: <message>` with exit code 2. */
class UsageError extends Error {}

interface GlobalOptions {
  servers?: string;
  json?: boolean;
  writeOut?: OutputFormat;
  timeout?: number;
  dialTimeout?: number;
  dir?: string;
}

/** The output format: `--json` is `-w json`; the default is `table`. */
function formatOf(opts: GlobalOptions): OutputFormat {
  return opts.json ? 'json' : (opts.writeOut ?? 'table');
}

/**
 * Resolves the servers to talk to: `--servers`, then `$PAXKV_SERVERS`, then the running local cluster in
 * `<dir>/cluster.json` (default ./.paxkv). Returns null when none is configured.
 */
export function resolveServers(opts: GlobalOptions, io: CliIo): string[] | null {
  const raw = opts.servers ?? io.env.PAXKV_SERVERS;
  if (raw !== undefined && raw.trim() !== '') {
    const list = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    for (const s of list) {
      if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s)) {
        throw new UsageError(`invalid server address "${s}": expected host:port, for example 127.0.0.1:7000`);
      }
    }
    return list;
  }
  const file = readClusterFile(resolve(io.cwd, opts.dir ?? DEFAULT_CLUSTER_DIR));
  if (file?.nodes.some((n) => isServerProcess(n))) return clusterServers(file);
  return null;
}

function noServers(): UsageError {
  return new UsageError(
    'no servers to talk to: pass --servers host:port[,host:port], set PAXKV_SERVERS, or start a local cluster with `paxkv cluster start`',
  );
}

function writeOutcome(io: CliIo, outcome: Outcome, json: boolean): void {
  if (json) {
    io.stdout.write(`${JSON.stringify(outcome.json)}\n`);
    if (outcome.exitCode === EXIT.error) io.stderr.write(`${outcome.stderr}\n`);
    return;
  }
  if (typeof outcome.stdout !== 'string') io.stdout.write(outcome.stdout);
  else if (outcome.stdout !== '') io.stdout.write(`${outcome.stdout}\n`);
  if (outcome.stderr !== '') io.stderr.write(`${outcome.stderr}\n`);
}

async function gatherStatus(servers: readonly string[], timeoutMs: number): Promise<StatusView> {
  const [replies, metadata] = await Promise.all([
    Promise.all(servers.map((s) => statusOf(s, timeoutMs))),
    metadataOf(servers, timeoutMs),
  ]);
  const first = mergeStatus(replies, metadata);
  // Ask every server of the table too, so that each partition's leader is known.
  const more = first.servers.map((s) => s.address).filter((a) => !servers.includes(a));
  if (more.length === 0) return first;
  const all = [...replies, ...(await Promise.all(more.map((s) => statusOf(s, timeoutMs))))];
  return mergeStatus(all, metadata);
}

async function oneShot(command: KvCommand, opts: GlobalOptions, io: CliIo): Promise<number> {
  const servers = resolveServers(opts, io);
  if (!servers) throw noServers();
  const timeoutMs = opts.timeout ?? DEFAULT_TIMEOUT_MS;
  const json = formatOf(opts) === 'json';
  if (command.kind === 'status') {
    let outcome: Outcome;
    try {
      const view = await gatherStatus(servers, timeoutMs);
      outcome = {
        exitCode: 0,
        stdout: formatOf(opts) === 'simple' ? simpleStatus(view) : formatStatus(view),
        stderr: '',
        json: { ok: true, command: 'status', status: view },
      };
    } catch (e) {
      outcome = errorOutcome('status', e);
    }
    writeOutcome(io, outcome, json);
    return outcome.exitCode;
  }
  // The connect phase first: an unreachable cluster fails within --dial-timeout, not the request deadline.
  await dialAny(servers, opts.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
  const client = await openClient(servers, { timeoutMs });
  try {
    const outcome = await execute(command, client, () => gatherStatus(servers, timeoutMs));
    writeOutcome(io, outcome, json);
    return outcome.exitCode;
  } finally {
    await client.close();
  }
}

/** Runs one transaction or range command against the cluster and prints its outcome. */
async function oneShotData(
  name: string,
  opts: GlobalOptions,
  io: CliIo,
  run: (client: Parameters<Parameters<typeof withClient>[2]>[0]) => Promise<Outcome>,
): Promise<number> {
  const servers = resolveServers(opts, io);
  if (!servers) throw noServers();
  const timeoutMs = opts.timeout ?? DEFAULT_TIMEOUT_MS;
  await dialAny(servers, opts.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
  let outcome: Outcome;
  try {
    outcome = await withClient(servers, timeoutMs, run);
  } catch (e) {
    outcome = errorOutcome(name, e);
  }
  writeOutcome(io, outcome, formatOf(opts) === 'json');
  return outcome.exitCode;
}

async function readText(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function rangeOptions(o: Record<string, unknown>): RangeCliOptions {
  const limit = o.limit === undefined ? undefined : Number(o.limit);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new UsageError(`--limit must be a positive integer, got "${String(o.limit)}"`);
  }
  return {
    ...(limit !== undefined ? { limit } : {}),
    ...(o.reverse ? { reverse: true } : {}),
    ...(o.keysOnly ? { keysOnly: true } : {}),
  };
}

async function prompt(servers: string[], opts: GlobalOptions, io: CliIo, banner: string): Promise<number> {
  const timeoutMs = opts.timeout ?? DEFAULT_TIMEOUT_MS;
  const client = await openClient(servers, { timeoutMs });
  const dataClient = createClient({
    servers: [...servers],
    requestTimeoutMs: timeoutMs,
    ...clientSecurity(),
  });
  try {
    await runPrompt({
      client,
      data: { run: (line) => runPromptDataLine(line, dataClient), usage: DATA_COMMAND_USAGE },
      status: () => gatherStatus(servers, timeoutMs),
      input: io.stdin as NodeJS.ReadableStream & import('node:stream').Readable,
      output: io.stdout as NodeJS.WritableStream & import('node:stream').Writable,
      historyFile: io.env.PAXKV_HISTORY ?? join(homedir(), '.paxkv_history'),
      banner,
    });
  } finally {
    await client.close();
    await dataClient.close();
  }
  return 0;
}

/** `status -w simple`: one line per partition (`partition, leader, replicas, decided`). */
function simpleStatus(view: StatusView): string {
  return renderSimple(
    view.groups.map((g) => [
      String(g.partition),
      String(g.leader ?? 'none'),
      g.replicas.join(' '),
      String(g.decidedIndex ?? '?'),
    ]),
  );
}

/** Measures each server's health: a status request answered within the timeout, and how long it took. */
async function endpointHealth(servers: readonly string[], timeoutMs: number): Promise<EndpointHealth[]> {
  return Promise.all(
    servers.map(async (endpoint) => {
      const t0 = performance.now();
      const r = await statusOf(endpoint, timeoutMs);
      const tookMs = performance.now() - t0;
      if ('error' in r) return { endpoint, health: false, tookMs, error: r.error };
      if (r.status.table === null) return { endpoint, health: false, tookMs, error: 'no lookup table yet' };
      return { endpoint, health: true, tookMs };
    }),
  );
}

function clusterSummary(file: ClusterFile, view: StatusView): string {
  const lines = [
    `paxkv local cluster in ${file.dir}: ${file.nodes.length} servers, ${file.partitions} partitions`,
  ];
  for (const n of file.nodes) {
    lines.push(
      `  server ${n.index}: ${n.address} (pid ${n.pid}, metrics http://127.0.0.1:${n.httpPort}/metrics${n.respPort !== undefined ? `, redis 127.0.0.1:${n.respPort}` : ''})`,
    );
  }
  const resp = file.nodes.find((n) => n.respPort !== undefined);
  if (resp) lines.push(`redis clients: redis-cli -p ${resp.respPort}   (any server answers any key)`);
  const led = view.groups.filter((g) => g.leader !== null).length;
  lines.push(`every partition has a leader (${led}/${view.groups.length})`);
  lines.push(
    `connect with: paxkv --servers ${clusterServers(file).join(',')}   (or PAXKV_SERVERS=${clusterServers(file).join(',')})`,
  );
  return lines.join('\n');
}

function waitForSignal(): Promise<string> {
  return new Promise((resolveSignal) => {
    const done = (sig: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolveSignal(sig);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

/** Runs `paxkv` with `argv` (without node and script). Resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let exitCode = 0;
  const stopListening: Array<() => void> = [];
  const err = (line: string) => io.stderr.write(`${line}\n`);
  const program = new Command('paxkv')
    .description(
      'paxkv: a linearizable key-value store. With no command: open the prompt (starting a local cluster if none is configured).',
    )
    .version(version())
    .option(
      '--servers <list>',
      'comma-separated host:port of servers (default $PAXKV_SERVERS, then ./.paxkv/cluster.json)',
    )
    .option('--json', 'print machine-readable JSON results (same as -w json)')
    .addOption(
      new Option(
        '-w, --write-out <format>',
        'output format of informational commands (default table)',
      ).choices([...OUTPUT_FORMATS]),
    )
    .addOption(
      new Option(
        '--dial-timeout <ms>',
        `connect timeout in ms: fail if no server accepts a connection in time (default ${DEFAULT_DIAL_TIMEOUT_MS})`,
      ).argParser(positiveInt('--dial-timeout')),
    )
    .addOption(
      new Option('--timeout <ms>', `per-request deadline in ms (default ${DEFAULT_TIMEOUT_MS})`).argParser(
        positiveInt('--timeout'),
      ),
    )
    .option('--dir <dir>', `local cluster directory (default ./${DEFAULT_CLUSTER_DIR})`)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  addSecurityOptions(program);

  const kv = (build: (args: string[], local: Record<string, unknown>) => KvCommand) => {
    return async (...all: unknown[]) => {
      const cmd = all[all.length - 1] as Command;
      const args = cmd.args;
      const local = cmd.opts<Record<string, unknown>>();
      exitCode = await oneShot(build(args, local), program.opts<GlobalOptions>(), io);
    };
  };

  program
    .command('get')
    .description(
      'print the value of <key> alone on stdout (exit 1 if absent); --prefix: list the keys starting with <key>',
    )
    .argument('<key>')
    .option('--stale', 'allow a stale read from any replica')
    .option('--prefix', 'list every key starting with <key> (in key order, with revisions)')
    .option('--limit <n>', 'with --prefix: at most <n> keys')
    .option('--keys-only', 'with --prefix: keys and revisions only')
    .option('--reverse', 'with --prefix: descending key order')
    .action(async (key: string, local: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      if (local.prefix) {
        const ro = rangeOptions(local);
        exitCode = await oneShotData('get', global, io, async (c) =>
          rangeOutcome(
            await c.prefix(key, { ...ro, ...(local.stale ? { stale: true } : {}) }),
            ro.keysOnly === true,
            ro.reverse === true,
          ),
        );
        return;
      }
      exitCode = await oneShot(parseCommand(['get', key, ...(local.stale ? ['--stale'] : [])]), global, io);
    });
  program
    .command('range')
    .description(
      'list the keys from <start> (inclusive) to [end] (exclusive) in key order; one linearizable read when both share a {hash tag}, else a merge of per-partition reads (not one snapshot)',
    )
    .argument('<start>')
    .argument('[end]')
    .option('--limit <n>', 'at most <n> keys')
    .option('--keys-only', 'keys and revisions only')
    .option('--reverse', 'descending key order')
    .action(async (start: string, end: string | undefined, local: Record<string, unknown>) => {
      const ro = rangeOptions(local);
      exitCode = await oneShotData('range', program.opts<GlobalOptions>(), io, async (c) =>
        rangeOutcome(await c.range(start, end, ro), ro.keysOnly === true, ro.reverse === true),
      );
    });
  program
    .command('txn')
    .description(
      'run a transaction read as JSON from stdin, the shape the client\'s txn takes: {"compare":[...],"success":[...],"failure":[...]} (exit 1 if the compares failed)',
    )
    .action(async () => {
      const text = await readText(io.stdin);
      let request: ReturnType<typeof parseTxnJson>;
      try {
        request = parseTxnJson(text);
      } catch (e) {
        throw new UsageError(`paxkv txn: ${(e as Error).message}`);
      }
      exitCode = await oneShotData('txn', program.opts<GlobalOptions>(), io, async (c) =>
        txnOutcome(await c.txn(request)),
      );
    });
  program
    .command('put')
    .description('set <key> to <value>; `-` reads the value from stdin, --file from a file (byte for byte)')
    .argument('<key>')
    .argument('[value]')
    .option('--file <path>', 'read the value from this file')
    .option(
      '--ttl <duration>',
      'attach the key to a new lease of this TTL (10s, 1m, ...): it goes when not kept alive',
      parseTtl,
    )
    .action(async (key: string, value: string | undefined, local: { file?: string; ttl?: number }) => {
      const v = await resolveValue(value, local.file, io.stdin);
      const ttl = local.ttl;
      if (ttl !== undefined) {
        exitCode = await oneShotData('put', program.opts<GlobalOptions>(), io, (c) =>
          putWithTtl(c, key, v, ttl),
        );
        return;
      }
      exitCode = await oneShot({ kind: 'put', key, value: v }, program.opts<GlobalOptions>(), io);
    });
  // Lease, lock and watch commands (apps/cli/src/lease-commands.ts, watch-commands.ts).
  let interrupted: Promise<void> | undefined;
  const ctx: CommandContext = {
    io,
    runData: (name, run) => oneShotData(name, program.opts<GlobalOptions>(), io, run),
    openStream: async () => {
      const opts = program.opts<GlobalOptions>();
      const servers = resolveServers(opts, io);
      if (!servers) throw noServers();
      await dialAny(servers, opts.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
      const client = createClient({
        servers,
        requestTimeoutMs: opts.timeout ?? DEFAULT_TIMEOUT_MS,
        ...clientSecurity(),
      });
      return { client, json: formatOf(opts) === 'json' };
    },
    setExitCode: (code) => {
      exitCode = code;
    },
    get interrupted() {
      interrupted ??= new Promise<void>((resolveStop) => {
        const stop = () => resolveStop();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        stopListening.push(() => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        });
      });
      return interrupted;
    },
  };
  registerLeaseCommands(program, ctx);
  registerWatchCommands(program, ctx);
  const casByValue = kv((a, o) => {
    if (o.absent) {
      if (a.length !== 2) throw new CommandSyntaxError('usage: paxkv cas <key> --absent <value>');
      return parseCommand(['cas', a[0] as string, '--absent', a[1] as string]);
    }
    if (a.length !== 3) throw new CommandSyntaxError('usage: paxkv cas <key> <expected> <value>');
    return parseCommand(['cas', ...a]);
  });
  program
    .command('cas')
    .description(
      'set <key> to <value> only if it holds <expected> (exit 1 on mismatch); --absent: only if absent',
    )
    .argument('<key>')
    .argument('<expectedOrValue>')
    .argument('[value]')
    .option('--absent', 'expect the key to be absent')
    .option(
      '--mod-revision <n>',
      "cas <key> <value> --mod-revision N: only if the key's modRevision is N (0: absent)",
    )
    .option('--version <n>', "cas <key> <value> --version N: only if the key's version is N (0: absent)")
    .action(async (...all: unknown[]) => {
      const cmd = all[all.length - 1] as Command;
      const o = cmd.opts<Record<string, unknown>>();
      if (o.modRevision === undefined && o.version === undefined) return casByValue(...all);
      const a = cmd.args;
      if (a.length !== 2 || (o.modRevision !== undefined && o.version !== undefined) || o.absent) {
        throw new CommandSyntaxError('usage: paxkv cas <key> <value> --mod-revision N | --version N');
      }
      const expect: RevisionExpectation =
        o.modRevision !== undefined
          ? { modRevision: parseRevisionFlag('--mod-revision', o.modRevision) }
          : { version: parseRevisionFlag('--version', o.version) };
      const [key, value] = a as [string, string];
      exitCode = await oneShotData('cas', program.opts<GlobalOptions>(), io, async (c) =>
        casRevisionOutcome(key, expect, await c.cas(key, expect, value)),
      );
    });
  program
    .command('delete')
    .alias('del')
    .description('remove <key> (exit 1 if absent)')
    .argument('<key>')
    .action(kv((a) => parseCommand(['delete', a[0] as string])));
  program
    .command('status')
    .description(
      "show the lookup table, the servers (alive/suspected, reachable) and every partition's configuration, replicas (live or not), leader, decided index, how far its slowest replica is behind, and reconfiguration in progress",
    )
    // Also after the command (`paxkv status --json`), as the global flags are before it.
    .option('--json', 'print JSON (same as the global --json)')
    .addOption(
      new Option('-w, --write-out <format>', 'table | json | simple (same as the global -w)').choices([
        'table',
        'json',
        'simple',
      ]),
    )
    .action(async (local: { json?: boolean; writeOut?: OutputFormat }) => {
      const global = program.opts<GlobalOptions>();
      exitCode = await oneShot({ kind: 'status' }, { ...global, ...local }, io);
    });

  program
    .command('prompt')
    .description('open the interactive prompt against --servers (or the configured cluster)')
    .action(async () => {
      const opts = program.opts<GlobalOptions>();
      const servers = resolveServers(opts, io);
      if (!servers) throw noServers();
      exitCode = await prompt(servers, opts, io, `connected to ${servers.join(',')}`);
    });

  const cluster = program
    .command('cluster')
    .description('start, stop or inspect a local cluster of real servers');
  cluster
    .command('start')
    .description(
      'start a local cluster (or restart it on its data) and wait until every partition has a leader',
    )
    .addOption(
      new Option('--nodes <n>', 'servers of a new cluster (default 3)').argParser(positiveInt('--nodes')),
    )
    .addOption(
      new Option('--partitions <n>', 'partitions of a new cluster (default 16)').argParser(
        positiveInt('--partitions'),
      ),
    )
    .addOption(
      new Option('--replication <n>', 'replicas per partition (default min(3, nodes))').argParser(
        positiveInt('--replication'),
      ),
    )
    .addOption(
      new Option('--fsync <mode>', 'WAL fsync mode (default batch)').choices(['always', 'batch', 'never']),
    )
    .addOption(
      new Option(
        '--replace-after <seconds>',
        `move the replicas of a server unreachable this long to the other servers; 0 = off (default ${DEFAULT_REPLACE_AFTER_S}, kept in cluster.json)`,
      ).argParser(wholeSeconds('--replace-after', 86_400)),
    )
    .option('--dir <dir>', `cluster directory (default ./${DEFAULT_CLUSTER_DIR})`)
    .option(
      '--detach',
      'return once ready and leave the servers running (stop them with `paxkv cluster stop`)',
    )
    .addOption(new Option('--log-level <level>', 'server log level (default info)'))
    .option(
      '--resp',
      'also open a Redis protocol (RESP) port on every server, for redis-cli and Redis clients',
    )
    .option('--tls', 'TLS on every port, with a throwaway CA and certificates in <dir>/tls (a new cluster)')
    .option('--auth', "require logins (a new cluster): root's password is written to <dir>/root-password")
    .action(async (o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const dir = resolve(io.cwd, (o.dir as string | undefined) ?? global.dir ?? DEFAULT_CLUSTER_DIR);
      const started = await startCluster({
        dir,
        ...(o.resp ? { resp: true } : {}),
        ...(o.tls ? { tls: true } : {}),
        ...(o.auth ? { auth: true } : {}),
        ...(o.nodes !== undefined ? { nodes: o.nodes as number } : {}),
        ...(o.partitions !== undefined ? { partitions: o.partitions as number } : {}),
        ...(o.replication !== undefined ? { replication: o.replication as number } : {}),
        ...(o.fsync !== undefined ? { fsync: o.fsync as 'always' | 'batch' | 'never' } : {}),
        ...(o.replaceAfter !== undefined ? { replaceAfter: o.replaceAfter as number } : {}),
        ...(o.logLevel !== undefined ? { logLevel: o.logLevel as string } : {}),
        statusOf: (a) => {
          // A new --tls cluster's CA exists only now: probe with it.
          if (!clientSecurity().tls) configureSecurity(program.opts<SecurityFlags>(), io.env, dir);
          return statusOf(a, 1000);
        },
        log: err,
      });
      if (global.json) io.stdout.write(`${JSON.stringify({ ok: true, cluster: started.file })}\n`);
      else io.stdout.write(`${clusterSummary(started.file, started.view)}\n`);
      if (o.detach) {
        for (const c of started.children) c.unref();
        return;
      }
      err('running in the foreground: Ctrl-C stops the cluster');
      await waitForSignal();
      err('stopping the cluster...');
      await stopCluster(dir, { log: err });
    });
  cluster
    .command('add')
    .description(
      'start one more server in a running local cluster and add it as a member (a spare until replicas move onto it); prints its node id',
    )
    .option('--dir <dir>', `cluster directory (default ./${DEFAULT_CLUSTER_DIR})`)
    .addOption(new Option('--log-level <level>', 'server log level (default info)'))
    .action(async (o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const dir = resolve(io.cwd, (o.dir as string | undefined) ?? global.dir ?? DEFAULT_CLUSTER_DIR);
      const timeoutMs = global.timeout ?? DEFAULT_TIMEOUT_MS;
      const added = await addClusterNode({
        dir,
        memberAdd: (servers, address) => requestMemberAdd(servers, timeoutMs, address),
        statusOf: (a) => statusOf(a, 1000),
        ...(o.logLevel !== undefined ? { logLevel: o.logLevel as string } : {}),
        log: err,
      });
      added.child.unref();
      const n = added.node;
      if (global.json) {
        io.stdout.write(`${JSON.stringify({ ok: true, node: added.nodeId, server: n })}\n`);
      } else {
        io.stdout.write(
          `added node ${added.nodeId}: server ${n.index} at ${n.address} (pid ${n.pid}, log ${n.logFile}); a spare until replicas move onto it (paxkv member list)\n`,
        );
      }
    });
  cluster
    .command('stop')
    .description('stop the servers of a local cluster (SIGTERM, SIGKILL after a grace period); data is kept')
    .option('--dir <dir>', `cluster directory (default ./${DEFAULT_CLUSTER_DIR})`)
    .action(async (o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const dir = resolve(io.cwd, (o.dir as string | undefined) ?? global.dir ?? DEFAULT_CLUSTER_DIR);
      const n = await stopCluster(dir, { log: err });
      if (global.json) io.stdout.write(`${JSON.stringify({ ok: true, stopped: n })}\n`);
      else io.stdout.write(`stopped ${n} server${n === 1 ? '' : 's'}\n`);
    });
  cluster
    .command('status')
    .description('show the status of a local cluster')
    .option('--dir <dir>', `cluster directory (default ./${DEFAULT_CLUSTER_DIR})`)
    .action(async (o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const dir = resolve(io.cwd, (o.dir as string | undefined) ?? global.dir ?? DEFAULT_CLUSTER_DIR);
      const file = readClusterFile(dir);
      if (!file)
        throw new ClusterError(`no cluster in ${dir}: start one with \`paxkv cluster start --dir ${dir}\``);
      const running = file.nodes.filter((n) => isServerProcess(n));
      if (running.length === 0) {
        if (formatOf(global) === 'json')
          io.stdout.write(`${JSON.stringify({ ok: false, cluster: file, running: 0 })}\n`);
        throw new ClusterError(
          `the cluster in ${dir} is stopped: start it with \`paxkv cluster start --dir ${dir}\``,
        );
      }
      const addresses = file.nodes.map((n) => n.address);
      const [replies, metadata] = await Promise.all([
        Promise.all(addresses.map((a) => statusOf(a, global.timeout ?? 2000))),
        metadataOf(
          file.nodes.filter((n) => isServerProcess(n)).map((n) => n.address),
          global.timeout ?? 2000,
        ),
      ]);
      const view = mergeStatus(replies, metadata);
      // Servers by node id (what the table, the logs and the metrics call them), not by launch order.
      const rows = file.nodes
        .map((n, i) => {
          const r = replies[i];
          const node = r && 'status' in r ? r.status.node : null;
          return { node, n, up: isServerProcess(n) };
        })
        .sort((a, b) => (a.node ?? Number.MAX_SAFE_INTEGER) - (b.node ?? Number.MAX_SAFE_INTEGER));
      const format = formatOf(global);
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify({ ok: true, cluster: file, status: view })}\n`);
      } else {
        const cells = rows.map(({ node, n, up }) => [
          node === null ? '?' : String(node),
          n.address,
          up ? 'running' : 'stopped',
          up ? String(n.pid) : '-',
          n.dataDir,
        ]);
        if (format === 'simple') io.stdout.write(`${renderSimple(cells)}\n`);
        else
          io.stdout.write(
            `${renderTable(['NODE', 'ADDRESS', 'PROCESS', 'PID', 'DATA DIR'], cells)}\n\n${formatStatus(view)}\n`,
          );
      }
      if (running.length < file.nodes.length) exitCode = 1;
    });

  const endpoint = program.command('endpoint').description('per-server checks (like etcdctl endpoint)');
  endpoint
    .command('health')
    .description('is each server answering with a lookup table, and how fast (exit 1 if any is not)')
    .action(async () => {
      const global = program.opts<GlobalOptions>();
      const servers = resolveServers(global, io);
      if (!servers) throw noServers();
      const rows = await endpointHealth(servers, global.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
      io.stdout.write(`${formatHealth(rows, formatOf(global))}\n`);
      if (rows.some((r) => !r.health)) exitCode = 1;
    });
  endpoint
    .command('status')
    .description('per server: node id, table version, groups hosted and led, decided entries')
    .action(async () => {
      const global = program.opts<GlobalOptions>();
      const servers = resolveServers(global, io);
      if (!servers) throw noServers();
      const replies = await Promise.all(
        servers.map((s) => statusOf(s, global.timeout ?? DEFAULT_TIMEOUT_MS)),
      );
      const rows = replies.map(endpointStatus);
      io.stdout.write(`${formatEndpointStatus(rows, formatOf(global))}\n`);
      if (rows.some((r) => r.error !== undefined)) exitCode = 1;
    });

  // TLS and logins for every command; login, user and role commands (apps/cli/src/security-commands.ts).
  const clusterDir = () => resolve(io.cwd, program.opts<GlobalOptions>().dir ?? DEFAULT_CLUSTER_DIR);
  program.hook('preAction', (_program, action) => {
    // `login` reads its password itself (from --password-file or stdin).
    if (action.name() !== 'login') configureSecurity(program.opts<SecurityFlags>(), io.env, clusterDir());
  });
  registerSecurityCommands(program, {
    servers: () => {
      const servers = resolveServers(program.opts<GlobalOptions>(), io);
      if (!servers) throw noServers();
      return servers;
    },
    timeoutMs: () => program.opts<GlobalOptions>().timeout ?? DEFAULT_TIMEOUT_MS,
    env: io.env,
    flags: () => program.opts<SecurityFlags>(),
    clusterDir,
    stdin: io.stdin,
    out: (line) => io.stdout.write(`${line}\n`),
    json: () => formatOf(program.opts<GlobalOptions>()) === 'json',
  });

  // Membership commands (apps/cli/src/member-commands.ts).
  registerMemberCommands(program, {
    io,
    servers: () => {
      const servers = resolveServers(program.opts<GlobalOptions>(), io);
      if (!servers) throw noServers();
      return servers;
    },
    timeoutMs: () => program.opts<GlobalOptions>().timeout ?? DEFAULT_TIMEOUT_MS,
    format: () => formatOf(program.opts<GlobalOptions>()),
    setExitCode: (code) => {
      exitCode = code;
    },
  });

  const snapshot = program
    .command('snapshot')
    .description(
      'back up every partition of a cluster to a file, or restore a backup (like etcdctl snapshot)',
    );
  snapshot
    .command('save')
    .description(
      'save the state of every partition (each at one revision, after every write acknowledged before the save) to <file>, checksummed',
    )
    .argument('<file>')
    .action(async (file: string) => {
      const global = program.opts<GlobalOptions>();
      const servers = resolveServers(global, io);
      if (!servers) throw noServers();
      await dialAny(servers, global.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
      const path = resolve(io.cwd, file);
      const summary = await withClient(servers, global.timeout ?? DEFAULT_TIMEOUT_MS, (c) =>
        saveSnapshot(c, path, servers, (line) => err(`snapshot save: ${line}`)),
      );
      if (formatOf(global) === 'json')
        io.stdout.write(`${JSON.stringify({ ok: true, command: 'snapshot save', ...summary })}\n`);
      else io.stdout.write(`${formatSummary('saved', summary)}\n`);
    });
  snapshot
    .command('restore')
    .description(
      "load <file> into a new local cluster in --dir (started with the backup's partition count), or into the running cluster of --servers whose partitions are all empty",
    )
    .argument('<file>')
    .option(
      '--dir <dir>',
      'start a new local cluster here and restore into it (the directory must not hold a cluster)',
    )
    .addOption(new Option('--data-dir <dir>', 'same as --dir').hideHelp())
    .addOption(
      new Option('--nodes <n>', 'servers of the new cluster (default 3)').argParser(positiveInt('--nodes')),
    )
    .option('--keep-running', 'leave the new cluster running (default: stop it once restored; data kept)')
    .action(async (file: string, o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const contents = readSnapshotFile(resolve(io.cwd, file));
      const timeoutMs = global.timeout ?? DEFAULT_TIMEOUT_MS;
      const progress = (line: string) => err(`snapshot restore: ${line}`);
      const target = (o.dir ?? o.dataDir) as string | undefined;
      let summary: Awaited<ReturnType<typeof restoreSnapshot>>;
      if (target === undefined) {
        const servers =
          global.servers !== undefined || io.env.PAXKV_SERVERS ? resolveServers(global, io) : null;
        if (!servers)
          throw new UsageError(
            'say where to restore: --dir <new directory> starts a new local cluster, --servers (or PAXKV_SERVERS) names a running cluster whose partitions are empty',
          );
        await dialAny(servers, global.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS);
        summary = await withClient(servers, timeoutMs, (c) => restoreSnapshot(c, contents, file, progress));
      } else {
        const dir = resolve(io.cwd, target);
        if (readClusterFile(dir))
          throw new UsageError(
            `${dir} already holds a cluster: restore into a new directory (nothing was changed)`,
          );
        const started = await startCluster({
          dir,
          partitions: contents.header.partitions,
          ...(o.nodes !== undefined ? { nodes: o.nodes as number } : {}),
          statusOf: (a) => statusOf(a, 1000),
          log: err,
        });
        try {
          summary = await withClient(clusterServers(started.file), timeoutMs, (c) =>
            restoreSnapshot(c, contents, file, progress),
          );
        } finally {
          if (o.keepRunning) for (const c of started.children) c.unref();
          else await stopCluster(dir, { log: err });
        }
        if (formatOf(global) !== 'json')
          err(
            o.keepRunning
              ? `the restored cluster is running: paxkv --servers ${clusterServers(started.file).join(',')}`
              : `the restored cluster is stopped; start it with \`paxkv cluster start --dir ${dir}\``,
          );
      }
      if (formatOf(global) === 'json')
        io.stdout.write(`${JSON.stringify({ ok: true, command: 'snapshot restore', ...summary })}\n`);
      else io.stdout.write(`${formatSummary('restored', summary)}\n`);
    });
  snapshot
    .command('status')
    .description('verify <file> (checksums, format) and show what it holds, per partition')
    .argument('<file>')
    .action((file: string) => {
      const global = program.opts<GlobalOptions>();
      const { header, sha256, bytes } = readSnapshotFile(resolve(io.cwd, file));
      if (formatOf(global) === 'json') {
        io.stdout.write(
          `${JSON.stringify({ ok: true, command: 'snapshot status', sha256, bytes, ...header })}\n`,
        );
        return;
      }
      const keys = header.parts.reduce((n, p) => n + p.keys, 0);
      io.stdout.write(
        `${file}: paxkv snapshot format ${header.format}, taken ${header.createdAt}, ${header.partitions} partitions, ${keys} keys, ${bytes} bytes, sha256 ${sha256} (verified)\n`,
      );
      io.stdout.write(
        `${renderTable(
          ['PARTITION', 'REVISION', 'KEYS', 'LEASES', 'BYTES'],
          header.parts.map((p) => [
            String(p.partition),
            String(p.revision),
            String(p.keys),
            String(p.leases),
            String(p.bytes),
          ]),
        )}\n`,
      );
    });

  program
    .command('completion')
    .description('print a shell completion script: source <(paxkv completion bash), or zsh')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices([...SHELLS]))
    .action((shell: string) => {
      io.stdout.write(shell === 'zsh' ? zshCompletion(program) : bashCompletion(program));
    });

  program
    .command('bench')
    .description('load generator: closed-loop clients, then ops/s and latency percentiles (HDR histogram)')
    .addOption(
      new Option('--clients <n>', 'concurrent clients (default 16)').argParser(positiveInt('--clients')),
    )
    .addOption(new Option('--duration <s>', 'seconds to run (default 10)').argParser(seconds('--duration')))
    .addOption(new Option('--workload <w>', 'operation mix (default mixed)').choices([...WORKLOADS]))
    .addOption(new Option('--keys <n>', 'distinct keys (default 1000)').argParser(positiveInt('--keys')))
    .addOption(
      new Option('--value-size <bytes>', 'bytes per value (default 100)').argParser(
        positiveInt('--value-size'),
      ),
    )
    .action(async (o: Record<string, unknown>) => {
      const global = program.opts<GlobalOptions>();
      const servers = resolveServers(global, io);
      if (!servers) throw noServers();
      const timeoutMs = global.timeout ?? DEFAULT_TIMEOUT_MS;
      const clients = await Promise.all(
        Array.from({ length: (o.clients as number | undefined) ?? 16 }, () =>
          openClient(servers, { timeoutMs }),
        ),
      );
      let next = 0;
      const report: BenchReport = await runBench(() => clients[next++] as (typeof clients)[number], {
        clients: clients.length,
        ...(o.duration !== undefined ? { durationMs: (o.duration as number) * 1000 } : {}),
        ...(o.workload !== undefined ? { workload: o.workload as Workload } : {}),
        ...(o.keys !== undefined ? { keys: o.keys as number } : {}),
        ...(o.valueSize !== undefined ? { valueSize: o.valueSize as number } : {}),
        progress: err,
      });
      if (global.json) io.stdout.write(`${JSON.stringify(report)}\n`);
      else io.stdout.write(`${formatBenchReport(report)}\n`);
    });

  // No command: the prompt, starting a local cluster first when no servers are configured.
  program.action(async () => {
    const opts = program.opts<GlobalOptions>();
    const [unknown] = program.args;
    if (unknown !== undefined) {
      const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
      const close = suggest(unknown, names);
      throw new UsageError(
        `unknown command "${unknown}"${close ? ` (did you mean "${close}"?)` : ''}: \`paxkv --help\` lists the commands`,
      );
    }
    const servers = resolveServers(opts, io);
    if (servers) {
      exitCode = await prompt(servers, opts, io, `connected to ${servers.join(',')}`);
      return;
    }
    const dir = resolve(io.cwd, opts.dir ?? DEFAULT_CLUSTER_DIR);
    err(`starting a local 3-server cluster in ${dir} ...`);
    const started = await startCluster({ dir, statusOf: (a) => statusOf(a, 1000), log: err });
    try {
      exitCode = await prompt(
        clusterServers(started.file),
        opts,
        io,
        `${clusterSummary(started.file, started.view)}\nthe cluster stops when you leave the prompt`,
      );
    } finally {
      err(
        `stopping the local cluster (data kept; \`${io.env.PAXKV_INVOKED_AS ?? 'paxkv'}\` again restarts it)...`,
      );
      await stopCluster(dir, { log: err });
    }
  });

  // Extra words after `paxkv` reach the default action, which names an unknown command (with a suggestion)
  // instead of commander's "too many arguments". Set last: subcommands keep rejecting extra arguments.
  program.allowExcessArguments(true);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return 0;
      return EXIT.error;
    }
    if (
      e instanceof UsageError ||
      e instanceof ClusterError ||
      e instanceof CommandSyntaxError ||
      e instanceof ValueInputError ||
      e instanceof SnapshotFileError ||
      e instanceof SecurityConfigError
    ) {
      err(`paxkv: ${e.message}`);
      return EXIT.error;
    }
    const outcome = errorOutcome('paxkv', e);
    if (program.opts<GlobalOptions>().json) io.stdout.write(`${JSON.stringify(outcome.json)}\n`);
    err(`paxkv: ${outcome.stderr}`);
    return EXIT.error;
  } finally {
    for (const f of stopListening) f();
  }
}
