/**
 * `paxkv-server`: parses flags and the config file, starts a {@link PaxkvServer} with the real replica
 * groups (`@paxkv/kvstore`), and shuts down cleanly on SIGTERM/SIGINT (fsync, close sockets). A second
 * signal during shutdown exits at once. Exit codes: 0 clean stop, 1 start-up failure, 2 bad flags/config.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, insecureStartProblem } from './config.js';
import { checkDataDir, DataDirError } from './data-dir-check.js';
import { kvstoreGroupFactory, paxosMessageCheck } from './kvstore-groups.js';
import { createServerLogger } from './logger.js';
import { PaxkvServer } from './server.js';
import { loadServerConfig } from './server-flags.js';
import { applyV8Flags, serverV8Flags, V8FlagsError } from './v8-tuning.js';

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

/** Grace period for a clean shutdown before the process exits anyway, in ms. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<number> {
  // First, before any of the server's code runs hot (see v8-tuning.ts).
  try {
    applyV8Flags(serverV8Flags(process.env));
  } catch (e) {
    if (!(e instanceof V8FlagsError)) throw e;
    process.stderr.write(`paxkv-server: ${e.message}\n`);
    return 2;
  }
  let config: ReturnType<typeof loadServerConfig>;
  try {
    config = loadServerConfig(process.argv.slice(2), version(), undefined, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      if (e.message) process.stderr.write(`paxkv-server: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  // No peer authentication: refuse, unless the operator said --insecure (README "Peer authentication").
  const insecure = insecureStartProblem(config);
  if (insecure !== null) {
    process.stderr.write(`paxkv-server: ${insecure}\n`);
    return 2;
  }
  // Fail fast on a data dir the server cannot use, before it listens (never half-run).
  try {
    checkDataDir(config.dataDir);
  } catch (e) {
    if (!(e instanceof DataDirError)) throw e;
    process.stderr.write(`paxkv-server: ${e.message}\n`);
    return 1;
  }
  const logger = createServerLogger(config.logLevel);
  let server: PaxkvServer;
  try {
    server = await PaxkvServer.start(config, {
      groupFactory: kvstoreGroupFactory({
        tickMs: config.tickMs,
        requestTimeoutMs: config.requestTimeoutMs,
        snapshotEveryEntries: config.snapshotEveryEntries,
        logger,
        onFatal: (partition, error) => {
          logger.error(
            { partition, err: error.message },
            `replica group ${partition} failed for good: exiting`,
          );
          process.exit(1);
        },
      }),
      checkPaxosMessage: paxosMessageCheck,
      logger,
      onGroupOpenFailed: (partition, error) => {
        logger.error({ partition, err: error.message }, `cannot open partition ${partition}: exiting`);
        process.stderr.write(
          `paxkv-server: cannot open the data of partition ${partition} (${error.message}): fix or restore the data dir, then restart\n`,
        );
        process.exit(1);
      },
    });
  } catch (e) {
    logger.error({ err: (e as Error).message }, `paxkv-server failed to start: ${(e as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolveStop) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
        process.exit(1);
      }
      logger.info({ signal }, `${signal} received: shutting down (fsync, close sockets)`);
      const force = setTimeout(() => {
        logger.error({}, `shutdown took longer than ${SHUTDOWN_GRACE_MS} ms: exiting`);
        process.exit(1);
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      server.stop().then(
        () => resolveStop(),
        (e: unknown) => {
          logger.error({ err: (e as Error).message }, 'error during shutdown');
          resolveStop();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}

process.on('uncaughtException', (e) => {
  process.stderr.write(`paxkv-server: uncaught exception: ${e.stack ?? e.message}\n`);
  process.exit(1);
});

main().then(
  (code) => {
    process.exitCode = code;
    // Let pending log writes drain, then exit even if a stray handle remains.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (e: unknown) => {
    process.stderr.write(`paxkv-server: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
