import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type CliIo, parseDuration, runCli } from './cli-main.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'test', 'fixtures');
const fx = (name: string): string => join(fixtures, name);

function fakeIo(
  files: Record<string, string> = {},
): CliIo & { stdout: string; stderr: string; written: Map<string, string> } {
  const io = {
    stdout: '',
    stderr: '',
    written: new Map<string, string>(),
    errIsTty: false,
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
    async readFile(p: string) {
      if (Object.hasOwn(files, p)) return files[p] as string;
      return readFileSync(p, 'utf8');
    },
    async writeFile(p: string, d: string) {
      io.written.set(p, d);
    },
  };
  return io;
}

describe('paxkv-check', () => {
  it('exits 0 on a linearizable history and prints the verdict', async () => {
    const io = fakeIo();
    expect(await runCli([fx('kv-ok.jsonl')], io)).toBe(0);
    expect(io.stdout).toMatch(/kv-ok\.jsonl: linearizable \(model kv, 7 ops, 0 dropped, 2 partitions/);
  });

  it('exits 1 on a violation and explains it', async () => {
    const io = fakeIo();
    expect(await runCli([fx('kv-stale-read.jsonl')], io)).toBe(1);
    expect(io.stdout).toMatch(/partition "k1": NOT linearizable/);
    expect(io.stdout).toMatch(
      /from state "b", none of these can go next:\n\s+✗ \[p2\] get\("k1"\) → "a"\s+\(line 6; illegal in this state\)/,
    );
  });

  it('prints one JSON object per file with --json', async () => {
    const io = fakeIo();
    expect(await runCli(['--json', fx('kv-ok.jsonl'), fx('kv-stale-read.jsonl')], io)).toBe(1);
    const lines = io.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ verdict: 'linearizable', operations: 7, partitions: 2 });
    expect(typeof lines[0].ms).toBe('number');
    expect(lines[1]).toMatchObject({ verdict: 'not-linearizable', operations: 4 });
    expect(lines[1].details[0]).toMatchObject({
      key: 'k1',
      verdict: 'not-linearizable',
      longestPrefix: [1, 2],
      stuck: [3],
    });
  });

  it('reads Jepsen EDN with --format auto and the cas-register model', async () => {
    const io = fakeIo();
    expect(await runCli(['--json', fx('cas-register.edn')], io)).toBe(0);
    expect(JSON.parse(io.stdout)).toMatchObject({
      verdict: 'linearizable',
      model: 'cas-register',
      dropped: 1,
    });
  });

  it('exits 2 when the time budget runs out', async () => {
    const ops: string[] = ['{"paxkvHistory":1,"model":"register"}'];
    for (let i = 0; i < 26; i++)
      ops.push(JSON.stringify({ type: 'invoke', process: i, id: i, time: i, op: { f: 'write', value: i } }));
    // a second write of 0: writes are no longer unique, so the fast path does not apply
    ops.push(JSON.stringify({ type: 'invoke', process: 99, id: 99, time: 26, op: { f: 'write', value: 0 } }));
    for (let i = 0; i < 26; i++) {
      ops.push(
        JSON.stringify({
          type: 'invoke',
          process: 100 + i,
          id: 100 + i,
          time: 50 + 2 * i,
          op: { f: 'read' },
        }),
      );
      ops.push(
        JSON.stringify({
          type: 'ok',
          process: 100 + i,
          id: 100 + i,
          time: 51 + 2 * i,
          result: { value: i % 2 ? i : 25 - i },
        }),
      );
    }
    const io = fakeIo({ 'hard.jsonl': `${ops.join('\n')}\n` });
    expect(await runCli(['--timeout', '20ms', 'hard.jsonl'], io)).toBe(2);
    expect(io.stdout).toMatch(/unknown: time budget exhausted/);
  });

  it.each([
    ['bad JSON', '{"type":"invoke",\n', /bad\.jsonl:1: not valid JSON/],
    [
      'unknown op',
      '{"type":"invoke","process":1,"id":1,"time":1,"op":{"f":"fly","key":"a"}}\n',
      /bad\.jsonl:1: .*no operation "fly"/,
    ],
    ['bad EDN', '{:type :invoke, :f :read\n', /bad\.jsonl:1: EDN: missing "}"/],
    [
      'bad etcd log',
      'INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tmaybe\n',
      /bad\.jsonl:2: value "maybe"/,
    ],
  ])('exits 3 with the line on %s', async (_name, text, msg) => {
    const io = fakeIo({ 'bad.jsonl': text });
    expect(await runCli(['bad.jsonl'], io)).toBe(3);
    expect(io.stderr).toMatch(msg);
  });

  it('exits 3 with the line on a malformed Porcupine kv file', async () => {
    const text =
      '{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n{:process 0, :type :ok, :f :get}\n';
    const io = fakeIo({ 'bad.txt': text });
    expect(await runCli(['--format', 'porcupine-kv', 'bad.txt'], io)).toBe(3);
    expect(io.stderr).toMatch(/bad\.txt:2: not a Porcupine kv line/);
  });

  it.each([
    ['an empty file', ''],
    ['blank lines only', '\n\n'],
  ])('treats %s as an empty, linearizable history', async (_name, text) => {
    const io = fakeIo({ 'empty.jsonl': text });
    expect(await runCli(['empty.jsonl'], io)).toBe(0);
  });

  it.each([['binary junk', '\u0000\u0001\u0002garbage']])('exits 3 on %s', async (_name, text) => {
    const io = fakeIo({ 'junk.bin': text });
    expect(await runCli(['junk.bin'], io)).toBe(3);
    expect(io.stderr).toMatch(/junk\.bin:1: cannot tell the format/);
  });

  it('exits 3 on a missing file, but still checks the others', async () => {
    const io = fakeIo();
    expect(await runCli(['/nonexistent/h.jsonl', fx('kv-ok.jsonl')], io)).toBe(3);
    expect(io.stderr).toMatch(/nonexistent/);
    expect(io.stdout).toMatch(/linearizable/);
  });

  it.each([
    [['--model', 'bank', 'x'], /unknown model "bank"/],
    [['--format', 'xml', 'x'], /--format: unknown format "xml"/],
    [['--timeout', 'soon', 'x'], /--timeout: cannot read "soon"/],
    [['--frobnicate'], /unknown option --frobnicate/],
    [[], /no history FILE/],
    [['--html'], /--html needs a value/],
  ])('exits 3 on bad usage %j', async (argv, msg) => {
    const io = fakeIo();
    expect(await runCli(argv, io)).toBe(3);
    expect(io.stderr).toMatch(msg);
  });

  it('prints help', async () => {
    const io = fakeIo();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.stdout).toMatch(/^usage: paxkv-check/);
  });

  it.each([['--version'], ['-V']])('prints the package version with %s', async (flag) => {
    const io = fakeIo();
    expect(await runCli([flag], io)).toBe(0);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(io.stdout).toBe(`${pkg.version}\n`);
  });

  it('writes a self-contained HTML report with --html', async () => {
    const io = fakeIo();
    expect(await runCli(['--html=report.html', fx('kv-stale-read.jsonl'), fx('kv-ok.jsonl')], io)).toBe(1);
    const html = io.written.get('report.html') as string;
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    expect(html).toContain('get(\\"k1\\") → \\"a\\"');
    const data = JSON.parse(/const DATA=(.*);\n/.exec(html)?.[1] ?? 'null');
    expect(data[0].parts[0]).toMatchObject({
      key: 'k1',
      verdict: 'not-linearizable',
      order: [0, 1],
      stuck: [2],
      states: ['"a"', '"b"'],
    });
  });

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1.5')).toBe(1500);
  });
});
