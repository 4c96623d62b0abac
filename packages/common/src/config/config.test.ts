import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { ClientConfigSchema, DEFAULT_HIGH_WATER_MARK, ServerConfigSchema } from '../transport/options.js';
import { configFromEnv, defineConfig, loadConfig, mergeConfig } from './config.js';

const Schema = z.object({
  name: z.string().default('paxkv'),
  port: z.number().int().min(1).max(65535).default(7001),
  transport: z
    .object({ maxFrameBytes: z.number().int().positive().default(1024), noDelay: z.boolean().default(true) })
    .prefault({}),
  peers: z.array(z.string()).default([]),
});
const Config = defineConfig(Schema);

describe('defineConfig', () => {
  it('fills every default, nested ones included', () => {
    expect(Config.defaults()).toEqual({
      name: 'paxkv',
      port: 7001,
      transport: { maxFrameBytes: 1024, noDelay: true },
      peers: [],
    });
  });
  it('reports every invalid field at once with its path', () => {
    const r = Config.safeParse({ port: 0, transport: { maxFrameBytes: 'big' } }, 'test');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBeInstanceOf(ConfigError);
    expect(r.error.issues.map((i) => i.path)).toEqual(['port', 'transport.maxFrameBytes']);
    expect(r.error.message).toMatch(/from test/);
    expect(() => Config.parse({ port: 'x' })).toThrow(ConfigError);
  });
});

describe('loadConfig', () => {
  it('merges file < env < overrides over the defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'from-file', port: 7100, transport: { maxFrameBytes: 2048 } }),
    );
    const cfg = loadConfig(Schema, {
      file,
      env: {
        PAXKV_PORT: '7200',
        PAXKV_TRANSPORT__NO_DELAY: 'false',
        PAXKV_PEERS: '["a:1","b:2"]',
        OTHER: 'x',
      },
      overrides: { port: 7300 },
    });
    expect(cfg).toEqual({
      name: 'from-file',
      port: 7300,
      transport: { maxFrameBytes: 2048, noDelay: false },
      peers: ['a:1', 'b:2'],
    });
    expect(Config.load({ env: { PAXKV_NAME: 'n1' } }).name).toBe('n1');
  });
  it('reports a missing or malformed file as a ConfigError', () => {
    expect(() => loadConfig(Schema, { file: '/nonexistent/paxkv.json' })).toThrow(/cannot read the file/);
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-config-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ nope');
    expect(() => loadConfig(Schema, { file })).toThrow(/not valid JSON/);
  });
  it('names the source of a bad value', () => {
    expect(() => loadConfig(Schema, { env: { PAXKV_PORT: '99999' } })).toThrow(/environment.*port/);
  });
});

describe('helpers', () => {
  it('configFromEnv maps names to camelCase paths and parses JSON scalars', () => {
    expect(
      configFromEnv(
        { X_A__B_C: '1', X_D: 'text', X_E: '"12"', X_: 'ignored', X_F__: 'ignored', Y: '1' },
        'X_',
      ),
    ).toEqual({
      a: { bC: 1 },
      d: 'text',
      e: '12',
    });
  });
  it('mergeConfig replaces arrays, merges objects, and ignores __proto__', () => {
    expect(mergeConfig({ a: [1, 2], b: { c: 1 } }, { a: [3], b: { d: 2 } })).toEqual({
      a: [3],
      b: { c: 1, d: 2 },
    });
    const evil = JSON.parse('{"__proto__": {"polluted": true}}');
    mergeConfig({}, evil);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
  it('transport config schemas document their defaults', () => {
    const s = ServerConfigSchema.parse({});
    expect(s.highWaterMark).toBe(DEFAULT_HIGH_WATER_MARK);
    expect(s.maxFrameBytes).toBe(16 * 1024 * 1024);
    const c = ClientConfigSchema.parse({ backoff: { maxDelayMs: 1000 } });
    expect(c.stableAfterMs).toBe(1000);
    expect(c.backoff).toEqual({
      initialDelayMs: 50,
      maxDelayMs: 1000,
      multiplier: 2,
      jitter: 0.5,
    });
  });
});
