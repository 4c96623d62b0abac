import { arityError, type CommandSpec, printable, RespCommandError } from './command-context.js';

export {
  type CommandContext,
  type CommandSpec,
  errorReply,
  int64Arg,
  type MultiState,
  REDIS_COMPAT_VERSION,
  type RespClientState,
  RespCommandError,
  type ScanCursor,
} from './command-context.js';
export { queueCommand, runsInsideMulti } from './multi.js';

import { adminSpecs } from './admin-specs.js';
import { DATA_SPECS } from './data-specs.js';

export { globToRegExp } from './scan.js';

const specs: CommandSpec[] = [...DATA_SPECS, ...adminSpecs(() => COMMANDS)];

/** Every command, by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(specs.map((s) => [s.name, s]));

/**
 * Looks a command up and checks its arity. Returns the spec, or the error reply (`unknown command`,
 * `wrong number of arguments`) in Redis's exact words.
 */
export function lookupCommand(args: readonly Buffer[]): CommandSpec | RespCommandError {
  const nameBuf = args[0] as Buffer;
  const spec = nameBuf.length <= 16 ? COMMANDS.get(nameBuf.toString('latin1').toLowerCase()) : undefined;
  if (!spec) {
    const rest = args
      .slice(1)
      .map((a) => `'${printable(a)}' `)
      .join('');
    return new RespCommandError(
      `ERR unknown command '${printable(nameBuf)}', with args beginning with: ${rest}`,
    );
  }
  if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) {
    return arityError(spec.name);
  }
  return spec;
}

/**
 * The keys a command touches, as exact byte strings (`latin1`), for ordering pipelined commands of one
 * connection: a command waits for the earlier ones on any of its keys.
 */
export function commandKeys(spec: CommandSpec, args: readonly Buffer[]): string[] {
  const [first, last, step] = spec.keys;
  if (first === 0) return [];
  const end = last < 0 ? args.length + last : last;
  const keys: string[] = [];
  for (let i = first; i <= end && i < args.length; i += step)
    keys.push((args[i] as Buffer).toString('latin1'));
  return keys;
}
