import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as db from '../../../bin/commands/db';
import * as equityQueue from '../../../bin/commands/equity-queue';
import * as etl from '../../../bin/commands/etl';
import * as events from '../../../bin/commands/events';
import * as loadHistory from '../../../bin/commands/load-history';
import * as router from '../../../bin/commands/router';
import * as scenario from '../../../bin/commands/scenario';
import type { EquityTypeStatus } from '../../../lambdas/market/equity-processing/status';
import { runCommand } from '../../../lib/cli/run';
import { SAMPLES_DIR } from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';

/** Runs a command as the CLI does; returns its exit code and what it printed. */
async function cli(command: { run: (args: string[]) => Promise<number> }, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err.push(String(chunk));
    return true;
  });
  try {
    const code = await runCommand(command.run, args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

const ROUTER_FIXTURE = join(import.meta.dirname, '../../fixtures/realtime/defects.jsonl');

describe('usage errors: exit 2, the bad argument named with what would be valid', () => {
  const cases: [string, { run: (args: string[]) => Promise<number> }, string[], RegExp][] = [
    ['db: unknown action', db, ['migrate-all'], /unknown db action 'migrate-all': one of migrate/],
    ['db: no action', db, [], /db action is missing: one of migrate/],
    [
      'db: unknown option',
      db,
      ['migrate', '--schemas', 'x'],
      /unknown option --schemas; valid options: .*--schema/,
    ],
    ['db: bad schema', db, ['migrate', '--schema', 'Drop Table'], /--schema Drop Table is not a schema name/],
    ['events: unknown action', events, ['follow'], /unknown events action 'follow': one of tail/],
    [
      'events: pattern matching no channel',
      events,
      ['tail', 'tickstock.nothing.*'],
      /pattern 'tickstock.nothing.\*' matches no channel: .*tickstock.quality.price_anomaly/,
    ],
    [
      'events: unknown option',
      events,
      ['tail', '--from-streams'],
      /unknown option --from-streams; .*--from-stream/,
    ],
    ['etl: no --out', etl, ['run', SAMPLES_DIR], /--out DIR is required/],
    [
      'etl: unknown action',
      etl,
      ['walk', SAMPLES_DIR, '--out', tmpdir()],
      /unknown etl action 'walk': one of run/,
    ],
    [
      'etl: threshold out of range',
      etl,
      ['run', SAMPLES_DIR, '--out', tmpdir(), '--threshold', '3'],
      /--threshold 3 is not valid: expected a quality score from 0 to 1/,
    ],
    [
      'etl: two stores',
      etl,
      ['run', SAMPLES_DIR, '--out', tmpdir(), '--memory', '--schema', 'x'],
      /--memory and --schema exclude each other/,
    ],
    [
      'etl: missing input',
      etl,
      ['run', '/no/such/dir', '--out', tmpdir()],
      /no such file or directory: \/no\/such\/dir/,
    ],
    [
      'load-history: neither source',
      loadHistory,
      ['--years', '2'],
      /give exactly one of --symbols or --universe \(--symbols A,B or --universe/,
    ],
    [
      'load-history: years out of range',
      loadHistory,
      ['--symbols', 'AAPL', '--years', '0'],
      /--years 0 is not valid: expected a whole number 1-30/,
    ],
    [
      'load-history: unknown scenario',
      loadHistory,
      ['--symbols', 'AAPL', '--scenario', 'crash2020'],
      /unknown --scenario 'crash2020': one of crash_2020, /,
    ],
    [
      'load-history: bad end date',
      loadHistory,
      ['--symbols', 'AAPL', '--end', '2025-02-30'],
      /--end 2025-02-30 is not a date/,
    ],
    [
      'load-history: bad symbol',
      loadHistory,
      ['--symbols', 'AAPL,$$$'],
      /--symbols: '\$\$\$' is not a symbol/,
    ],
    [
      'load-history: unknown universe category',
      loadHistory,
      ['--universe', 'sectors:tech', '--scenario', 'ipo'],
      /unknown --universe category 'sectors': one of market_cap, sector, /,
    ],
    [
      'scenario: no action',
      scenario,
      [],
      /scenario action is missing: one of list, generate, load, validate/,
    ],
    [
      'scenario: unknown scenario',
      scenario,
      ['load', 'crash'],
      /unknown scenario 'crash': one of crash_2020, growth_2021/,
    ],
    ['scenario: generate without --out', scenario, ['generate', 'ipo'], /generate needs --out DIR/],
    [
      'scenario: bad format',
      scenario,
      ['generate', 'ipo', '--out', tmpdir(), '--format', 'xml'],
      /unknown --format 'xml': one of ndjson, csv/,
    ],
    [
      'scenario: bad size',
      scenario,
      ['validate', 'ipo', '--size', '0'],
      /--size 0 is not valid: expected a whole number 1-100000/,
    ],
    [
      'scenario: start and end',
      scenario,
      ['validate', 'ipo', '--start', '2025-01-02', '--end', '2025-06-30'],
      /give --start or --end, not both/,
    ],
    [
      'scenario: public schema',
      scenario,
      ['load', 'ipo', '--schema', 'public'],
      /never goes to the public schema/,
    ],
    [
      'equity-queue: unknown action',
      equityQueue,
      ['list'],
      /unknown equity-queue action 'list': one of add, dispatch, status/,
    ],
    [
      'equity-queue: add without --type',
      equityQueue,
      ['add', '--symbols', 'SPY'],
      /add needs exactly one --type/,
    ],
    ['equity-queue: add without symbols', equityQueue, ['add', '--type', 'ETF'], /--symbols is required/],
    [
      'equity-queue: bad priority',
      equityQueue,
      ['add', '--type', 'ETF', '--symbols', 'SPY', '--priority', 'high'],
      /--priority high is not valid/,
    ],
    [
      'equity-queue: bad date',
      equityQueue,
      ['dispatch', '--as-of', '2025-13-45'],
      /--as-of 2025-13-45 is not a date/,
    ],
    [
      'equity-queue: flag of another action',
      equityQueue,
      ['status', '--window', '60'],
      /--window does not apply to status/,
    ],
    [
      'router: unknown action',
      router,
      ['start'],
      /unknown router action 'start'; valid: replay, up, down, status/,
    ],
    ['router: no action', router, [], /no router action; valid: replay, up, down, status/],
    [
      'router: status with a stray option',
      router,
      ['status', '--verbose'],
      /unknown option --verbose; valid options: --json/,
    ],
    ['router replay: no feed', router, ['replay', '--out', '/tmp/x'], /router replay needs a feed file/],
    ['router replay: no --out', router, ['replay', ROUTER_FIXTURE], /--out <dir> is required/],
    [
      'router replay: bad speed',
      router,
      ['replay', ROUTER_FIXTURE, '--out', '/tmp/x', '--speed', 'fast'],
      /--speed fast: expected a positive number or max/,
    ],
    [
      'router replay: missing feed file',
      router,
      ['replay', '/nonexistent/feed.jsonl', '--out', '/tmp/x'],
      /no such feed file/,
    ],
  ];

  it.each(cases)('%s', async (_name, command, args, message) => {
    const { code, stderr, stdout } = await cli(command, args);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^usage error: /);
    expect(stderr).toMatch(message);
    expect(stdout).toBe('');
  });
});

describe('--json and the human tables', () => {
  let schema: TestSchema;
  let out: string;
  const saved = { url: process.env.DATABASE_URL, schema: process.env.PG_SCHEMA };

  beforeAll(async () => {
    schema = await createTestSchema('cli_json');
    out = await mkdtemp(join(tmpdir(), 'cli-json-'));
  });

  afterEach(() => {
    process.env.DATABASE_URL = saved.url;
    if (saved.schema === undefined) delete process.env.PG_SCHEMA;
    else process.env.PG_SCHEMA = saved.schema;
  });

  afterAll(async () => {
    await schema.drop();
    await rm(out, { recursive: true, force: true });
  });

  it('router replay: a per-channel table by default, the summary object with --json', async () => {
    const human = await cli(router, ['replay', ROUTER_FIXTURE, '--out', join(out, 'router-human')]);
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[1]).toMatch(
      /^\s+channel\s+received\s+delivered\s+duplicates\s+corrections\s+conflated\s+rejected\s+p99 ms$/,
    );
    expect(lines.filter((l) => /^\s+(tick|event|fmv|ohlcv)\s+\d/.test(l))).toHaveLength(4);

    const json = await cli(router, ['replay', ROUTER_FIXTURE, '--out', join(out, 'router-json'), '--json']);
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as {
      channels: Record<string, { received: number }>;
      malformed: number;
    };
    const written = JSON.parse(
      readFileSync(join(out, 'router-json', 'summary.json'), 'utf8'),
    ) as typeof summary;
    expect(Object.keys(summary.channels).sort()).toEqual(['event', 'fmv', 'ohlcv', 'tick']);
    expect(summary.channels).toEqual(written.channels);
    expect(summary.malformed).toBe(written.malformed);
  });

  it('scenario list: each session count once (a column, not repeated in the description)', async () => {
    const json = await cli(scenario, ['list', '--json']);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as { name: string; sessions: number; description: string }[];
    expect(rows.map((r) => r.name)).toContain('crash_2020');
    for (const r of rows) expect(r.description).not.toMatch(/^\d+ sessions/);

    const human = await cli(scenario, ['list']);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^scenario\s+sessions\s+from\s+what it contains$/);
    const crash = lines.find((l) => l.startsWith('crash_2020')) as string;
    expect(crash.match(/252/g)).toHaveLength(1);
  });

  it('scenario generate --json: the result object alone on stdout, the files written', async () => {
    const { code, stdout } = await cli(scenario, [
      'generate',
      'high_low_events',
      '--size',
      '20',
      '--out',
      out,
      '--json',
    ]);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({ scenario: 'high_low_events', symbols: 20, out });
    expect(result.bars).toBeGreaterThan(20 * 50);
    expect(existsSync(join(out, 'bars.ndjson'))).toBe(true);
    expect(readFileSync(join(out, 'bars.ndjson'), 'utf8').trim().split('\n')).toHaveLength(result.bars);
  });

  it('db migrate --json: schema, applied now and already applied', async () => {
    process.env.DATABASE_URL = schema.url;
    const { code, stdout } = await cli(db, ['migrate', '--schema', schema.schema, '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.schema).toBe(schema.schema);
    expect(result.applied).toEqual([]);
    expect(result.alreadyApplied).toBeGreaterThan(10);
    expect(result.database).not.toMatch(/@.*@/);

    const human = await cli(db, ['migrate', '--schema', schema.schema]);
    expect(human.stdout).toMatch(/applied now\s+0 \(up to date\)/);
  });

  it('equity-queue add/status --json, one header per column, unknown --type named with the valid ones', async () => {
    process.env.DATABASE_URL = schema.url;
    process.env.PG_SCHEMA = schema.schema;
    const added = await cli(equityQueue, ['add', '--type', 'ETF', '--symbols', 'spy,QQQ', '--json']);
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toEqual({ type: 'ETF', requested: 2, queued: 2, alreadyQueued: 0 });

    const again = await cli(equityQueue, ['add', '--type', 'ETF', '--symbols', 'SPY']);
    expect(again.stdout).toBe('ETF: 0 of 1 symbols queued, 1 already pending or processing');

    const status = await cli(equityQueue, ['status', '--json']);
    const etf = (JSON.parse(status.stdout) as EquityTypeStatus[]).find((s) => s.type === 'ETF');
    expect(etf?.queue.pending).toBe(2);

    const human = await cli(equityQueue, ['status']);
    const header = (human.stdout.split('\n')[0] as string).split(/\s{2,}/);
    expect(new Set(header).size).toBe(header.length);
    expect(header).toEqual(expect.arrayContaining(['queue failed', 'symbols failed']));

    const unknown = await cli(equityQueue, ['add', '--type', 'ETFS', '--symbols', 'SPY']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown --type ETFS: one of .*ETF/);
  });

  it('etl run --json: the summary document on stdout, the store line on stderr', async () => {
    const dir = join(out, 'etl');
    const { code, stdout, stderr } = await cli(etl, ['run', SAMPLES_DIR, '--out', dir, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      store: 'memory',
      totals: { files: 26, processed: 23, duplicate: 3 },
    });
    expect(stderr).toMatch(/record store: memory, fresh for this run/);
  });

  it('events tail: one aligned line per message by default', () => {
    const line = events.humanLine({
      channel: 'tickstock.quality.price_anomaly',
      timestamp: '2025-07-03T21:05:01.123Z',
      service: 'quality_check',
      event_type: 'price_anomaly',
      severity: 'warning',
      data: { symbol: 'AAPL' },
    });
    expect(line).toMatch(
      /^21:05:01.123 {2}quality.price_anomaly\s+quality_check\/price_anomaly\s+warning {2}\{"symbol":"AAPL"\}$/,
    );
  });
});
