/** The live service's configuration from the environment (lambdas/trading-live/service.ts). */
import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../../lambdas/trading-live/service';

const base = {
  BROKER_BASE_URL: 'https://broker.example/',
  BROKER_KEY_ID: 'key',
  BROKER_SECRET_KEY: 'secret',
};

describe('trading-live configuration', () => {
  it('takes DATABASE_URL locally and the container DB_* variables (secret parts encoded) in AWS', () => {
    const local = configFromEnv({ ...base, DATABASE_URL: 'postgres://u@h/db', TRADING_HEALTH_PORT: '0' });
    expect(local).toMatchObject({
      databaseUrl: 'postgres://u@h/db',
      brokerBaseUrl: 'https://broker.example',
      brokerWsUrl: 'wss://broker.example/stream',
      account: 'default',
      healthPort: 0,
    });
    const aws = configFromEnv({
      ...base,
      DB_HOST: 'proxy.example',
      DB_NAME: 'tickstock',
      DB_USERNAME: 'tickstock_trading_login',
      DB_PASSWORD: 'p@ss/word',
      DB_TLS: 'required',
      TRADING_ACCOUNT: 'main',
    });
    expect(aws.databaseUrl).toBe(
      'postgres://tickstock_trading_login:p%40ss%2Fword@proxy.example:5432/tickstock',
    );
    expect(aws).toMatchObject({ databaseTls: true, account: 'main', healthPort: undefined });
  });

  it('names what is missing or malformed', () => {
    expect(() => configFromEnv({ ...base })).toThrow(/DATABASE_URL, or DB_HOST/);
    expect(() => configFromEnv({ DATABASE_URL: 'postgres://h/db', BROKER_BASE_URL: 'http://b' })).toThrow(
      'BROKER_KEY_ID is not set',
    );
    expect(() => configFromEnv({ ...base, DATABASE_URL: 'postgres://h/db', TRADING_POLL_MS: '-1' })).toThrow(
      'TRADING_POLL_MS must be a non-negative integer',
    );
  });

  it('honours a crash point only with TRADING_CRASH_POINTS=enabled, and only a known one', () => {
    const env = { ...base, DATABASE_URL: 'postgres://h/db', TRADING_CRASH_AT: 'submit_answered' };
    expect(configFromEnv(env).crashAt).toBeUndefined();
    expect(configFromEnv({ ...env, TRADING_CRASH_POINTS: 'enabled' }).crashAt).toBe('submit_answered');
    expect(() =>
      configFromEnv({ ...env, TRADING_CRASH_POINTS: 'enabled', TRADING_CRASH_AT: 'somewhere' }),
    ).toThrow(/TRADING_CRASH_AT must be one of before_submit, submit_answered/);
  });
});
