import { describe, expect, it } from 'vitest';
import { CommandSyntaxError, helpText, parseLine, tokenize } from './commands.js';

describe('tokenize', () => {
  it.each([
    ['get k', ['get', 'k']],
    ['  put   k   v  ', ['put', 'k', 'v']],
    ['put "my key" "hello world"', ['put', 'my key', 'hello world']],
    ["put 'a b' 'c\\d'", ['put', 'a b', 'c\\d']],
    ['put k "line\\nbreak \\"q\\" \\\\"', ['put', 'k', 'line\nbreak "q" \\']],
    ['put k ""', ['put', 'k', '']],
    ['put k a"b c"d', ['put', 'k', 'ab cd']],
    ['', []],
  ])('%j', (line, words) => {
    expect(tokenize(line)).toEqual(words);
  });

  it('rejects an unterminated quote', () => {
    expect(() => tokenize('put k "oops')).toThrow(CommandSyntaxError);
  });
});

describe('parseLine', () => {
  it.each([
    ['get k', { kind: 'get', key: 'k', stale: false }],
    ['GET k --stale', { kind: 'get', key: 'k', stale: true }],
    ['put k v', { kind: 'put', key: 'k', value: 'v' }],
    ['set k v', { kind: 'put', key: 'k', value: 'v' }],
    ['cas k old new', { kind: 'cas', key: 'k', expected: 'old', value: 'new' }],
    ['cas k --absent new', { kind: 'cas', key: 'k', expected: null, value: 'new' }],
    ['delete k', { kind: 'delete', key: 'k' }],
    ['del k', { kind: 'delete', key: 'k' }],
    ['status', { kind: 'status' }],
    ['help', { kind: 'help', topic: null }],
    ['help CAS', { kind: 'help', topic: 'cas' }],
    ['quit', { kind: 'exit' }],
  ])('%j', (line, command) => {
    expect(parseLine(line)).toEqual(command);
  });

  it('returns null for a blank line', () => {
    expect(parseLine('   ')).toBeNull();
  });

  it.each([
    'get',
    'get a b',
    'put k',
    'put a b c',
    'cas k v',
    'cas k --absent',
    'delete',
    'status x',
    'frobnicate k',
  ])('rejects %j with a usage message', (line) => {
    expect(() => parseLine(line)).toThrow(CommandSyntaxError);
    try {
      parseLine(line);
    } catch (e) {
      expect((e as Error).message).toMatch(/usage:|unknown command/);
    }
  });
});

describe('helpText', () => {
  it('lists every command and the exit codes', () => {
    const text = helpText();
    for (const c of ['get', 'put', 'cas', 'delete', 'status', 'help', 'exit']) expect(text).toContain(c);
    expect(text).toContain('Exit codes');
  });

  it('explains one command, or says it does not exist', () => {
    expect(helpText('cas')).toContain('--absent');
    expect(helpText('nope')).toContain('unknown command');
  });
});
