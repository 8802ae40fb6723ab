import { describe, expect, it } from 'vitest';
import { checkoutDatabaseUrl, checkoutTag, databaseNameOf } from '../../../localstack/env';

describe("the load and bench databases are the checkout's own", () => {
  it('carry the checkout tag the stage names carry, and differ between checkouts', () => {
    const tag = checkoutTag();
    expect(databaseNameOf(checkoutDatabaseUrl('load', {}))).toBe(`tickstock_load_${tag}`);
    expect(databaseNameOf(checkoutDatabaseUrl('bench', {}))).toBe(`tickstock_bench_${tag}`);
    expect(checkoutTag('/work/wt-a')).not.toBe(checkoutTag('/work/wt-b'));
    expect(checkoutTag('/work/wt-a')).toMatch(/^[0-9a-f]{6}$/);
  });

  it('the load test config names the same database as the load setup', async () => {
    const config = (await import('../../../vitest.load.config')).default as {
      test: { env: Record<string, string> };
    };
    expect(config.test.env.DATABASE_URL).toBe(checkoutDatabaseUrl('load'));
  });

  it('LOAD_DATABASE_URL / BENCH_DATABASE_URL override them; a name that is not plain is refused', () => {
    expect(checkoutDatabaseUrl('load', { LOAD_DATABASE_URL: 'postgres://u@h:5432/mine' })).toBe(
      'postgres://u@h:5432/mine',
    );
    expect(() => databaseNameOf('postgres://u@h:5432/x;drop')).toThrow(/not a plain database name/);
  });
});
