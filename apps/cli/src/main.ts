/**
 * `paxkv`: the paxkv command-line tool. One-shot commands (`get`, `put`, `cas`, `delete`, `status`), the
 * interactive prompt (no command), the local cluster launcher (`cluster start|stop|status`) and the load
 * generator (`bench`). With no arguments and no servers configured, it starts a local 3-server cluster
 * under `./.paxkv/`, opens the prompt, and stops the cluster on exit.
 */
import { runCli } from './cli.js';

// `paxkv ... | head`: a reader that went away ends the program quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `paxkv: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 2;
  },
);
