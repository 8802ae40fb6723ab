import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';

export { componentLoginRole, DATABASE_COMPONENTS, type DatabaseComponent } from './database-components';

import { ConfigError, type DatabaseEnv, type RedisEnv } from './config';
import { componentLoginRole, type DatabaseComponent } from './database-components';
import { createPool } from './postgres';
import { createRedisClient, type RedisClient } from './redis';

const secrets = new SecretsManagerClient({});

/** A secret's string value (Secrets Manager); never logged. */
export async function secretString(arn: string): Promise<string> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!SecretString) throw new ConfigError([`secret ${arn} has no string value`]);
  return SecretString;
}

/** Resolves where and how to reach PostgreSQL; credentials never leave this function in a log. */
export async function databaseConnection(env: DatabaseEnv): Promise<{ url: string; ssl: boolean }> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, ssl: false };
  if (!env.DB_SECRET_ARN || !env.DB_HOST || !env.DB_NAME) {
    throw new ConfigError(['set DATABASE_URL, or DB_SECRET_ARN + DB_HOST + DB_NAME']);
  }
  const secret = JSON.parse(await secretString(env.DB_SECRET_ARN)) as { username: string; password: string };
  const url = new URL(`postgres://${env.DB_HOST}:${env.DB_PORT}/${env.DB_NAME}`);
  url.username = encodeURIComponent(secret.username);
  url.password = encodeURIComponent(secret.password);
  // The RDS Proxy requires TLS.
  return { url: url.toString(), ssl: env.DB_TLS === 'required' };
}

export async function redisUrl(env: RedisEnv): Promise<string> {
  if (env.REDIS_URL) return env.REDIS_URL;
  if (env.REDIS_HOST && env.REDIS_TLS === 'disabled' && !env.REDIS_AUTH_SECRET_ARN) {
    // The deploy rehearsal's stage: the machine's Redis, without AUTH or TLS.
    return `redis://${env.REDIS_HOST}:${env.REDIS_PORT}`;
  }
  if (!env.REDIS_HOST || !env.REDIS_AUTH_SECRET_ARN) {
    throw new ConfigError(['set REDIS_URL, or REDIS_HOST + REDIS_AUTH_SECRET_ARN']);
  }
  const token = await secretString(env.REDIS_AUTH_SECRET_ARN);
  // rediss: ElastiCache is created with in-transit encryption required.
  const scheme = env.REDIS_TLS === 'required' ? 'rediss' : 'redis';
  return `${scheme}://:${encodeURIComponent(token)}@${env.REDIS_HOST}:${env.REDIS_PORT}`;
}

/**
 * A local DATABASE_URL with the component's login role as its user. The password is dropped: the
 * local server trusts loopback, and the admin's password must never reach a component.
 */
export function componentDatabaseUrl(url: string, component: DatabaseComponent): string {
  const target = new URL(url);
  target.username = componentLoginRole(component);
  target.password = '';
  return target.toString();
}

/** The URL a component connects with: its own role where DATABASE_COMPONENT_ROLES is on. */
export function localComponentUrl(
  url: string,
  component: DatabaseComponent,
  env: NodeJS.ProcessEnv = process.env,
): string {
  return env.DATABASE_COMPONENT_ROLES === 'true' ? componentDatabaseUrl(url, component) : url;
}

const pools = new Map<string, Promise<pg.Pool>>();
let redisPromise: Promise<RedisClient> | undefined;

/**
 * The container's PostgreSQL pool for a component, created on first use and reused by later
 * invocations. Without a component (the migrate function) it is the configured user, the owner.
 */
export function sharedPool(env: DatabaseEnv, component?: DatabaseComponent): Promise<pg.Pool> {
  const key = component ?? 'owner';
  let pool = pools.get(key);
  if (!pool) {
    pool = databaseConnection(env).then(({ url, ssl }) =>
      createPool({
        connectionString:
          component && env.DATABASE_URL && env.DATABASE_COMPONENT_ROLES
            ? componentDatabaseUrl(url, component)
            : url,
        ssl,
        schema: env.PG_SCHEMA,
        max: env.DB_POOL_MAX,
      }),
    );
    pools.set(key, pool);
    // A failed resolution must not be cached forever: the next invocation tries again.
    pool.catch(() => {
      if (pools.get(key) === pool) pools.delete(key);
    });
  }
  return pool;
}

/** The container's one Redis connection, connected on first use. */
export function sharedRedis(env: RedisEnv): Promise<RedisClient> {
  redisPromise ??= redisUrl(env).then(async (url) => {
    const client = createRedisClient({ url });
    await client.connect();
    return client;
  });
  redisPromise.catch(() => {
    redisPromise = undefined;
  });
  return redisPromise;
}

/** Closes the shared connections (CLI and tests; Lambda containers just freeze). */
export async function closeShared(): Promise<void> {
  const open = [...pools.values()];
  const redis = redisPromise;
  pools.clear();
  redisPromise = undefined;
  await Promise.allSettled([...open.map((pool) => pool.then((p) => p.end())), redis?.then((r) => r.close())]);
}
