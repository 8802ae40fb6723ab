import { createHash } from 'node:crypto';
import { REPO_ROOT } from '../lib/paths';

/** A TCP port from the environment, or the default; a bad value names the variable. */
function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`${name}=${raw} is not a TCP port (1-65535)`);
  }
  return port;
}

/** A non-negative integer setting of a local process (`fallback` when unset or empty). */
export function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

/** LocalStack's port (LOCALSTACK_PORT, default 4566). */
export function localStackPort(): number {
  return portFromEnv('LOCALSTACK_PORT', 4566);
}

/** The local market API's port (MARKET_API_PORT, default 4580). */
export function marketApiPort(): number {
  return portFromEnv('MARKET_API_PORT', 4580);
}

/** The broker simulator's port (BROKER_SIM_PORT, default 4592). */
export function brokerSimPort(): number {
  return portFromEnv('BROKER_SIM_PORT', 4592);
}

/**
 * Defaults of the local stage: LocalStack on :4566 (LOCALSTACK_PORT), the real local PostgreSQL and Redis. Applied by
 * the CLI and the test set-up only, and only where a variable is unset, so an engineer can point any
 * of them elsewhere. Handler code never reads these defaults: it validates its environment and
 * fails at cold start when something is missing.
 */
export const LOCAL_DEFAULTS = {
  STAGE: 'local',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_ENDPOINT_URL: 'http://localhost:4566',
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/tickstock',
  REDIS_URL: 'redis://127.0.0.1:6379',
  MARKET_API_BASE_URL: 'http://127.0.0.1:4580',
  // The local market API accepts any non-empty key; in AWS the key comes from Secrets Manager.
  POLYGON_API_KEY: 'local-stage-key',
  // Locally the provider is our own server: no free-tier 5 calls/min limit to respect.
  MARKET_API_CALLS_PER_MINUTE: '60000',
  // Every component connects as its own database role (schemas/sql/0090_roles.sql), as in AWS.
  DATABASE_COMPONENT_ROLES: 'true',
  // Powertools: no X-Ray daemon locally; metrics (EMF) would only flood the runner's log.
  POWERTOOLS_TRACE_ENABLED: 'false',
  POWERTOOLS_METRICS_DISABLED: 'true',
  // The machine runs Node 20 (Lambda runs 24); the SDK's notice about its 2027 Node 22 floor is noise here.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/**
 * The tests' own database: stage-level tests use its public schema (through the `test` local
 * stage), unit tests a schema each.
 */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';

export function applyLocalDefaults(env: NodeJS.ProcessEnv = process.env): void {
  // Endpoints follow the ports, so a second stage on other ports needs only the two port variables.
  if (!env.AWS_ENDPOINT_URL) env.AWS_ENDPOINT_URL = `http://localhost:${localStackPort()}`;
  if (!env.MARKET_API_BASE_URL) env.MARKET_API_BASE_URL = `http://127.0.0.1:${marketApiPort()}`;
  if (!env.BROKER_BASE_URL) env.BROKER_BASE_URL = `http://127.0.0.1:${brokerSimPort()}`;
  for (const [key, value] of Object.entries(LOCAL_DEFAULTS)) {
    if (!env[key]) env[key] = value;
  }
  // Each named local stage (`local` for npm start, `test`, `load`, `bench`) of each checkout has its
  // own bucket, queues and runner, so stages and clones (CI's among them) never consume each
  // other's messages on a shared LocalStack.
  env.LOCAL_STAGE_NAME ||= 'local';
  env.LOCAL_STAGE_ID ||= `${env.LOCAL_STAGE_NAME}-${checkoutTag()}`;
  env.DATA_BUCKET ||= `tickstock-${env.LOCAL_STAGE_ID}-data`;
}

/** Six hex digits of this checkout's path: what makes its stage names (and databases) its own. */
export function checkoutTag(root: string = REPO_ROOT): string {
  return createHash('sha256').update(root).digest('hex').slice(0, 6);
}

/**
 * The database of a throwaway stage of this checkout (`load`: npm run test:load, `bench`: npm run
 * bench -- replay), e.g. tickstock_load_e21e93: two checkouts on one PostgreSQL never drop each
 * other's. LOAD_DATABASE_URL / BENCH_DATABASE_URL override it.
 */
export function checkoutDatabaseUrl(purpose: 'load' | 'bench', env: NodeJS.ProcessEnv = process.env): string {
  const override = purpose === 'load' ? env.LOAD_DATABASE_URL : env.BENCH_DATABASE_URL;
  return override || `postgres://postgres@127.0.0.1:5432/tickstock_${purpose}_${checkoutTag()}`;
}

/** The database name of a URL, checked to be a plain identifier (it is interpolated into DROP DATABASE). */
export function databaseNameOf(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  return name;
}

/** The name of this process's local stage (after applyLocalDefaults). */
export function localStageName(): string {
  return process.env.LOCAL_STAGE_NAME || 'local';
}
