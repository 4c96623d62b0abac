/**
 * `pnpm --filter @paxkv/paxos sim -- --seeds N --start S [--replicas 3|5] [--json] [--heavy] [--lossy] [--reconfig] [--quiet]`
 *
 * Runs N seeded simulations of a replica group with random faults (session breaks, partial and full
 * partitions, crashes and restarts of any number of replicas), checking the safety invariants after
 * every event and liveness after healing. Prints per run and in total: decided entries, leader
 * changes, faults injected, invariant violations. Exits 1 on any violation, printing the seed.
 * Without --replicas, even seeds run 3 replicas and odd seeds 5.
 * With --reconfig, each run is a reconfiguration run (`runReconfigSeed`): 6 servers, membership
 * changes of every kind racing the faults, the cross-configuration invariants checked.
 */
import { runReconfigSeed, runSeed, type SeedRunResult } from '../src/testing/index.js';

interface Args {
  seeds: number;
  start: number;
  replicas: number | undefined;
  json: boolean;
  heavy: boolean;
  quiet: boolean;
  lossy: boolean;
  reconfig: boolean;
}

function usage(msg: string): never {
  console.error(`sim: ${msg}`);
  console.error(
    'usage: sim --seeds N --start S [--replicas 3|5] [--json] [--heavy] [--lossy] [--reconfig] [--quiet]',
  );
  process.exit(2);
}

function parse(argv: string[]): Args {
  const a: Args = {
    seeds: 100,
    start: 1,
    replicas: undefined,
    json: false,
    heavy: false,
    quiet: false,
    lossy: false,
    reconfig: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) usage(`${k} needs a non-negative integer`);
      return v;
    };
    switch (k) {
      case '--':
        break;
      case '--seeds':
        a.seeds = num();
        break;
      case '--start':
        a.start = num();
        break;
      case '--replicas': {
        const r = num();
        if (r < 1 || r > 9) usage('--replicas must be between 1 and 9');
        a.replicas = r;
        break;
      }
      case '--json':
        a.json = true;
        break;
      case '--heavy':
        a.heavy = true;
        break;
      case '--lossy':
        a.lossy = true;
        break;
      case '--reconfig':
        a.reconfig = true;
        break;
      case '--quiet':
        a.quiet = true;
        break;
      case '--help':
      case '-h':
        usage('help');
        break;
      default:
        usage(`unknown argument ${k}`);
    }
  }
  return a;
}

const args = parse(process.argv.slice(2));
const nemesis = args.heavy
  ? { crashProbability: 0.05, linkBreakProbability: 0.1, partitionProbability: 0.03 }
  : {};
const network = args.lossy ? { lossProbability: 0.03, duplicateProbability: 0.05 } : {};
const total = { runs: 0, decided: 0, leaderChanges: 0, faults: 0, violations: 0, maxRecoveryTicks: 0 };
const failed: SeedRunResult[] = [];
const t0 = performance.now();
if (args.reconfig) {
  // Membership changes racing the faults: 6 servers, groups of 1 to 5 replicas.
  let configurations = 0;
  let joins = 0;
  const bad: number[] = [];
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    const r = runReconfigSeed(seed, { nemesis, ...network });
    total.runs++;
    total.decided += r.decided;
    total.faults += r.faults;
    total.violations += r.violations.length;
    total.maxRecoveryTicks = Math.max(total.maxRecoveryTicks, r.recoveryTicks);
    configurations += r.configurations;
    joins += r.reconfig.joins;
    if (r.violations.length > 0) bad.push(seed);
    if (args.json) console.log(JSON.stringify({ ...r, network: undefined }));
    else if (!args.quiet || r.violations.length > 0) {
      console.log(
        `seed=${seed} decided=${r.decided} configurations=${r.configurations} joins=${r.reconfig.joins} faults=${r.faults} recoveryTicks=${r.recoveryTicks} violations=${r.violations.length}${r.violations.length ? ` ${r.violations.join('; ')}` : ''}`,
      );
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `total: runs=${total.runs} decided=${total.decided} configurations=${configurations} joins=${joins} faults=${total.faults} violations=${total.violations} maxRecoveryTicks=${total.maxRecoveryTicks} time=${seconds.toFixed(1)}s`,
  );
  if (bad.length > 0) {
    console.error(`FAILED seeds: ${bad.join(', ')}`);
    console.error(
      `replay one with: pnpm --filter @paxkv/paxos sim -- --reconfig${args.heavy ? ' --heavy' : ''}${args.lossy ? ' --lossy' : ''} --seeds 1 --start <seed>`,
    );
    process.exit(1);
  }
  process.exit(0);
}
for (let seed = args.start; seed < args.start + args.seeds; seed++) {
  const replicas = args.replicas ?? (seed % 2 === 0 ? 3 : 5);
  const r = runSeed(seed, { replicas, nemesis, ...network });
  total.runs++;
  total.decided += r.decided;
  total.leaderChanges += r.leaderChanges;
  total.faults += r.faults;
  total.violations += r.violations.length;
  total.maxRecoveryTicks = Math.max(total.maxRecoveryTicks, r.recoveryTicks);
  if (r.violations.length > 0) failed.push(r);
  if (args.json) {
    const { network: _n, ...rest } = r;
    console.log(JSON.stringify(rest));
  } else if (!args.quiet || r.violations.length > 0) {
    console.log(
      `seed=${seed} replicas=${replicas} decided=${r.decided} leaderChanges=${r.leaderChanges} faults=${r.faults} recoveryTicks=${r.recoveryTicks} violations=${r.violations.length}${r.violations.length ? ` ${r.violations.join('; ')}` : ''}`,
    );
  }
}
const seconds = (performance.now() - t0) / 1000;
if (args.json) console.log(JSON.stringify({ total: { ...total, seconds } }));
else {
  console.log(
    `total: runs=${total.runs} decided=${total.decided} leaderChanges=${total.leaderChanges} faults=${total.faults} violations=${total.violations} maxRecoveryTicks=${total.maxRecoveryTicks} time=${seconds.toFixed(1)}s`,
  );
}
if (failed.length > 0) {
  console.error(`FAILED seeds: ${failed.map((r) => `${r.seed} (replicas ${r.replicas})`).join(', ')}`);
  console.error('replay one with: pnpm --filter @paxkv/paxos sim -- --seeds 1 --start <seed> --replicas <n>');
  process.exit(1);
}
