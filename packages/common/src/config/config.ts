/**
 * Configuration helpers: a zod schema gives every field its type, its documented default and its
 * validation; {@link loadConfig} merges a JSON file, environment variables and explicit overrides
 * over those defaults and reports every invalid field at once as a {@link ConfigError}.
 *
 * Note for schema authors (zod 4): give nested objects `.prefault({})`, not `.default({})`, so
 * that the defaults of their fields are applied when the whole object is missing.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';

/** Where {@link loadConfig} reads values from; later sources override earlier ones. */
export interface ConfigSources {
  /** Path of a JSON config file (optional). */
  readonly file?: string | undefined;
  /**
   * Environment to read (usually `process.env`). Only variables starting with `envPrefix` are used:
   * `PAXKV_TRANSPORT__MAX_FRAME_BYTES=1024` sets `transport.maxFrameBytes` (`__` nests, `_` joins
   * camelCase words). Values that parse as JSON numbers, booleans, null, arrays or objects are
   * used as such; anything else is a string (quote a numeric-looking string as JSON: `'"123"'`).
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Prefix of the environment variables to read. Default `PAXKV_`. */
  readonly envPrefix?: string | undefined;
  /** Values that override everything else (for example parsed command-line flags). */
  readonly overrides?: unknown;
}

/** Default prefix of configuration environment variables. */
export const DEFAULT_ENV_PREFIX = 'PAXKV_';

/** A configuration: its schema plus helpers to read it. */
export interface ConfigDefinition<S extends z.ZodType> {
  /** The zod schema. */
  readonly schema: S;
  /** The configuration with every field at its default (throws {@link ConfigError} if a field has none). */
  defaults(): z.output<S>;
  /**
   * Validates `input`, filling defaults.
   * @throws {@link ConfigError} listing every invalid field.
   */
  parse(input: unknown, source?: string): z.output<S>;
  /** Like {@link ConfigDefinition.parse} but returns the error instead of throwing. */
  safeParse(
    input: unknown,
    source?: string,
  ): { readonly ok: true; readonly value: z.output<S> } | { readonly ok: false; readonly error: ConfigError };
  /** Loads from the given sources (see {@link loadConfig}). */
  load(sources?: ConfigSources): z.output<S>;
}

function issuesOf(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), problem: i.message }));
}

/**
 * Defines a configuration from a zod schema whose fields carry their defaults
 * (`z.number().int().positive().default(16 * 1024 * 1024)`).
 */
export function defineConfig<S extends z.ZodType>(schema: S): ConfigDefinition<S> {
  const safeParse = (input: unknown, source?: string) => {
    const r = schema.safeParse(input);
    if (r.success) return { ok: true as const, value: r.data };
    return { ok: false as const, error: new ConfigError({ source, issues: issuesOf(r.error) }) };
  };
  const parse = (input: unknown, source?: string): z.output<S> => {
    const r = safeParse(input, source);
    if (!r.ok) throw r.error;
    return r.value;
  };
  return Object.freeze({
    schema,
    defaults: () => parse({}, 'defaults'),
    parse,
    safeParse,
    load: (sources: ConfigSources = {}) => loadConfig(schema, sources),
  });
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return (
    typeof x === 'object' && x !== null && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype
  );
}

/** Deep-merges plain objects (arrays and other values are replaced). Never mutates its inputs. */
export function mergeConfig(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = mergeConfig(out[k], v);
  }
  return out;
}

function camel(word: string): string {
  return word
    .toLowerCase()
    .split('_')
    .filter((w) => w.length > 0)
    .map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1)))
    .join('');
}

function envValue(raw: string): unknown {
  const t = raw.trim();
  if (/^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null|\[.*\]|\{.*\}|".*")$/s.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  return raw;
}

/**
 * Turns `PREFIX_A__B_C=value` variables into `{ a: { bC: value } }`. Variables without the prefix
 * are ignored.
 */
export function configFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  prefix: string = DEFAULT_ENV_PREFIX,
): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !name.startsWith(prefix) || name.length === prefix.length) continue;
    const path = name.slice(prefix.length).split('__').map(camel);
    if (path.some((p) => p.length === 0)) continue;
    let leaf: unknown = envValue(raw);
    for (let i = path.length - 1; i >= 0; i--) leaf = { [path[i]!]: leaf };
    out = mergeConfig(out, leaf) as Record<string, unknown>;
  }
  return out;
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError({
      source: file,
      issues: [{ path: '', problem: `cannot read the file (${(e as Error).message})` }],
    });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError({
      source: file,
      issues: [{ path: '', problem: `not valid JSON (${(e as Error).message})` }],
    });
  }
}

/**
 * Loads a configuration: schema defaults, then the JSON `file`, then `env` variables with
 * `envPrefix`, then `overrides`; validates the merged result.
 * @throws {@link ConfigError} listing every invalid field, or the file problem.
 */
export function loadConfig<S extends z.ZodType>(schema: S, sources: ConfigSources = {}): z.output<S> {
  let merged: unknown = {};
  const used: string[] = [];
  if (sources.file !== undefined) {
    merged = mergeConfig(merged, readJsonFile(sources.file));
    used.push(sources.file);
  }
  if (sources.env) {
    const fromEnv = configFromEnv(sources.env, sources.envPrefix ?? DEFAULT_ENV_PREFIX);
    if (Object.keys(fromEnv).length > 0) {
      merged = mergeConfig(merged, fromEnv);
      used.push('environment');
    }
  }
  if (sources.overrides !== undefined) {
    merged = mergeConfig(merged, sources.overrides);
    used.push('overrides');
  }
  const r = schema.safeParse(merged);
  if (!r.success)
    throw new ConfigError({ source: used.join(' + ') || 'defaults', issues: issuesOf(r.error) });
  return r.data;
}
