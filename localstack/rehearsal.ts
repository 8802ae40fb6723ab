import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, paginateListStackResources } from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { z } from 'zod';
import { queueSymbolsForProcessing } from '../lambdas/market/sql/processing-queue';
import { createPool } from '../lambdas/platform/postgres';
import { createRedisClient } from '../lambdas/platform/redis';
import { STAGES } from '../lib/config';
import { REPO_ROOT } from '../lib/paths';
import { stageId } from '../lib/pipeline-stage';
import { type MarketApi, startMarketApi } from './market-api/server';
import { type MiniStack, startMiniStack } from './ministack';
import { logFile, STATE_DIR, tail } from './processes';
import { replay } from './replay';

/**
 * The deploy rehearsal: `cdk deploy` of the `local` stage (lib/config.ts) onto MiniStack with the
 * README's own deploy command, then checks through the deployed resources only (S3 -> notification
 * -> SQS -> deployed function, the deployed state machine, a schedule, a dead-letter path), then
 * teardown, also on failure.
 */

const CONFIG = STAGES.local;
const EMULATOR = CONFIG.emulator as NonNullable<typeof CONFIG.emulator>;
const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const STAGE_ID = stageId(CONFIG.name);
const DATA_STACK = `${STAGE_ID}-Data`;
const COMPUTE_STACK = `${STAGE_ID}-Compute`;
const REPLAY_PATHS = [
  join(REPO_ROOT, 'test/fixtures/health/samples'),
  join(REPO_ROOT, 'test/fixtures/health/bad'),
];
/** A date no calendar has: every attempt of the first EOD step fails on it. */
const POISON_DATE = '2025-02-30';

type Say = (line: string) => void;

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly detail: string;
}

export interface RehearsalReport {
  readonly ok: boolean;
  readonly checks: readonly CheckResult[];
  readonly seconds: number;
}

export class RehearsalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RehearsalError';
  }
}

/** The database URL the local stage's functions use (lib/config.ts), for the rehearsal's own checks. */
export function rehearsalDatabaseUrl(): string {
  const { host, port, username } = EMULATOR.database;
  return `postgres://${username}@${host}:${port}/${CONFIG.database.databaseName}`;
}

/**
 * The deploy command the README gives users (section "Deploying"), for the `local` stage: the
 * rehearsal runs exactly it, so a README command that deploys nothing fails here first.
 */
export function readmeDeployCommand(readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')): string[] {
  const line = readme
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^npx cdk deploy\b/.test(l) && /-c stage=/.test(l));
  if (!line) throw new RehearsalError('README.md names no `npx cdk deploy ... -c stage=<name>` command');
  const command = line.replace(/\s+#.*$/, '');
  const stage = /-c stage=(\S+)/.exec(command)?.[1] as string;
  const tokens = command.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  return tokens.map((t) =>
    t
      .replace(/^['"]|['"]$/g, '')
      .replaceAll(`Tickstock-${stage}`, STAGE_ID)
      .replace(`stage=${stage}`, `stage=${CONFIG.name}`),
  );
}

/** Commands the rehearsal is running (cdk): each in a process group of its own, stopped at teardown. */
const running = new Set<number>();

function stopRunning(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  running.clear();
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; log: string; timeoutMs: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(options.log, { flags: 'a' });
    out.write(`\n$ ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (child.pid !== undefined) running.add(child.pid);
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    const timer = setTimeout(stopRunning, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      out.end();
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) running.delete(child.pid);
      out.end(() => {
        if (code === 0) resolve();
        else
          reject(
            new RehearsalError(
              `\`${command} ${args.join(' ')}\` ${signal ? `was stopped (${signal})` : `exited ${code}`}; last lines of ${options.log}:\n${tail(options.log, 25)}`,
            ),
          );
      });
    });
  });
}

/** Physical ids of a deployed stack's resources by logical id. */
async function stackResources(cf: CloudFormationClient, stack: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for await (const page of paginateListStackResources({ client: cf }, { StackName: stack })) {
    for (const r of page.StackResourceSummaries ?? []) {
      if (r.LogicalResourceId && r.PhysicalResourceId) found.set(r.LogicalResourceId, r.PhysicalResourceId);
    }
  }
  return found;
}

/** One resource by the logical id CDK derives from its construct path (`<path><8 hex>`). */
function physical(resources: Map<string, string>, path: string): string {
  const pattern = new RegExp(`^${path}[0-9A-F]{8}$`);
  const matches = [...resources].filter(([logical]) => pattern.test(logical));
  if (matches.length !== 1)
    throw new RehearsalError(`expected one deployed resource ${path}*, found ${matches.length}`);
  return (matches[0] as [string, string])[1];
}

async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name)) throw new RehearsalError(`unexpected database name ${name}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const pool = createPool({ connectionString: admin.toString(), max: 1 });
  try {
    await pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await pool.query(`CREATE DATABASE ${name}`);
  } finally {
    await pool.end();
  }
}

async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const pool = createPool({ connectionString: admin.toString(), max: 1 });
  try {
    await pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await pool.end();
  }
}

/** Deletes the rehearsal's event-bus keys (its own namespace) from the machine's Redis. */
async function clearRedisNamespace(): Promise<number> {
  const { host, port } = EMULATOR.redis;
  const client = createRedisClient({ url: `redis://${host}:${port}` });
  await client.connect();
  try {
    let deleted = 0;
    for await (const keys of client.scanIterator({ MATCH: `${EMULATOR.eventBusNamespace}*`, COUNT: 500 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
    return deleted;
  } finally {
    await client.close();
  }
}

const marketHealth = z.object({
  scenario: z.string(),
  seed: z.union([z.number(), z.string()]),
  size: z.number(),
  end: z.string(),
});

async function marketApiState(): Promise<z.infer<typeof marketHealth> | undefined> {
  try {
    const response = await fetch(`${CONFIG.marketData.baseUrl}/_health`, {
      signal: AbortSignal.timeout(2_000),
    });
    return response.ok ? marketHealth.parse(await response.json()) : undefined;
  } catch {
    return undefined;
  }
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new RehearsalError(`${what}: not within ${timeoutMs / 1_000} s`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function execution(sfn: SFNClient, arn: string, timeoutMs: number) {
  return waitFor(`execution ${arn.split(':').pop()}`, timeoutMs, async () => {
    const e = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    return e.status === 'RUNNING' || e.status === 'PENDING_REDRIVE' ? undefined : e;
  });
}

/**
 * Runs the rehearsal. Every step is timed and printed; teardown (MiniStack and its workers, the
 * rehearsal database and Redis keys, a market API it started) runs whatever happened.
 */
export async function rehearse(say: Say = console.log): Promise<RehearsalReport> {
  const started = performance.now();
  const checks: CheckResult[] = [];
  const since = (t: number) => (performance.now() - t) / 1_000;
  const record = (name: string, ok: boolean, t: number, detail: string) => {
    const result = { name, ok, seconds: since(t), detail };
    checks.push(result);
    say(`${ok ? 'PASS' : 'FAIL'}  ${name.padEnd(44)} ${result.seconds.toFixed(1).padStart(6)} s  ${detail}`);
    return result;
  };
  const step = async (name: string, body: () => Promise<string>): Promise<boolean> => {
    const t = performance.now();
    try {
      return record(name, true, t, await body()).ok;
    } catch (error) {
      return record(name, false, t, error instanceof Error ? error.message : String(error)).ok;
    }
  };

  mkdirSync(STATE_DIR, { recursive: true });
  const deployLog = logFile('rehearsal-cdk');
  const databaseUrl = rehearsalDatabaseUrl();
  let ministack: MiniStack | undefined;
  let ownMarketApi: MarketApi | undefined;
  let pool: pg.Pool | undefined;
  const clients: { destroy(): void }[] = [];
  const teardown = async () => {
    const t = performance.now();
    const done: string[] = [];
    stopRunning();
    for (const c of clients) c.destroy();
    await pool?.end().catch(() => undefined);
    if (ministack) {
      await ministack.stop();
      done.push(`MiniStack and its Lambda workers stopped (process group ${ministack.pid})`);
    }
    if (ownMarketApi) {
      await ownMarketApi.close();
      done.push('market API stopped');
    }
    await dropDatabase(databaseUrl).then(
      () => done.push(`database ${CONFIG.database.databaseName} dropped`),
      (e: Error) => done.push(`database not dropped: ${e.message}`),
    );
    await clearRedisNamespace().then(
      (n) => done.push(`${n} Redis keys of ${EMULATOR.eventBusNamespace} deleted`),
      (e: Error) => done.push(`Redis keys not deleted: ${e.message}`),
    );
    say(`teardown (${since(t).toFixed(1)} s): ${done.join('; ')}`);
  };
  const interrupted = () => {
    say('interrupted: tearing down');
    teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    const prepared = await step('prepare: database, Redis namespace, market API', async () => {
      await recreateDatabase(databaseUrl);
      const cleared = await clearRedisNamespace();
      if (!(await marketApiState())) {
        ownMarketApi = await startMarketApi({
          port: Number(new URL(CONFIG.marketData.baseUrl).port),
          host: '127.0.0.1',
        });
      }
      const market = await marketApiState();
      return `fresh ${CONFIG.database.databaseName}, ${cleared} stale keys deleted, market API ${ownMarketApi ? 'started' : 'reused'} (${market?.scenario}, ${market?.size} symbols, last session ${market?.end})`;
    });
    if (!prepared) return report();

    const up = await step('MiniStack up (own port, pinned venv)', async () => {
      ministack = await startMiniStack(() => undefined);
      return `${ministack.endpoint}, pid ${ministack.pid}`;
    });
    if (!up || !ministack) return report();
    const endpoint = ministack.endpoint;
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
    });
    const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };

    const bootstrapped = await step('cdk bootstrap', async () => {
      // Outside the project: the default template needs no synth of the app.
      const cwd = join(STATE_DIR, 'rehearsal-bootstrap');
      mkdirSync(cwd, { recursive: true });
      await run(join(REPO_ROOT, 'node_modules/.bin/cdk'), ['bootstrap', `aws://${ACCOUNT}/${REGION}`], {
        cwd,
        env,
        log: deployLog,
        timeoutMs: 300_000,
      });
      return `aws://${ACCOUNT}/${REGION}`;
    });
    if (!bootstrapped) return report();

    const deployCommand = [...readmeDeployCommand(), '--require-approval', 'never'];
    const cf = new CloudFormationClient({});
    clients.push(cf);
    let data = new Map<string, string>();
    let compute = new Map<string, string>();
    const deployed = await step(`deploy: ${deployCommand.join(' ')}`, async () => {
      const [command, ...args] = deployCommand as [string, ...string[]];
      await run(command, args, { cwd: REPO_ROOT, env, log: deployLog, timeoutMs: 900_000 });
      data = await stackResources(cf, DATA_STACK);
      compute = await stackResources(cf, COMPUTE_STACK);
      return `${DATA_STACK} (${data.size} resources), ${COMPUTE_STACK} (${compute.size} resources)`;
    });
    if (!deployed) return report();

    const s3 = new S3Client({ forcePathStyle: true });
    const sqs = new SQSClient({});
    const sfn = new SFNClient({});
    clients.push(s3, sqs, sfn);
    pool = createPool({ connectionString: databaseUrl, max: 3 });
    const db = pool;
    const stateMachine = physical(compute, 'EodChainStateMachine');
    const eodDeadLetters = physical(compute, 'EodChainDeadLetterQueue');

    await step('migrations applied by the deploy-time trigger', async () => {
      const files = readdirSync(join(REPO_ROOT, 'schemas/sql')).filter((f) => f.endsWith('.sql')).length;
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      const applied = rows[0]?.n ?? 0;
      if (applied !== files) throw new RehearsalError(`${applied} of ${files} migrations applied`);
      return `${applied} of ${files}`;
    });

    // The poison run waits out the chain's retries (MiniStack caps each back-off at 60 s): started
    // first, it runs alongside the other checks. Settled into a result at once, so its failure is
    // reported in order rather than thrown while other checks run.
    const poisonStarted = performance.now();
    const poison = (async () => {
      const { executionArn } = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: stateMachine,
          name: `rehearsal-poison-${Date.now()}`,
          input: JSON.stringify({ tradeDate: POISON_DATE }),
        }),
      );
      const e = await execution(sfn, executionArn as string, 600_000);
      if (e.status !== 'FAILED') throw new RehearsalError(`execution ended ${e.status}, expected FAILED`);
      const message = await waitFor('the failed input in the EOD dead-letter queue', 60_000, async () => {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: eodDeadLetters,
            MaxNumberOfMessages: 10,
            VisibilityTimeout: 0,
          }),
        );
        return Messages?.find((m) => m.Body?.includes(POISON_DATE));
      });
      const body = JSON.parse(message.Body ?? '{}') as { error?: { Error?: string } };
      return `execution FAILED after its retries; the DLQ holds its input (tradeDate ${POISON_DATE}, error ${body.error?.Error ?? '?'})`;
    })().then(
      (detail) => ({ ok: true, detail }),
      (error: Error) => ({ ok: false, detail: error.message }),
    );

    await step('health replay: S3 -> notification -> SQS -> deployed ETL', async () => {
      const r = await replay(REPLAY_PATHS, {
        s3,
        sqs,
        pool: db,
        bucket: physical(data, 'DataBucket'),
        deadLetterQueueUrl: physical(compute, 'HealthEtlDeadLetterQueue'),
        timeoutMs: 240_000,
      });
      const c = r.counts;
      const line = `uploaded ${r.uploaded} = processed ${c.processed} + quarantined ${c.quarantined} + duplicate ${c.duplicate} + dead-lettered ${c['dead-lettered']}${c.pending ? ` (+${c.pending} pending)` : ''}; p50 ${r.latencyMs.p50} ms`;
      if (!r.identityHolds || c.processed === 0 || c.quarantined === 0) throw new RehearsalError(line);
      return `${line}, identity holds`;
    });

    // On a fresh database the chain's IPO scan lists the provider's whole market as new symbols.
    const market = await marketApiState();
    await step('EOD run through the deployed state machine', async () => {
      if (!market) throw new RehearsalError('the market API stopped answering');
      const { executionArn } = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: stateMachine,
          name: `rehearsal-eod-${Date.now()}`,
          input: JSON.stringify({ tradeDate: market.end }),
        }),
      );
      const e = await execution(sfn, executionArn as string, 600_000);
      if (e.status !== 'SUCCEEDED')
        throw new RehearsalError(`execution ${e.status}: ${e.error ?? ''} ${e.cause ?? ''}`.slice(0, 600));
      const output = JSON.parse(e.output ?? '{}') as Record<string, { result?: Record<string, unknown> }>;
      const steps = Object.entries(output)
        .filter(([, v]) => v && typeof v === 'object' && 'result' in v)
        .map(([id, v]) => `${id} ${String(v.result?.status ?? 'done')}`);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM symbols');
      return `${market.end} (${market.scenario}): SUCCEEDED, ${steps.join(' -> ')}; ${rows[0]?.n} symbols`;
    });

    // The equity dispatcher's schedule fires every minute on this stage: queue two symbols and
    // watch them leave `pending` (schedule -> dispatcher -> SQS -> mapping -> worker -> database).
    await step('schedule fired (rate) and its job ran', async () => {
      const { rows } = await db.query<{ symbol: string }>(
        `SELECT symbol FROM symbols WHERE active ORDER BY (type = 'ETF') DESC, symbol LIMIT 2`,
      );
      const symbols = rows.map((r) => r.symbol);
      if (symbols.length === 0) throw new RehearsalError('no symbols to queue (the EOD run created none)');
      await queueSymbolsForProcessing(db, 'ETF', symbols);
      // Touched by the worker: done, or failed and back to pending for a later attempt (the
      // scenario market ends before today's refresh window), each a recorded state.
      const states = await waitFor('the scheduled dispatcher and the worker', 300_000, async () => {
        // A claim sets `processing` (attempts + 1); the worker's report moves it on.
        const { rows: queued } = await db.query<{
          symbol: string;
          status: string;
          attempts: number;
          error: string | null;
        }>(
          `SELECT symbol, status, attempts, error FROM equity_processing_queue WHERE type = 'ETF' AND symbol = ANY($1)`,
          [symbols],
        );
        return queued.length === symbols.length &&
          queued.every((r) => r.attempts > 0 && r.status !== 'processing')
          ? queued
          : undefined;
      });
      const reported = states.map(
        (s) =>
          `${s.symbol} ${s.status} after ${s.attempts} attempt(s)${s.error ? ` (${s.error.slice(0, 60)})` : ''}`,
      );
      return `${reported.join(', ')}: EquityDispatch rate(${EMULATOR.scheduledJobsEveryMinutes} minute) -> EquityProcessing queue -> worker`;
    });

    const poisoned = await poison;
    record('poison EOD input ends in the EOD dead-letter queue', poisoned.ok, poisonStarted, poisoned.detail);
    return report();
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await teardown();
    if (checks.some((c) => !c.ok)) say(`logs: ${deployLog}, ${logFile('ministack')}`);
  }

  function report(): RehearsalReport {
    return { ok: checks.length > 0 && checks.every((c) => c.ok), checks, seconds: since(started) };
  }
}
