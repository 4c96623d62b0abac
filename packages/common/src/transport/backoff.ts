/**
 * Capped exponential backoff with jitter.
 * @module
 */
import { z } from 'zod';

/** Backoff settings with their defaults. */
export const BackoffConfigSchema = z
  .object({
    /** Delay before the first retry, in ms. Default 50. */
    initialDelayMs: z.number().int().nonnegative().default(50),
    /** Upper bound of the delay, in ms. Default 5000. */
    maxDelayMs: z.number().int().positive().default(5_000),
    /** Growth factor per attempt. Default 2. */
    multiplier: z.number().min(1).max(100).default(2),
    /**
     * Fraction of the delay that is randomised, 0..1. Default 0.5: the delay is uniform in
     * [d/2, d], which spreads reconnecting clients while keeping the expected delay growing.
     */
    jitter: z.number().min(0).max(1).default(0.5),
  })
  .refine((b) => b.initialDelayMs <= b.maxDelayMs, { message: 'initialDelayMs must not exceed maxDelayMs' });

/** Backoff settings (see {@link BackoffConfigSchema} for the defaults). */
export type BackoffConfig = z.output<typeof BackoffConfigSchema>;

/** The default backoff settings. */
export const DEFAULT_BACKOFF: BackoffConfig = Object.freeze(BackoffConfigSchema.parse({}));

/**
 * Delay before retry number `attempt` (0-based): `d = min(maxDelayMs, initialDelayMs * multiplier^attempt)`,
 * then `d * (1 - jitter * random())`. `random` returns a number in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  config: BackoffConfig = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = config.initialDelayMs * config.multiplier ** Math.max(0, attempt);
  const capped = Math.min(config.maxDelayMs, Number.isFinite(exp) ? exp : config.maxDelayMs);
  return Math.round(capped * (1 - config.jitter * random()));
}
