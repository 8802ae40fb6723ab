/** Base class: every failure of the market-data provider adapter. */
export class ProviderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Missing or invalid configuration (API key, base URL): fails at cold start. */
export class ProviderConfigError extends ProviderError {}

/** 401/403: the key is missing, wrong or not entitled. Retrying will not help. */
export class ProviderAuthError extends ProviderError {
  constructor(
    readonly status: number,
    readonly url: string,
  ) {
    super(`provider refused the API key (HTTP ${status}) for ${url}`);
  }
}

/** 404: the resource (e.g. a ticker) does not exist on the provider. */
export class ProviderNotFoundError extends ProviderError {
  constructor(readonly url: string) {
    super(`not found on provider: ${url}`);
  }
}

/** Any other non-success status, or 429/5xx still failing after the retry budget. */
export class ProviderHttpError extends ProviderError {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly attempts: number,
  ) {
    super(`provider answered HTTP ${status} for ${url} after ${attempts} attempt(s)`);
  }
}

/** 429 still returned after the retry budget. */
export class ProviderRateLimitedError extends ProviderHttpError {}

/** No answer within the per-request timeout, after the retry budget. */
export class ProviderTimeoutError extends ProviderError {
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
    readonly attempts: number,
  ) {
    super(`provider did not answer within ${timeoutMs} ms for ${url} after ${attempts} attempt(s)`);
  }
}

/** Connection refused/reset/DNS failure, after the retry budget. */
export class ProviderNetworkError extends ProviderError {
  constructor(
    readonly url: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(
      `provider unreachable for ${url} after ${attempts} attempt(s): ${cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause)}`,
      { cause },
    );
  }
}

/** The body is not JSON or not the documented shape: stops here instead of deep inside a job. */
export class ProviderResponseError extends ProviderError {
  constructor(
    readonly url: string,
    readonly issues: readonly string[],
  ) {
    super(`malformed provider response for ${url}: ${issues.slice(0, 5).join('; ')}`);
  }
}

/** Never let the key reach a log line or an error message. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:apiKey|apikey|api_key)=)[^&#]*/g, '$1REDACTED');
}
