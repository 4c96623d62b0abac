/**
 * V8 flags the server sets on itself at start, before any of its code is hot enough to be compiled by
 * TurboFan. They are set with `v8.setFlagsFromString`, so they apply however the server is started
 * (`paxkv-server`, `node dist/main.js`, the launcher) without a shell wrapper or a shebang with
 * arguments (which `env` on some systems cannot pass).
 * @module
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Default V8 flags of the server. `--max-inlined-bytecode-size-cumulative=230` (V8's default 920) caps
 * how much bytecode TurboFan inlines into one optimised function. The server's hot paths are many mid-sized
 * functions (message checks, the paxos core, the group's pump, msgpack), so with the default each
 * compilation is large. On the 2-core machine of `docs/performance.md` (session 11), put throughput at
 * 64 clients rose 15 % (12 alternating pairs, 10 higher; once passed on the command line, once set
 * here). At 256 clients, and in the worst second of `bench:cluster --reconfig`, no difference showed
 * beyond the runs' spread.
 */
export const DEFAULT_SERVER_V8_FLAGS: readonly string[] = ['--max-inlined-bytecode-size-cumulative=230'];

/** Environment variable that replaces {@link DEFAULT_SERVER_V8_FLAGS}: space-separated flags; empty = none. */
export const SERVER_V8_FLAGS_ENV = 'PAXKV_V8_FLAGS';

/** A `PAXKV_V8_FLAGS` value that is not a list of flags. */
export class V8FlagsError extends Error {
  override readonly name = 'V8FlagsError';
}

/**
 * The V8 flags to set: {@link DEFAULT_SERVER_V8_FLAGS}, or the space-separated list in `PAXKV_V8_FLAGS`
 * (empty: none).
 * @throws V8FlagsError when a word of `PAXKV_V8_FLAGS` does not start with `--`.
 */
export function serverV8Flags(env: NodeJS.ProcessEnv): readonly string[] {
  const value = env[SERVER_V8_FLAGS_ENV];
  if (value === undefined) return DEFAULT_SERVER_V8_FLAGS;
  const flags = value.split(/\s+/).filter((w) => w.length > 0);
  for (const f of flags) {
    if (!f.startsWith('--')) {
      throw new V8FlagsError(
        `${SERVER_V8_FLAGS_ENV} takes V8 flags separated by spaces, each starting with --, got '${f}' (an empty value sets none)`,
      );
    }
  }
  return flags;
}

/** Sets each flag (`set` is `v8.setFlagsFromString`; tests pass their own). */
export function applyV8Flags(
  flags: readonly string[],
  set: (flag: string) => void = setFlagsFromString,
): void {
  for (const f of flags) set(f);
}
