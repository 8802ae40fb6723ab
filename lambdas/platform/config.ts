import { z } from 'zod';

export class ConfigError extends Error {
  constructor(issues: string[]) {
    super(`invalid configuration: ${issues.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates environment variables against a zod shape. Called at module scope by handlers, so a
 * missing or malformed variable fails the cold start with one clear message naming every problem.
 */
export function readConfig<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const result = z.object(shape).safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return result.data;
}

/** PostgreSQL: DATABASE_URL locally; in AWS the RDS Proxy endpoint plus the credentials secret. */
export const databaseEnv = {
  DATABASE_URL: z.string().url().optional(),
  DB_SECRET_ARN: z.string().optional(),
  DB_HOST: z.string().optional(),
  DB_PORT: z.coerce.number().int().default(5432),
  DB_NAME: z.string().optional(),
  /** The RDS Proxy requires TLS; only the deploy rehearsal's stage (the machine's PostgreSQL) disables it. */
  DB_TLS: z.enum(['required', 'disabled']).default('required'),
  PG_SCHEMA: z.string().optional(),
  /**
   * Connections in a container's pool (`sharedPool`): an invocation holds at most two at once (the
   * health ETL's transaction and its sleep-span lookup). The local runner, whose "containers" share
   * one process and so one pool, sets it to the sum of theirs.
   */
  DB_POOL_MAX: z.coerce.number().int().min(1).default(2),
  /**
   * Locally: connect as the component's login role (schemas/sql/0090_roles.sql) instead of the user
   * in DATABASE_URL. In AWS the secret in DB_SECRET_ARN is already the component's own.
   */
  DATABASE_COMPONENT_ROLES: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
};

/** Redis: REDIS_URL locally; in AWS the ElastiCache primary endpoint plus the AUTH token secret. */
export const redisEnv = {
  REDIS_URL: z.string().url().optional(),
  REDIS_HOST: z.string().optional(),
  REDIS_PORT: z.coerce.number().int().default(6379),
  REDIS_AUTH_SECRET_ARN: z.string().optional(),
  /** ElastiCache requires TLS and AUTH; only the deploy rehearsal's stage (the machine's Redis) has neither. */
  REDIS_TLS: z.enum(['required', 'disabled']).default('required'),
};

export type DatabaseEnv = z.infer<z.ZodObject<typeof databaseEnv>>;
export type RedisEnv = z.infer<z.ZodObject<typeof redisEnv>>;
