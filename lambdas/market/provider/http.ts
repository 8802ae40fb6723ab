import type { z } from 'zod';
import {
  ProviderAuthError,
  ProviderHttpError,
  ProviderNetworkError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderResponseError,
  ProviderTimeoutError,
  redactUrl,
} from './errors';
import { type Clock, systemClock, type TokenBucket } from './rate-limiter';

export interface HttpClientOptions {
  readonly baseUrl: string;
  /** Resolved lazily (Secrets Manager in AWS) and sent as the `apiKey` query parameter. */
  readonly apiKey: () => Promise<string>;
  readonly rateLimiter?: TokenBucket;
  readonly timeoutMs?: number;
  /** Retries after the first attempt, for 429, 5xx, timeouts and network errors. */
  readonly maxRetries?: number;
  readonly baseBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Cap on a server-requested Retry-After wait. */
  readonly maxRetryAfterMs?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
}

type Outcome =
  | { kind: 'ok'; body: unknown }
  | { kind: 'retry'; waitMs: number | undefined; fail: () => Error };

/**
 * GET-JSON with the provider's failure modes handled once: token-bucket pacing, 429 with
 * Retry-After, jittered exponential back-off on 5xx/timeouts/network errors, and zod validation of
 * the body. Every attempt (retries included) takes a token, because the provider counts them all.
 */
export class ProviderHttpClient {
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(private readonly options: HttpClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 5;
    this.baseBackoffMs = options.baseBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  /** Builds an absolute URL for a path + query on the base URL (query values undefined are skipped). */
  url(path: string, query: Record<string, string | number | boolean | undefined> = {}): string {
    const url = new URL(
      path,
      this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`,
    );
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  /**
   * Fetches an absolute URL (a built one or the provider's next_url, which carries its cursor but
   * not the key) and validates the body.
   */
  async getJson<S extends z.ZodType>(target: string, schema: S): Promise<z.output<S>> {
    const url = new URL(target);
    url.searchParams.set('apiKey', await this.options.apiKey());
    const href = url.toString();
    const shown = redactUrl(href);
    for (let attempt = 1; ; attempt++) {
      await this.options.rateLimiter?.take();
      const outcome = await this.attempt(href, shown, attempt);
      if (outcome.kind === 'ok') {
        const parsed = schema.safeParse(outcome.body);
        if (!parsed.success) {
          throw new ProviderResponseError(
            shown,
            parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
          );
        }
        return parsed.data;
      }
      if (attempt > this.maxRetries) throw outcome.fail();
      await this.clock.sleep(outcome.waitMs ?? this.backoff(attempt));
    }
  }

  private async attempt(href: string, shown: string, attempt: number): Promise<Outcome> {
    let response: Response;
    try {
      response = await fetch(href, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      return this.transportFailure(error, shown, attempt);
    }
    if (response.status === 429) {
      await response.body?.cancel();
      return {
        kind: 'retry',
        waitMs: this.retryAfterMs(response.headers.get('retry-after')),
        fail: () => new ProviderRateLimitedError(429, shown, attempt),
      };
    }
    if (response.status >= 500) {
      await response.body?.cancel();
      return {
        kind: 'retry',
        waitMs: undefined,
        fail: () => new ProviderHttpError(response.status, shown, attempt),
      };
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new ProviderAuthError(response.status, shown);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      throw new ProviderNotFoundError(shown);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ProviderHttpError(response.status, shown, attempt);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      return this.transportFailure(error, shown, attempt);
    }
    try {
      return { kind: 'ok', body: JSON.parse(text) };
    } catch {
      throw new ProviderResponseError(shown, [`body is not JSON (${text.length} bytes)`]);
    }
  }

  private transportFailure(error: unknown, shown: string, attempt: number): Outcome {
    const timedOut =
      error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return {
      kind: 'retry',
      waitMs: undefined,
      fail: () =>
        timedOut
          ? new ProviderTimeoutError(shown, this.timeoutMs, attempt)
          : new ProviderNetworkError(shown, attempt, error),
    };
  }

  /** Full-jitter exponential back-off: spreads retries of many workers instead of synchronising them. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** Retry-After is either delta-seconds or an HTTP date; undefined falls back to back-off. */
  private retryAfterMs(header: string | null): number | undefined {
    if (header === null || header.trim() === '') return undefined;
    const value = header.trim();
    const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - this.clock.now();
    if (Number.isNaN(ms)) return undefined;
    return Math.min(this.maxRetryAfterMs, Math.max(0, ms));
  }
}
