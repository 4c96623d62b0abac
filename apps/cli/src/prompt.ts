/**
 * The interactive prompt: reads commands line by line (readline, with history kept in a file across
 * sessions), runs them and prints results. Errors are printed and the prompt goes on.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { CommandSyntaxError, helpText, parseLine } from './commands.js';
import { displayValue, execute, type KvClientPort, type Outcome, type StatusReader } from './execute.js';

/** Options of {@link runPrompt}. */
export interface PromptOptions {
  readonly client: KvClientPort;
  readonly status: StatusReader;
  readonly input?: Readable;
  readonly output?: Writable;
  /** History file; null keeps no history on disk. Default: none (the CLI passes ~/.paxkv_history). */
  readonly historyFile?: string | null;
  /** Most history lines kept. Default 1000. */
  readonly historySize?: number;
  /** Text shown before each command. Default `paxkv> `. */
  readonly promptText?: string;
  /** A line printed once at start (e.g. which cluster the prompt is connected to). */
  readonly banner?: string;
  /**
   * More commands (`range`, `txn`, revision `cas`: see `data-commands.ts`): `run` resolves the
   * outcome of a line it handles, `undefined` for any other; `usage` lines are added to `help`.
   * Default none.
   */
  readonly data?: {
    readonly run: (line: string) => Promise<Outcome | undefined>;
    readonly usage: readonly string[];
  };
}

/** Reads the history file, newest line first (readline's order). */
export function loadHistory(file: string | null | undefined, size: number): string[] {
  if (!file) return [];
  try {
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim().length > 0);
    return lines.slice(-size).reverse();
  } catch {
    return [];
  }
}

function saveHistoryLine(file: string | null | undefined, line: string, size: number): void {
  if (!file) return;
  try {
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${line.replaceAll('\n', ' ')}\n`);
    const all = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0);
    if (all.length > size * 2) writeFileSync(file, `${all.slice(-size).join('\n')}\n`);
  } catch {
    // History is a convenience: a read-only home must not break the prompt.
  }
}

/**
 * Runs the prompt until `exit`, `quit`, Ctrl-D or the input ends. Resolves when the user leaves.
 * Ctrl-C on an empty line leaves too; on a partly typed line it clears the line.
 */
export async function runPrompt(options: PromptOptions): Promise<void> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const size = options.historySize ?? 1000;
  const interactive =
    (output as { isTTY?: boolean }).isTTY === true && (input as { isTTY?: boolean }).isTTY === true;
  const rl = createInterface({
    input,
    output,
    terminal: interactive,
    history: loadHistory(options.historyFile, size),
    historySize: size,
    removeHistoryDuplicates: true,
    prompt: options.promptText ?? 'paxkv> ',
  });
  const print = (text: string) => output.write(`${text}\n`);
  if (options.banner) print(options.banner);
  if (interactive) print('Type help for the commands, exit or Ctrl-D to leave.');

  rl.on('SIGINT', () => {
    if (rl.line.length > 0) {
      rl.write(null, { ctrl: true, name: 'u' });
      rl.prompt();
    } else {
      rl.close();
    }
  });
  rl.prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (trimmed.length > 0) saveHistoryLine(options.historyFile, trimmed, size);
    let stop = false;
    try {
      const dataOutcome = trimmed.length > 0 && options.data ? await options.data.run(trimmed) : undefined;
      const command = dataOutcome === undefined ? parseLine(trimmed) : null;
      if (dataOutcome !== undefined) {
        print(
          dataOutcome.exitCode === 0
            ? String(dataOutcome.stdout)
            : dataOutcome.stderr || String(dataOutcome.stdout),
        );
      } else if (command === null) {
        // empty line
      } else if (command.kind === 'help') {
        print(helpText(command.topic));
        if (command.topic === null && options.data) print(options.data.usage.map((u) => `  ${u}`).join('\n'));
      } else if (command.kind === 'exit') {
        stop = true;
      } else {
        const outcome = await execute(command, options.client, options.status);
        if (outcome.exitCode === 2) {
          print(outcome.stderr);
        } else if (command.kind === 'get') {
          print(
            outcome.stdout === '' && outcome.exitCode === 1 ? '(not found)' : displayValue(outcome.stdout),
          );
        } else if (outcome.stdout !== '') {
          print(typeof outcome.stdout === 'string' ? outcome.stdout : displayValue(outcome.stdout));
        } else {
          print(outcome.stderr);
        }
      }
    } catch (e) {
      if (e instanceof CommandSyntaxError) print(e.message);
      else print(`error: ${(e as Error).message}`);
    }
    if (stop) break;
    rl.prompt();
  }
  rl.close();
}
