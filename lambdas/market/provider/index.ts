export { resolveApiKey } from './api-key';
export {
  ProviderAuthError,
  ProviderConfigError,
  ProviderError,
  ProviderHttpError,
  ProviderNetworkError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderResponseError,
  ProviderTimeoutError,
  redactUrl,
} from './errors';
export { type HttpClientOptions, ProviderHttpClient } from './http';
export {
  type MarketDataProvider,
  PolygonProvider,
  type PolygonProviderOptions,
  type ProviderTicker,
  providerFromEnv,
  type Split,
  type SplitQuery,
  type TickerDetails,
  toSymbolRecord,
} from './provider';
export { type Clock, systemClock, TokenBucket } from './rate-limiter';
