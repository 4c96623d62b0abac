/**
 * The key-value commands shared by the interactive prompt and the one-shot mode: tokenizing a prompt line
 * (with quotes), parsing it into a {@link KvCommand}, and the help text.
 */

/** A parsed key-value or informational command. */
export type KvCommand =
  | { readonly kind: 'get'; readonly key: string; readonly stale: boolean }
  | { readonly kind: 'put'; readonly key: string; readonly value: string | Uint8Array }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly kind: 'delete'; readonly key: string }
  | { readonly kind: 'status' }
  | { readonly kind: 'help'; readonly topic: string | null }
  | { readonly kind: 'exit' };

/** A command line that cannot be parsed; the message says what the right form is. */
export class CommandSyntaxError extends Error {
  override readonly name = 'CommandSyntaxError';
}

/** One line of usage per command, as shown by `help` (and reused by the one-shot `--help`). */
export const COMMAND_USAGE: Readonly<Record<string, { usage: string; summary: string }>> = {
  get: {
    usage: 'get <key> [--stale]',
    summary: 'print the value of <key> (linearizable; --stale reads any replica)',
  },
  put: { usage: 'put <key> <value>', summary: 'set <key> to <value>' },
  cas: {
    usage: 'cas <key> <expected> <value> | cas <key> --absent <value>',
    summary: 'set <key> to <value> only if it currently holds <expected> (or is absent)',
  },
  delete: { usage: 'delete <key>', summary: 'remove <key>' },
  status: { usage: 'status', summary: 'show the lookup table, group leaders and server health' },
  help: { usage: 'help [command]', summary: 'show this help, or the help of one command' },
  exit: { usage: 'exit', summary: 'leave the prompt (also: quit, Ctrl-D)' },
};

/** The help text of the prompt (or of one command). */
export function helpText(topic: string | null = null): string {
  if (topic !== null) {
    const entry = COMMAND_USAGE[topic];
    if (!entry) return `unknown command "${topic}". Commands: ${Object.keys(COMMAND_USAGE).join(', ')}`;
    return `${entry.usage}\n  ${entry.summary}`;
  }
  const width = Math.max(...Object.values(COMMAND_USAGE).map((e) => e.usage.length));
  const lines = Object.values(COMMAND_USAGE).map((e) => `  ${e.usage.padEnd(width)}  ${e.summary}`);
  return [
    'Commands:',
    ...lines,
    '',
    'Quote keys or values with spaces: put "my key" "hello world". Escapes inside quotes: \\" \\\\ \\n.',
    'Exit codes of one-shot commands: 0 ok, 1 not found (get, delete) or cas mismatch, 2 error.',
  ].join('\n');
}

/**
 * Splits a prompt line into words. Single or double quotes group words; inside double quotes `\"`, `\\`,
 * `\n` and `\t` are escapes; single quotes are literal.
 * @throws {CommandSyntaxError} on an unterminated quote.
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const ch = line[i] as string;
    if (ch === '"' || ch === "'") {
      const quote = ch;
      inWord = true;
      i += 1;
      let closed = false;
      while (i < line.length) {
        const c = line[i] as string;
        if (c === quote) {
          closed = true;
          i += 1;
          break;
        }
        if (quote === '"' && c === '\\' && i + 1 < line.length) {
          const next = line[i + 1] as string;
          current += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          i += 2;
          continue;
        }
        current += c;
        i += 1;
      }
      if (!closed) throw new CommandSyntaxError(`unterminated ${quote} quote: close it or escape it`);
      continue;
    }
    if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
      i += 1;
      continue;
    }
    current += ch;
    inWord = true;
    i += 1;
  }
  if (inWord) words.push(current);
  return words;
}

function usageError(name: string): CommandSyntaxError {
  return new CommandSyntaxError(`usage: ${COMMAND_USAGE[name]?.usage ?? name}`);
}

/**
 * Parses the words of one command (`["put", "k", "v"]`). Command names are case-insensitive; `del`/`rm`
 * alias `delete`, `quit` aliases `exit`, `?` aliases `help`.
 * @throws {CommandSyntaxError} naming the expected form.
 */
export function parseCommand(words: readonly string[]): KvCommand {
  const [rawName, ...args] = words;
  if (rawName === undefined) throw new CommandSyntaxError('empty command: type help');
  const name = rawName.toLowerCase();
  switch (name) {
    case 'get': {
      const flags = args.filter((a) => a === '--stale');
      const rest = args.filter((a) => a !== '--stale');
      if (rest.length !== 1 || flags.length > 1) throw usageError('get');
      return { kind: 'get', key: rest[0] as string, stale: flags.length === 1 };
    }
    case 'put':
    case 'set': {
      if (args.length !== 2) throw usageError('put');
      return { kind: 'put', key: args[0] as string, value: args[1] as string };
    }
    case 'cas': {
      if (args.length === 3 && args[1] === '--absent') {
        return { kind: 'cas', key: args[0] as string, expected: null, value: args[2] as string };
      }
      if (args.length === 3 && !args.includes('--absent')) {
        return { kind: 'cas', key: args[0] as string, expected: args[1] as string, value: args[2] as string };
      }
      throw usageError('cas');
    }
    case 'delete':
    case 'del':
    case 'rm': {
      if (args.length !== 1) throw usageError('delete');
      return { kind: 'delete', key: args[0] as string };
    }
    case 'status': {
      if (args.length !== 0) throw usageError('status');
      return { kind: 'status' };
    }
    case 'help':
    case '?': {
      if (args.length > 1) throw usageError('help');
      return { kind: 'help', topic: args[0]?.toLowerCase() ?? null };
    }
    case 'exit':
    case 'quit': {
      return { kind: 'exit' };
    }
    default:
      throw new CommandSyntaxError(`unknown command "${rawName}": type help for the list of commands`);
  }
}

/** {@link tokenize} then {@link parseCommand}; returns null for an empty or blank line. */
export function parseLine(line: string): KvCommand | null {
  const words = tokenize(line.trim());
  if (words.length === 0) return null;
  return parseCommand(words);
}
