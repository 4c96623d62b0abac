/**
 * `pnpm bench:cluster`: the side-by-side benchmark of paxkv and etcd (see README.md).
 * @module
 */
import { parseBenchArgs, USAGE, UsageError } from './options.js';
import { runBench } from './run.js';

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseBenchArgs>;
  try {
    parsed = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const report = await runBench(parsed.options, {
    out: (line) => process.stdout.write(`${line}\n`),
    log: (line) => process.stderr.write(`[bench] ${line}\n`),
  });
  return report.runs.some((r) => r.error === undefined) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(
      `bench:cluster failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
