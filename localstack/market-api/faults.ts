import { z } from 'zod';

/**
 * Fault knobs: each fault applies to the next `next` API requests and/or for `windowMs` from the
 * moment it is set. Health and control endpoints are never faulted.
 */
const faultWindow = {
  next: z.number().int().nonnegative().optional(),
  windowMs: z.number().int().nonnegative().optional(),
};

export const FaultKnobsSchema = z.object({
  rateLimit: z
    .object({ ...faultWindow, retryAfterSeconds: z.number().int().nonnegative().optional() })
    .optional(),
  serverErrors: z
    .object({ ...faultWindow, status: z.number().int().min(500).max(599).optional() })
    .optional(),
  slow: z.object({ ...faultWindow, delayMs: z.number().int().nonnegative() }).optional(),
});
export type FaultKnobs = z.infer<typeof FaultKnobsSchema>;

interface Window {
  remaining: number;
  until: number;
}

function active(w: Window | undefined, now: number): boolean {
  return w !== undefined && (w.remaining > 0 || now < w.until);
}

function consume(w: Window): void {
  if (w.remaining > 0) w.remaining--;
}

function windowOf(k: { next?: number | undefined; windowMs?: number | undefined }, now: number): Window {
  return { remaining: k.next ?? 0, until: k.windowMs === undefined ? 0 : now + k.windowMs };
}

export type FaultDecision =
  | { kind: 'none'; delayMs: number }
  | { kind: 'rateLimit'; retryAfterSeconds: number; delayMs: number }
  | { kind: 'serverError'; status: number; delayMs: number };

export class Faults {
  private rateLimit: (Window & { retryAfterSeconds: number }) | undefined;
  private serverErrors: (Window & { status: number }) | undefined;
  private slow: (Window & { delayMs: number }) | undefined;
  readonly served = { rateLimited: 0, serverErrors: 0, slowed: 0 };

  set(knobs: FaultKnobs, now: number = Date.now()): void {
    if (knobs.rateLimit) {
      this.rateLimit = {
        ...windowOf(knobs.rateLimit, now),
        retryAfterSeconds: knobs.rateLimit.retryAfterSeconds ?? 1,
      };
    }
    if (knobs.serverErrors) {
      this.serverErrors = { ...windowOf(knobs.serverErrors, now), status: knobs.serverErrors.status ?? 503 };
    }
    if (knobs.slow) this.slow = { ...windowOf(knobs.slow, now), delayMs: knobs.slow.delayMs };
  }

  reset(): void {
    this.rateLimit = undefined;
    this.serverErrors = undefined;
    this.slow = undefined;
  }

  /** Decides the fate of one API request, consuming one unit of each applicable counter. */
  decide(now: number = Date.now()): FaultDecision {
    let delayMs = 0;
    if (this.slow && active(this.slow, now)) {
      consume(this.slow);
      delayMs = this.slow.delayMs;
      this.served.slowed++;
    }
    if (this.rateLimit && active(this.rateLimit, now)) {
      consume(this.rateLimit);
      this.served.rateLimited++;
      return { kind: 'rateLimit', retryAfterSeconds: this.rateLimit.retryAfterSeconds, delayMs };
    }
    if (this.serverErrors && active(this.serverErrors, now)) {
      consume(this.serverErrors);
      this.served.serverErrors++;
      return { kind: 'serverError', status: this.serverErrors.status, delayMs };
    }
    return { kind: 'none', delayMs };
  }

  snapshot(now: number = Date.now()): Record<string, unknown> {
    const view = (w: Window | undefined) =>
      w && active(w, now) ? { next: w.remaining, windowMsLeft: Math.max(0, w.until - now) } : null;
    return {
      rateLimit: view(this.rateLimit),
      serverErrors: view(this.serverErrors),
      slow: view(this.slow),
      served: { ...this.served },
    };
  }
}
