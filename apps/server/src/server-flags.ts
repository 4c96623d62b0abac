/**
 * The command line of `paxkv-server`: commander flags, `--config` files and the environment, merged by
 * precedence (flag > config file > default) into a {@link ServerConfig} validated by
 * {@link parseServerConfig}.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  ConfigError,
  FSYNC_MODES,
  LOG_LEVELS,
  parseServerConfig,
  readConfigFile,
  type ServerConfig,
} from './config.js';

function intArg(name: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return Number(raw);
  };
}

/** Builds the commander program of `paxkv-server` (exported for the help text test and the README). */
export function buildServerCommand(version: string): Command {
  return new Command('paxkv-server')
    .description('A paxkv server: hosts the replica groups of its partitions and serves clients.')
    .version(version)
    .addOption(
      new Option('--port <port>', 'TCP port for clients, peers and bootstrap (default 7000)').argParser(
        intArg('--port'),
      ),
    )
    .addOption(new Option('--host <host>', 'interface to listen on (default 127.0.0.1)'))
    .addOption(new Option('--advertise <host:port>', 'address announced to peers (default host:port)'))
    .addOption(
      new Option('--join <host:port>', 'bootstrap server to check in with; omit on the bootstrap server'),
    )
    .addOption(
      new Option('--data-dir <dir>', 'directory for WAL, snapshots and identity (default ./paxkv-data)'),
    )
    .addOption(new Option('--fsync <mode>', 'WAL fsync mode (default batch)').choices([...FSYNC_MODES]))
    .addOption(
      new Option(
        '--bootstrap-threshold <n>',
        'servers needed before the table is built (default 3)',
      ).argParser(intArg('--bootstrap-threshold')),
    )
    .addOption(
      new Option('--replication <n>', 'replicas per partition (default 3)').argParser(
        intArg('--replication'),
      ),
    )
    .addOption(
      new Option('--partitions <n>', 'partitions of the key space (default 16)').argParser(
        intArg('--partitions'),
      ),
    )
    .addOption(
      new Option('--http-port <port>', 'HTTP port for /health and /metrics (default: off)').argParser(
        intArg('--http-port'),
      ),
    )
    .addOption(
      new Option(
        '--resp-port <port>',
        'port of the Redis protocol (RESP) front-end (default: off)',
      ).argParser(intArg('--resp-port')),
    )
    .addOption(
      new Option('--tick-ms <ms>', 'milliseconds per paxos tick (default 20)').argParser(intArg('--tick-ms')),
    )
    .addOption(
      new Option(
        '--cluster-token <token>',
        'shared secret peers prove with an HMAC challenge (>= 16 chars; also PAXKV_CLUSTER_TOKEN)',
      ),
    )
    .addOption(new Option('--cluster-token-file <file>', 'file holding the cluster token'))
    .addOption(
      new Option(
        '--tls-cert <file>',
        'PEM certificate of this server (TLS on every port; names the advertised host)',
      ),
    )
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert'))
    .addOption(
      new Option('--tls-ca <file>', 'PEM CA certificate that signs every server (and client) certificate'),
    )
    .addOption(
      new Option(
        '--replace-after <seconds>',
        'move the replicas of a server suspected this long to other servers; 0 = off (default 30)',
      ).argParser(intArg('--replace-after')),
    )
    .addOption(
      new Option(
        '--max-moves-in-flight <n>',
        'most replica moves (group reconfigurations) at once (default 1)',
      ).argParser(intArg('--max-moves-in-flight')),
    )
    .addOption(
      new Option(
        '--max-connections-per-host <n>',
        'most unauthenticated connections from one IP address, 0 = no limit (default 1024)',
      ).argParser(intArg('--max-connections-per-host')),
    )
    .addOption(
      new Option(
        '--move-interval-ms <ms>',
        'least time between the starts of two replica moves; 0 = back to back (default 1000)',
      ).argParser(intArg('--move-interval-ms')),
    )
    .addOption(
      new Option(
        '--warm-up <on|off>',
        'run the replica-move code once in memory after start, so the first real move is not slowed by the JIT (default on)',
      ).choices(['on', 'off']),
    )
    .addOption(
      new Option(
        '--insecure',
        'start without peer authentication (no cluster token, no TLS): anyone reaching the port can act as a peer',
      ),
    )
    .addOption(new Option('--auth', "require client logins and check every request against the user's roles"))
    .addOption(
      new Option(
        '--root-password-file <file>',
        'password of the root user (role admin), created at its first login',
      ),
    )
    .addOption(new Option('--config <file>', 'JSON config file; flags override it'))
    .addOption(new Option('--log-level <level>', 'log level (default info)').choices([...LOG_LEVELS]))
    .allowExcessArguments(false)
    .showHelpAfterError(false);
}

const FLAG_FIELDS = [
  'port',
  'host',
  'advertise',
  'join',
  'dataDir',
  'fsync',
  'bootstrapThreshold',
  'replication',
  'partitions',
  'httpPort',
  'respPort',
  'tickMs',
  'replaceAfter',
  'maxMovesInFlight',
  'maxConnectionsPerHost',
  'moveIntervalMs',
  'warmUp',
  'logLevel',
  'clusterToken',
  'clusterTokenFile',
  'tlsCert',
  'tlsKey',
  'tlsCa',
  'auth',
  'insecure',
  'rootPasswordFile',
] as const;

/** Where `--help`/`--version`/errors go; injectable for tests. */
export interface ConfigOutput {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

/**
 * Parses `argv` (without the node and script entries) into a validated configuration.
 * Flags override the config file, which overrides the defaults. The data dir is resolved to an absolute path.
 * @throws {ConfigError} for invalid flags or config; `exitCode` 0 when `--help`/`--version` was printed.
 */
export function loadServerConfig(
  argv: readonly string[],
  version: string,
  output?: ConfigOutput,
  env: Readonly<Record<string, string | undefined>> = {},
): ServerConfig {
  const program = buildServerCommand(version);
  program.exitOverride();
  // Errors are reported once, by the caller, from the ConfigError message.
  program.configureOutput({
    ...(output ? { writeOut: output.writeOut, writeErr: output.writeErr } : {}),
    outputError: () => {},
  });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      const ok =
        e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help';
      throw new ConfigError(ok ? '' : e.message, ok ? 0 : 2);
    }
    throw e;
  }
  const opts = program.opts<Record<string, unknown>>();
  const file = typeof opts.config === 'string' ? readConfigFile(opts.config) : {};
  const flags: Record<string, unknown> = {};
  for (const field of FLAG_FIELDS) {
    if (opts[field] !== undefined) flags[field] = opts[field];
  }
  const source = typeof opts.config === 'string' ? `flags and ${opts.config}` : 'flags';
  const merged = { ...file, ...flags };
  // The token may also come from the environment (never shown in the process list), lowest precedence.
  const envToken = env.PAXKV_CLUSTER_TOKEN;
  if (merged.clusterToken === undefined && merged.clusterTokenFile === undefined && envToken) {
    merged.clusterToken = envToken;
  }
  const config = parseServerConfig(merged, source);
  return { ...config, dataDir: resolve(config.dataDir) };
}
