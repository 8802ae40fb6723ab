import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { MIGRATIONS_DIR, REPO_ROOT } from '../bin/paths';
import { ensureDatabase } from '../lambdas/platform/local-database';
import { loadMigrations, migrate } from '../lambdas/platform/migrations';
import { createPool } from '../lambdas/platform/postgres';
import { createRedisClient } from '../lambdas/platform/redis';
import { CONSUMERS } from '../lib/topology';
import { applyLocalDefaults } from './env';
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
const VENV = join(REPO_ROOT, 'localstack', '.venv');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(REPO_ROOT, 'localstack', 'requirements.txt');
export const TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/tickstock_test';
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
  say('installing LocalStack into localstack/.venv (first run only; a few minutes)...');
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

async function startLocalStack(say: Say): Promise<void> {
  const health = await localStackHealth();
  if (health) {
    say(`LocalStack ${health.version ?? ''} already answering on :${LOCALSTACK_PORT}`);
    return;
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
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (await localStackHealth()) return;
    const pid = runningPid('localstack');
    if (mode === 'host' && (pid === undefined || !isAlive(pid))) {
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

async function ensurePostgres(say: Say): Promise<void> {
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
  for (const db of [url, process.env.TEST_DATABASE_URL ?? TEST_DATABASE_URL]) await ensureDatabase(db);
  const pool = createPool({ connectionString: url });
  try {
    const result = await migrate(pool, await loadMigrations(MIGRATIONS_DIR));
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

function startRunner(say: Say): void {
  if (CONSUMERS.length === 0 || runningPid('runner') !== undefined) return;
  say('starting the local event-source runner...');
  startBackground(
    'runner',
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'localstack', 'runner-main.ts')],
    process.env,
  );
}

export interface StageUpResult {
  readonly seconds: number;
}

/** Brings the whole local stage up; idempotent (a warm call only verifies). */
export async function stageUp(say: Say = console.log): Promise<StageUpResult> {
  const started = performance.now();
  applyLocalDefaults();
  await Promise.all([ensurePostgres(say), ensureRedis(say), startLocalStack(say)]);
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  try {
    await bootstrapResources({ s3, sqs }, process.env.DATA_BUCKET as string);
  } finally {
    s3.destroy();
    sqs.destroy();
  }
  startRunner(say);
  return { seconds: (performance.now() - started) / 1_000 };
}

/** Stops everything the stage started (PostgreSQL and Redis are the machine's, and stay up). */
export async function stageDown(say: Say = console.log): Promise<void> {
  for (const name of ['runner', 'market-api', 'localstack']) {
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
  readonly postgres: { reachable: boolean };
  readonly redis: { reachable: boolean };
}

export async function stageStatus(): Promise<StageStatus> {
  applyLocalDefaults();
  const health = await localStackHealth();
  const db = new URL(process.env.DATABASE_URL as string);
  return {
    localstack: { running: Boolean(health), pid: runningPid('localstack'), version: health?.version },
    runner: { running: runningPid('runner') !== undefined, pid: runningPid('runner') },
    postgres: { reachable: await portOpen(Number(db.port || 5432), db.hostname) },
    redis: { reachable: await redisPing(process.env.REDIS_URL as string) },
  };
}
