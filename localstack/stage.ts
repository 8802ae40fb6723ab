import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadMigrations, MigrationChecksumError, migrate } from '../lambdas/platform/migrations';
import { createPool } from '../lambdas/platform/postgres';
import { createRedisClient } from '../lambdas/platform/redis';
import { MIGRATIONS_DIR, REPO_ROOT } from '../lib/paths';
import { CONSUMERS } from '../lib/topology';
import { applyLocalDefaults, localStageName, TEST_DATABASE_URL } from './env';
import { ensureDatabase } from './local-database';
import { isAlive, logFile, runningPid, STATE_DIR, startBackground, stopBackground, tail } from './processes';
import { bootstrapResources } from './resources';

export class StageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageError';
  }
}

const LOCALSTACK_PORT = 4566;
const LOCALSTACK_URL = `http://127.0.0.1:${LOCALSTACK_PORT}`;
// Beside the sources, not in localstack/: a virtualenv is thousands of third-party files.
const VENV = join(REPO_ROOT, '.venv-localstack');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(REPO_ROOT, 'localstack', 'requirements.txt');
const SERVICES = 's3,sqs,events,scheduler,secretsmanager,ssm,cloudwatch,logs,sts,iam';

type Say = (line: string) => void;

function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function localStackHealth(): Promise<
  { version?: string; services: Record<string, string> } | undefined
> {
  try {
    const response = await fetch(`${LOCALSTACK_URL}/_localstack/health`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!response.ok) return undefined;
    return (await response.json()) as { version?: string; services: Record<string, string> };
  } catch {
    return undefined;
  }
}

function requirementsHash(): string {
  return createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
}

/** The project-local virtualenv with the pinned LocalStack; (re)installed when requirements change. */
export function ensureLocalStackVenv(say: Say): void {
  const marker = join(VENV, '.requirements.sha256');
  if (existsSync(VENV_PYTHON) && existsSync(marker) && readFileSync(marker, 'utf8') === requirementsHash())
    return;
  const python = spawnSync('python3.11', ['--version'], { encoding: 'utf8' });
  if (python.status !== 0) {
    throw new StageError(
      'Python 3.11 is needed to run LocalStack on the host (localstack-core 4.13.1; 4.14+ needs 3.12) and `python3.11` was not found. Install it, or use Docker: LOCAL_STAGE_MODE=docker.',
    );
  }
  say('installing LocalStack into .venv-localstack (first run only; a few minutes)...');
  const run = (cmd: string, args: string[]) => {
    const result = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (result.status !== 0) {
      throw new StageError(
        `${cmd} ${args.join(' ')} failed:\n${(result.stderr || result.stdout).slice(-2_000)}`,
      );
    }
  };
  if (!existsSync(VENV_PYTHON)) run('python3.11', ['-m', 'venv', VENV]);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS]);
  writeFileSync(marker, requirementsHash());
}

function dockerEngineAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts LocalStack if it is not answering (does not wait for it). Runs before anything else of
 * `stage up`: the first-run install and `docker compose` are synchronous and would stall every
 * connection and timer started alongside them.
 */
async function launchLocalStack(say: Say): Promise<'running' | 'host' | 'docker'> {
  const health = await localStackHealth();
  if (health) {
    say(`LocalStack ${health.version ?? ''} already answering on :${LOCALSTACK_PORT}`);
    return 'running';
  }
  if (await portOpen(LOCALSTACK_PORT)) {
    throw new StageError(
      `port ${LOCALSTACK_PORT} is taken by something that is not LocalStack: stop it (e.g. \`ss -ltnp | grep ${LOCALSTACK_PORT}\`) and retry`,
    );
  }
  const mode = process.env.LOCAL_STAGE_MODE ?? (dockerEngineAvailable() ? 'docker' : 'host');
  if (mode === 'docker') {
    say('starting LocalStack with docker compose...');
    execFileSync(
      'docker',
      ['compose', '-f', join(REPO_ROOT, 'localstack', 'docker-compose.yml'), 'up', '-d'],
      {
        stdio: 'inherit',
      },
    );
  } else {
    ensureLocalStackVenv(say);
    say('starting LocalStack on the host...');
    startBackground('localstack', VENV_PYTHON, ['-m', 'localstack.runtime.main'], {
      ...process.env,
      OVERRIDE_IN_DOCKER: '0',
      GATEWAY_LISTEN: `127.0.0.1:${LOCALSTACK_PORT}`,
      LOCALSTACK_HOST: `localhost:${LOCALSTACK_PORT}`,
      SQS_ENDPOINT_STRATEGY: 'path',
      DNS_ADDRESS: '0',
      SKIP_SSL_CERT_DOWNLOAD: '1',
      DISABLE_EVENTS: '1',
      EAGER_SERVICE_LOADING: '1',
      SERVICES,
      FILESYSTEM_ROOT: join(STATE_DIR, 'localstack'),
    });
  }
  return mode === 'docker' ? 'docker' : 'host';
}

async function waitForLocalStack(launched: 'running' | 'host' | 'docker'): Promise<void> {
  if (launched === 'running') return;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (await localStackHealth()) return;
    const pid = runningPid('localstack');
    if (launched === 'host' && (pid === undefined || !isAlive(pid))) {
      throw new StageError(
        `LocalStack exited during start-up. Last lines of ${logFile('localstack')}:\n${tail(logFile('localstack'))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new StageError(
    `LocalStack did not answer on :${LOCALSTACK_PORT} within 90 s; see ${logFile('localstack')}`,
  );
}

export interface StageOptions {
  /**
   * The database is disposable (tests): when an applied migration no longer matches its file (one
   * edited during development), rebuild the schema instead of failing.
   */
  readonly disposableDatabase?: boolean;
}

async function ensurePostgres(say: Say, options: StageOptions): Promise<void> {
  const url = process.env.DATABASE_URL as string;
  const target = new URL(url);
  const reachable = () => portOpen(Number(target.port || 5432), target.hostname);
  if (!(await reachable())) {
    const versions = existsSync('/etc/postgresql') ? readdir('/etc/postgresql') : [];
    if (versions[0] && spawnSync('which', ['pg_ctlcluster']).status === 0) {
      say('PostgreSQL is down: starting it...');
      spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0], 'main', 'start'], {
        stdio: 'ignore',
      });
    }
    for (let i = 0; i < 40 && !(await reachable()); i++) await new Promise((r) => setTimeout(r, 250));
    if (!(await reachable())) {
      throw new StageError(
        `PostgreSQL is down at ${target.hostname}:${target.port || 5432}: start it, or set DATABASE_URL`,
      );
    }
  }
  for (const db of [url, TEST_DATABASE_URL]) await ensureDatabase(db);
  const pool = createPool({ connectionString: url });
  try {
    const migrations = await loadMigrations(MIGRATIONS_DIR);
    const result = await migrate(pool, migrations).catch(async (error: unknown) => {
      if (!(error instanceof MigrationChecksumError)) throw error;
      if (!options.disposableDatabase) {
        throw new StageError(
          `${error.message}. On the local stage: drop the database (\`dropdb ${target.pathname.slice(1)}\`) and run stage up again.`,
        );
      }
      say(`${error.message}: rebuilding the disposable database schema`);
      await pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      return migrate(pool, migrations);
    });
    if (result.applied.length > 0) say(`applied migrations: ${result.applied.join(', ')}`);
  } finally {
    await pool.end();
  }
}

function readdir(dir: string): string[] {
  return spawnSync('ls', [dir], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

async function redisPing(url: string): Promise<boolean> {
  const client = createRedisClient({ url });
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function ensureRedis(say: Say): Promise<void> {
  const url = process.env.REDIS_URL as string;
  if (await redisPing(url)) return;
  const target = new URL(url);
  if (
    ['127.0.0.1', 'localhost'].includes(target.hostname) &&
    spawnSync('which', ['redis-server']).status === 0
  ) {
    say('Redis is down: starting it...');
    spawnSync(
      'redis-server',
      [
        '--daemonize',
        'yes',
        '--bind',
        '127.0.0.1',
        '--port',
        target.port || '6379',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 40; i++) {
      if (await redisPing(url)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new StageError(`Redis is down at ${target.host}: start it, or set REDIS_URL`);
}

const MARKET_API_PORT = 4580;

async function marketApiHealthy(): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${MARKET_API_PORT}/_health`, {
      signal: AbortSignal.timeout(2_000),
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** The local stand-in for the market-data provider, serving scenario data (localstack/market-api). */
async function startMarketApi(say: Say): Promise<void> {
  if (await marketApiHealthy()) return;
  if (await portOpen(MARKET_API_PORT)) {
    throw new StageError(
      `port ${MARKET_API_PORT} (local market API) is taken by something else: stop it and retry`,
    );
  }
  say('starting the local market API...');
  startBackground(
    'market-api',
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'localstack', 'market-api', 'main.ts')],
    {
      ...process.env,
      MARKET_API_PORT: String(MARKET_API_PORT),
    },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await marketApiHealthy()) return;
    if (runningPid('market-api') === undefined) {
      throw new StageError(`the local market API exited during start-up:\n${tail(logFile('market-api'))}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new StageError(`the local market API did not answer within 60 s; see ${logFile('market-api')}`);
}

/** Each named local stage runs its own runner process (its queues are its own). */
function runnerName(): string {
  return `runner-${localStageName()}`;
}

/** Newest modification time of the code a runner loads (handlers, topology, the runner itself). */
function codeVersion(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of ['lambdas', 'lib']) walk(join(REPO_ROOT, dir));
  return Math.max(newest, statSync(join(REPO_ROOT, 'localstack', 'runner.ts')).mtimeMs);
}

/**
 * What the runner's handlers connect to, and the code they run: a runner started for other
 * targets or older code is restarted, so the stage never runs stale handlers.
 */
function runnerFingerprint(): string {
  const keys = [
    'DATABASE_URL',
    'DATABASE_COMPONENT_ROLES',
    'REDIS_URL',
    'DATA_BUCKET',
    'AWS_ENDPOINT_URL',
    'MARKET_API_BASE_URL',
  ];
  return JSON.stringify([...keys.map((k) => [k, process.env[k]]), ['code', codeVersion()]]);
}

async function startRunner(say: Say): Promise<void> {
  if (CONSUMERS.length === 0) return;
  const runner = runnerName();
  const fingerprintFile = join(STATE_DIR, `${runner}.env.json`);
  const fingerprint = runnerFingerprint();
  if (runningPid(runner) !== undefined) {
    if (existsSync(fingerprintFile) && readFileSync(fingerprintFile, 'utf8') === fingerprint) return;
    say('restarting the runner (other targets or newer code)...');
    await stopBackground(runner);
  }
  say('starting the local event-source runner...');
  startBackground(
    runner,
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(REPO_ROOT, 'localstack', 'runner-main.ts')],
    process.env,
  );
  writeFileSync(fingerprintFile, fingerprint);
}

export interface StageUpResult {
  readonly seconds: number;
}

/** Brings the whole local stage up; idempotent (a warm call only verifies). */
export async function stageUp(say: Say = console.log, options: StageOptions = {}): Promise<StageUpResult> {
  const started = performance.now();
  applyLocalDefaults();
  const launched = await launchLocalStack(say);
  await Promise.all([
    ensurePostgres(say, options),
    ensureRedis(say),
    waitForLocalStack(launched),
    startMarketApi(say),
  ]);
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  try {
    await bootstrapResources({ s3, sqs }, process.env.DATA_BUCKET as string);
  } finally {
    s3.destroy();
    sqs.destroy();
  }
  await startRunner(say);
  return { seconds: (performance.now() - started) / 1_000 };
}

/** Stops everything the stage started (PostgreSQL and Redis are the machine's, and stay up). */
export async function stageDown(say: Say = console.log): Promise<void> {
  const runners = (existsSync(STATE_DIR) ? readdirSync(STATE_DIR) : []).flatMap((f) =>
    /^runner-[a-z0-9_-]+\.pid$/.test(f) ? [f.slice(0, -4)] : [],
  );
  // A rehearsal's MiniStack (and its Lambda workers) if one was left behind (`rehearse` stops its own).
  for (const name of [...runners, 'market-api', 'localstack', 'ministack']) {
    if (await stopBackground(name)) say(`stopped ${name}`);
  }
  if (process.env.LOCAL_STAGE_MODE === 'docker') {
    spawnSync('docker', ['compose', '-f', join(REPO_ROOT, 'localstack', 'docker-compose.yml'), 'down'], {
      stdio: 'inherit',
    });
  }
  if (await portOpen(LOCALSTACK_PORT))
    say(`note: something still listens on :${LOCALSTACK_PORT} (not started by this stage)`);
}

export interface StageStatus {
  readonly localstack: { running: boolean; pid?: number; version?: string };
  readonly runner: { running: boolean; pid?: number };
  readonly marketApi: { running: boolean; pid?: number };
  readonly postgres: { reachable: boolean };
  readonly redis: { reachable: boolean };
}

export async function stageStatus(): Promise<StageStatus> {
  applyLocalDefaults();
  const health = await localStackHealth();
  const db = new URL(process.env.DATABASE_URL as string);
  return {
    localstack: { running: Boolean(health), pid: runningPid('localstack'), version: health?.version },
    runner: { running: runningPid(runnerName()) !== undefined, pid: runningPid(runnerName()) },
    marketApi: { running: await marketApiHealthy(), pid: runningPid('market-api') },
    postgres: { reachable: await portOpen(Number(db.port || 5432), db.hostname) },
    redis: { reachable: await redisPing(process.env.REDIS_URL as string) },
  };
}
