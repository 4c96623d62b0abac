#!/usr/bin/env node
/** The paxkv-check command line: see `paxkv-check --help`. */
import { runCli } from './cli-main.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`paxkv-check: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
