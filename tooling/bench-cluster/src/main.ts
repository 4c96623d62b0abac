/**
 * `pnpm bench:cluster`: the side-by-side benchmark of paxkv and etcd (see README.md).
 * @module
 */
import { parseBenchArgs, USAGE, UsageError } from './options.js';
import { runReconfigBench } from './reconfig-bench.js';
import { runReconfigCostBench } from './reconfig-cost.js';
import { runBench } from './run.js';
import { runTlsBench } from './tls-bench.js';

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
  const io = {
    out: (line: string) => process.stdout.write(`${line}\n`),
    log: (line: string) => process.stderr.write(`[bench] ${line}\n`),
  };
  if (parsed.options.reconfigCost) {
    const cost = await runReconfigCostBench(parsed.options, io);
    return cost.errors.length === 0 && cost.results.length > 0 ? 0 : 1;
  }
  if (parsed.options.reconfig) {
    const reconfig = await runReconfigBench(parsed.options, io);
    return reconfig.errors.length === 0 && reconfig.results.length > 0 ? 0 : 1;
  }
  const report = parsed.options.tls
    ? await runTlsBench(parsed.options, io)
    : await runBench(parsed.options, io);
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
