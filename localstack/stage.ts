import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadMigrations, MigrationChecksumError, migrate } from '../lambdas/platform/migrations';
import { createPool } from '../lambdas/platform/postgres';
import { createRedisClient } from '../lambdas/platform/redis';
import { withProgress } from '../lib/cli/progress';
import { MIGRATIONS_DIR, REPO_ROOT } from '../lib/paths';
import { CONSUMERS } from '../lib/topology';
import {
  applyLocalDefaults,
  brokerSimPort,
  localStackPort,
  localStageName,
  marketApiPort,
  TEST_DATABASE_URL,
} from './env';
import { ensureDatabase } from './local-database';
import { portHolder, portOpen } from './ports';
import {
  logFile,
  runningPid,
  startBackground,
  startedByStage,
  stateDir,
  stopBackground,
  stopGroup,
  tail,
} from './processes';
import { bootstrapResources } from './resources';

export class StageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageError';
  }
}

// Beside the sources, not in localstack/: a virtualenv is thousands of third-party files.
const VENV = join(REPO_ROOT, '.venv-localstack');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(REPO_ROOT, 'localstack', 'requirements.txt');
const SERVICES = 's3,sqs,events,scheduler,secretsmanager,ssm,cloudwatch,logs,sts,iam';
const CHECKOUT = resolve(REPO_ROOT);

type Say = (line: string) => void;

/** Who holds a port of the stage, as far as this checkout can tell. */
export interface PortOwner {
  readonly port: number;
  readonly pid: number;
  /** The directory the holder runs in: for the stage's services, the checkout that started them. */
  readonly checkout?: string;
  readonly command: string;
  /** Started by this stage (this checkout, this state directory): `stage down` stops it. */
  readonly ours: boolean;
}

function ownerOf(port: number, name: string): PortOwner | undefined {
  const holder = portHolder(port);
  if (!holder) return undefined;
  return {
    port,
    pid: holder.pid,
    ...(holder.cwd ? { checkout: holder.cwd } : {}),
    command: holder.command,
    ours: startedByStage(name, holder.pid),
  };
}

export function describeOwner(owner: PortOwner | undefined): string {
  if (!owner) return 'holder not visible (another network namespace, e.g. a container)';
  const where = owner.checkout
    ? resolve(owner.checkout) === CHECKOUT
      ? 'this checkout'
      : owner.checkout
    : 'unknown directory';
  return `pid ${owner.pid}, ${where}, ${owner.ours ? 'started by this stage' : 'NOT started by this stage'}`;
}

function localStackUrl(): string {
  return `http://127.0.0.1:${localStackPort()}`;
}

async function localStackHealth(): Promise<
  { version?: string; services: Record<string, string> } | undefined
> {
  try {
    const response = await fetch(`${localStackUrl()}/_localstack/health`, {
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

/** Runs an install step without blocking the event loop, feeding its output lines to `onLine`. */
function runStep(cmd: string, args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-4_000);
      for (const line of text.split('\n')) if (line.trim()) onLine(line.trim());
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new StageError(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-2_000)}`));
    });
  });
}

/** The project-local virtualenv with the pinned LocalStack; (re)installed when requirements change. */
export async function ensureLocalStackVenv(say: Say): Promise<void> {
  const marker = join(VENV, '.requirements.sha256');
  if (existsSync(VENV_PYTHON) && existsSync(marker) && readFileSync(marker, 'utf8') === requirementsHash())
    return;
  const python = spawnSync('python3.11', ['--version'], { encoding: 'utf8' });
  if (python.status !== 0) {
    throw new StageError(
      'Python 3.11 is needed to run LocalStack on the host (localstack-core 4.13.1; 4.14+ needs 3.12) and `python3.11` was not found. Install it, or use Docker: LOCAL_STAGE_MODE=docker.',
    );
  }
  say('installing LocalStack into .venv-localstack (first run only; a few minutes)');
  const packages = readFileSync(REQUIREMENTS, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#')).length;
  await withProgress('installing LocalStack', async (progress) => {
    if (!existsSync(VENV_PYTHON)) {
      progress.update('creating the virtualenv');
      await runStep('python3.11', ['-m', 'venv', VENV], () => undefined);
    }
    // pip names each package as it resolves, downloads and installs it: the latest one is what
    // the install is busy with (the pinned requirements pull in ~150 packages in all).
    let collected = 0;
    await runStep(
      VENV_PYTHON,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', '-r', REQUIREMENTS],
      (line) => {
        const collecting = /^Collecting (\S+)/.exec(line);
        if (collecting) {
          collected += 1;
          progress.update(`pip: resolving ${collecting[1]} (${collected} packages, ${packages} pinned)`);
        } else if (line.startsWith('Installing collected packages')) {
          progress.update(`pip: installing ${collected} packages`);
        } else if (/^Downloading /.test(line)) {
          progress.update(`pip: ${line.slice(0, 80)}`);
        }
      },
    );
  });
  writeFileSync(marker, requirementsHash());
}

function dockerEngineAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
}

/** Size of a log file now: what a newly started process writes comes after it. */
function logSize(name: string): number {
  try {
    return statSync(logFile(name)).size;
  } catch {
    return 0;
  }
}

function logSince(name: string, offset: number): string {
  try {
    return readFileSync(logFile(name)).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

/** A LocalStack launched by this `stage up`: its pid and where its log output starts. */
interface Launched {
  readonly mode: 'host' | 'docker';
  readonly pid?: number;
  readonly logOffset: number;
}

export interface StageUpOptions extends StageOptions {
  /** Refuse to use a LocalStack or market API this stage did not start (`stage up --own`). */
  readonly own?: boolean;
}

/** A LocalStack that answers but is not ours: used when allowed, said loudly either way. */
function sharedOrRefuse(
  what: string,
  port: number,
  owner: PortOwner | undefined,
  options: StageUpOptions,
): string {
  const line = `${what} on :${port} is shared: ${describeOwner(owner)}`;
  if (options.own) {
    throw new StageError(
      `${line}; --own needs one started by this stage: stop that one, or give this stage free ports (LOCALSTACK_PORT, MARKET_API_PORT)`,
    );
  }
  return line;
}

/**
 * Starts LocalStack if it is not answering (does not wait for it). Runs before anything else of
 * `stage up`: `docker compose` is synchronous and would stall every connection and timer started
 * alongside it.
 */
async function launchLocalStack(say: Say, options: StageUpOptions): Promise<Launched | undefined> {
  const port = localStackPort();
  // A LocalStack of ours that does not hold the port (it lost the race for it, logged
  // CannotListenError and lives on without listening) is stopped first: it would be orphaned.
  const stopOurStray = async () => {
    const ours = runningPid('localstack');
    const owner = ownerOf(port, 'localstack');
    if (ours !== undefined && !owner?.ours) {
      const how = await stopGroup(ours);
      say(`stopped our LocalStack (pid ${ours}, ${how}): it was running without holding :${port}`);
      rmPidOf('localstack');
    }
  };
  const reuse = async (): Promise<boolean> => {
    const health = await localStackHealth();
    if (!health) return false;
    const owner = ownerOf(port, 'localstack');
    if (owner?.ours) {
      say(`LocalStack ${health.version ?? ''} on :${port}: ${describeOwner(owner)}`);
      return true;
    }
    await stopOurStray();
    say(sharedOrRefuse(`LocalStack ${health.version ?? ''}`, port, owner, options));
    return true;
  };
  if (await reuse()) return undefined;
  const holder = ownerOf(port, 'localstack');
  if (holder?.ours) return { mode: 'host', pid: holder.pid, logOffset: logSize('localstack') }; // still starting
  if (await portOpen(port)) {
    throw new StageError(
      `port ${port} is taken by something that is not LocalStack (${describeOwner(holder)}): stop it, or set LOCALSTACK_PORT to a free port`,
    );
  }
  await stopOurStray();
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
    return { mode: 'docker', logOffset: 0 };
  }
  await ensureLocalStackVenv(say);
  // The install can take minutes, during which another checkout may have started its LocalStack
  // on the port: look again right before launching, or ours would fail to listen behind it.
  if (await reuse()) return undefined;
  if (await portOpen(port)) {
    throw new StageError(
      `port ${port} was taken during the install (${describeOwner(ownerOf(port, 'localstack'))}): stop it, or set LOCALSTACK_PORT to a free port`,
    );
  }
  say(`starting LocalStack on the host on :${port}...`);
  const logOffset = logSize('localstack');
  const pid = startBackground('localstack', VENV_PYTHON, ['-m', 'localstack.runtime.main'], {
    ...process.env,
    OVERRIDE_IN_DOCKER: '0',
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    LOCALSTACK_HOST: `localhost:${port}`,
    SQS_ENDPOINT_STRATEGY: 'path',
    DNS_ADDRESS: '0',
    SKIP_SSL_CERT_DOWNLOAD: '1',
    DISABLE_EVENTS: '1',
    EAGER_SERVICE_LOADING: '1',
    SERVICES,
    FILESYSTEM_ROOT: join(stateDir(), 'localstack'),
  });
  return { mode: 'host', pid, logOffset };
}

function rmPidOf(name: string): void {
  rmSync(join(stateDir(), `${name}.pid`), { force: true });
}

/** Lines LocalStack logs when its gateway could not bind: it then says `Ready.` all the same. */
const CANNOT_LISTEN = /CannotListenError|Address already in use/;

/**
 * Waits for the LocalStack this `stage up` launched to answer, and makes sure the one answering is
 * it: one that could not bind the port is stopped and the stage fails, naming who holds the port.
 */
async function waitForLocalStack(launched: Launched | undefined): Promise<void> {
  if (!launched) return;
  const port = localStackPort();
  const failOurs = async (why: string): Promise<never> => {
    const owner = ownerOf(port, 'localstack');
    await stopBackground('localstack');
    throw new StageError(
      `${why}; port ${port} is held by ${describeOwner(owner)}. Our LocalStack was stopped (no orphan). Run stage up again to use the one that holds the port, or set LOCALSTACK_PORT to a free port.`,
    );
  };
  await withProgress(`starting LocalStack on :${port}`, async (progress) => {
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (launched.mode === 'host') {
        if (CANNOT_LISTEN.test(logSince('localstack', launched.logOffset))) {
          await failOurs(
            `our LocalStack could not listen on :${port} (CannotListenError in ${logFile('localstack')})`,
          );
        }
        const pid = runningPid('localstack');
        if (pid === undefined) {
          throw new StageError(
            `LocalStack exited during start-up. Last lines of ${logFile('localstack')}:\n${tail(logFile('localstack'))}`,
          );
        }
      }
      if (await localStackHealth()) {
        const owner = ownerOf(port, 'localstack');
        if (launched.mode === 'host' && owner && !owner.ours) {
          await failOurs(`another LocalStack answers on :${port}, not the one this stage started`);
        }
        return;
      }
      progress.update(`waiting for its health endpoint (log: ${logFile('localstack')})`);
      await new Promise((r) => setTimeout(r, 250));
    }
    if (launched.mode === 'host') await stopBackground('localstack');
    throw new StageError(
      `LocalStack did not answer on :${port} within 90 s (stopped); see ${logFile('localstack')}`,
    );
  });
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

async function marketApiHealthy(): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${marketApiPort()}/_health`, {
      signal: AbortSignal.timeout(2_000),
    });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * The local stand-in for the market-data provider, serving scenario data (localstack/market-api).
 * Returns whether this call started it.
 */
async function startMarketApi(say: Say, options: StageUpOptions): Promise<boolean> {
  const port = marketApiPort();
  const owner = ownerOf(port, 'market-api');
  const ours = runningPid('market-api');
  if (ours !== undefined && owner && !owner.ours) {
    // Ours is alive but another process holds the port: ours failed to bind and must not linger.
    const how = await stopGroup(ours);
    rmPidOf('market-api');
    say(`stopped our market API (pid ${ours}, ${how}): it was running without holding :${port}`);
  }
  if (await marketApiHealthy()) {
    if (!owner?.ours) say(sharedOrRefuse('the local market API', port, owner, options));
    return false;
  }
  if (await portOpen(port)) {
    throw new StageError(
      `port ${port} (local market API) is taken by something else (${describeOwner(owner)}): stop it, or set MARKET_API_PORT to a free port`,
    );
  }
  say(`starting the local market API on :${port}...`);
  if (runningPid('market-api') !== undefined) await stopBackground('market-api');
  startBackground(
    'market-api',
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'localstack', 'market-api', 'main.ts')],
    {
      ...process.env,
      MARKET_API_PORT: String(port),
    },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await marketApiHealthy()) {
      const holder = ownerOf(port, 'market-api');
      if (holder && !holder.ours) {
        await stopBackground('market-api');
        throw new StageError(
          `another market API took :${port} while ours was starting (${describeOwner(holder)}); ours was stopped. Run stage up again to use it, or set MARKET_API_PORT to a free port.`,
        );
      }
      return true;
    }
    if (runningPid('market-api') === undefined) {
      throw new StageError(`the local market API exited during start-up:\n${tail(logFile('market-api'))}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopBackground('market-api');
  throw new StageError(
    `the local market API did not answer within 60 s (stopped); see ${logFile('market-api')}`,
  );
}

async function brokerSimHealthy(): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${brokerSimPort()}/_health`, {
      signal: AbortSignal.timeout(2_000),
    });
    return response.ok && ((await response.json()) as { service?: string }).service === 'broker-sim';
  } catch {
    return false;
  }
}

/**
 * The broker simulator (localstack/broker), shared like the market API: accounts are per API key, so
 * one simulator serves every checkout. Returns whether this call started it.
 */
async function startBrokerSim(say: Say, options: StageUpOptions): Promise<boolean> {
  const port = brokerSimPort();
  const owner = ownerOf(port, 'broker-sim');
  const ours = runningPid('broker-sim');
  if (ours !== undefined && owner && !owner.ours) {
    const how = await stopGroup(ours);
    rmPidOf('broker-sim');
    say(`stopped our broker simulator (pid ${ours}, ${how}): it was running without holding :${port}`);
  }
  if (await brokerSimHealthy()) {
    if (!owner?.ours) say(sharedOrRefuse('the broker simulator', port, owner, options));
    return false;
  }
  if (await portOpen(port)) {
    throw new StageError(
      `port ${port} (broker simulator) is taken by something else (${describeOwner(owner)}): stop it, or set BROKER_SIM_PORT to a free port`,
    );
  }
  say(`starting the broker simulator on :${port}...`);
  if (runningPid('broker-sim') !== undefined) await stopBackground('broker-sim');
  startBackground(
    'broker-sim',
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'localstack', 'broker', 'main.ts')],
    {
      ...process.env,
      BROKER_SIM_PORT: String(port),
    },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await brokerSimHealthy()) {
      const holder = ownerOf(port, 'broker-sim');
      if (holder && !holder.ours) {
        await stopBackground('broker-sim');
        throw new StageError(
          `another broker simulator took :${port} while ours was starting (${describeOwner(holder)}); ours was stopped. Run stage up again to use it, or set BROKER_SIM_PORT to a free port.`,
        );
      }
      return true;
    }
    if (runningPid('broker-sim') === undefined)
      throw new StageError(`the broker simulator exited during start-up:\n${tail(logFile('broker-sim'))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopBackground('broker-sim');
  throw new StageError(
    `the broker simulator did not answer within 60 s (stopped); see ${logFile('broker-sim')}`,
  );
}

/** Each named local stage runs its own runner process (its queues are its own). */
/** The background name of this stage's runner (`runner-<stage>`). */
export function runnerName(): string {
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

/** Starts (or restarts) this stage's runner; returns whether this call started it. */
async function startRunner(say: Say): Promise<boolean> {
  if (CONSUMERS.length === 0) return false;
  const runner = runnerName();
  const fingerprintFile = join(stateDir(), `${runner}.env.json`);
  const fingerprint = runnerFingerprint();
  if (runningPid(runner) !== undefined) {
    if (existsSync(fingerprintFile) && readFileSync(fingerprintFile, 'utf8') === fingerprint) return false;
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
  return true;
}

export interface StageUpResult {
  readonly seconds: number;
  /** The background processes this call started (`localstack`, `market-api`, `runner-<stage>`). */
  readonly started: string[];
  /** Shared with another checkout (not started by this stage), said at start-up. */
  readonly shared: string[];
}

/** Brings the whole local stage up; idempotent (a warm call only verifies). */
export async function stageUp(say: Say = console.log, options: StageUpOptions = {}): Promise<StageUpResult> {
  const began = performance.now();
  applyLocalDefaults();
  const shared: string[] = [];
  const tell: Say = (line) => {
    if (line.includes(' is shared: ')) shared.push(line);
    say(line);
  };
  const launched = await launchLocalStack(tell, options);
  const started: string[] = launched?.mode === 'host' && launched.pid ? ['localstack'] : [];
  try {
    const [, , , marketStarted, brokerStarted] = await Promise.all([
      ensurePostgres(tell, options),
      ensureRedis(tell),
      waitForLocalStack(launched),
      startMarketApi(tell, options),
      startBrokerSim(tell, options),
    ]);
    if (marketStarted) started.push('market-api');
    if (brokerStarted) started.push('broker-sim');
  } catch (error) {
    // A half-started stage leaves nothing of its own behind.
    for (const name of started) await stopBackground(name);
    throw error;
  }
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  try {
    await bootstrapResources({ s3, sqs }, process.env.DATA_BUCKET as string);
  } finally {
    s3.destroy();
    sqs.destroy();
  }
  if (await startRunner(tell)) started.push(runnerName());
  return { seconds: (performance.now() - began) / 1_000, started, shared };
}

/** Stops the named background processes (what one stageUp started: tests stop theirs). */
export async function stopStarted(names: readonly string[]): Promise<void> {
  // Runners first: they poll LocalStack, which would fill their logs with ECONNREFUSED otherwise.
  const order = [...names].sort((a, b) => Number(b.startsWith('runner-')) - Number(a.startsWith('runner-')));
  for (const name of order) await stopBackground(name);
}

/** Stops everything the stage started (PostgreSQL and Redis are the machine's, and stay up). */
export async function stageDown(say: Say = console.log): Promise<void> {
  const dir = stateDir();
  const runners = (existsSync(dir) ? readdirSync(dir) : []).flatMap((f) =>
    /^runner-[a-z0-9_-]+\.pid$/.test(f) ? [f.slice(0, -4)] : [],
  );
  // A rehearsal's MiniStack (and its Lambda workers) if one was left behind (`rehearse` stops its own).
  for (const name of [...runners, 'market-api', 'broker-sim', 'localstack', 'ministack']) {
    const pid = runningPid(name);
    if (await stopBackground(name)) say(`stopped ${name} (pid ${pid})`);
  }
  if (process.env.LOCAL_STAGE_MODE === 'docker') {
    spawnSync('docker', ['compose', '-f', join(REPO_ROOT, 'localstack', 'docker-compose.yml'), 'down'], {
      stdio: 'inherit',
    });
  }
  for (const [what, port, name] of [
    ['LocalStack', localStackPort(), 'localstack'],
    ['the market API', marketApiPort(), 'market-api'],
    ['the broker simulator', brokerSimPort(), 'broker-sim'],
  ] as const) {
    if (await portOpen(port)) {
      say(`left running: ${what} on :${port} (${describeOwner(ownerOf(port, name))}), not ours to stop`);
    }
  }
}

export interface ServiceStatus {
  readonly service: string;
  readonly port?: number;
  /** Answers its health check (or accepts connections). */
  readonly running: boolean;
  /** Who holds the port, when it can be seen. */
  readonly holder?: PortOwner;
  /** The pid this stage recorded for it, if alive (whether or not it holds the port). */
  readonly ourPid?: number;
  readonly version?: string;
  /** Something worth an operator's attention (ours alive without the port, errors in its log). */
  readonly problem?: string;
}

export interface StageStatus {
  readonly checkout: string;
  readonly stage: string;
  readonly services: ServiceStatus[];
  /** LocalStack, PostgreSQL and Redis answer: the stage can run. */
  readonly usable: boolean;
}

function recentErrors(name: string): number {
  if (!existsSync(logFile(name))) return 0;
  return tail(logFile(name), 300)
    .split('\n')
    .filter((l) => /ECONNREFUSED|ECONNRESET/.test(l)).length;
}

export async function stageStatus(): Promise<StageStatus> {
  applyLocalDefaults();
  const health = await localStackHealth();
  const db = new URL(process.env.DATABASE_URL as string);
  const redisUrl = new URL(process.env.REDIS_URL as string);
  const service = (
    name: string,
    service: string,
    port: number,
    running: boolean,
    version?: string,
  ): ServiceStatus => {
    const holder = ownerOf(port, name);
    const ourPid = runningPid(name);
    const problem =
      ourPid !== undefined && holder && !holder.ours
        ? `our ${service} (pid ${ourPid}) is alive but does not hold :${port}: stage up stops it`
        : ourPid !== undefined && !running
          ? `our ${service} (pid ${ourPid}) is alive but not answering: see ${logFile(name)}`
          : undefined;
    return {
      service,
      port,
      running,
      ...(holder ? { holder } : {}),
      ...(ourPid !== undefined ? { ourPid } : {}),
      ...(version ? { version } : {}),
      ...(problem ? { problem } : {}),
    };
  };
  const runner = runnerName();
  const runnerPid = runningPid(runner);
  const errors = recentErrors(runner);
  const postgres = await portOpen(Number(db.port || 5432), db.hostname);
  const redis = await redisPing(process.env.REDIS_URL as string);
  const services: ServiceStatus[] = [
    service('localstack', 'LocalStack', localStackPort(), Boolean(health), health?.version),
    service('market-api', 'market API', marketApiPort(), await marketApiHealthy()),
    service('broker-sim', 'broker simulator', brokerSimPort(), await brokerSimHealthy()),
    {
      service: `runner (${localStageName()})`,
      running: runnerPid !== undefined,
      ...(runnerPid !== undefined ? { ourPid: runnerPid } : {}),
      ...(errors > 0
        ? { problem: `${errors} connection errors in the last 300 lines of ${logFile(runner)}` }
        : {}),
    },
    { service: 'PostgreSQL', port: Number(db.port || 5432), running: postgres },
    { service: 'Redis', port: Number(redisUrl.port || 6379), running: redis },
  ];
  return {
    checkout: CHECKOUT,
    stage: localStageName(),
    services,
    usable: Boolean(health) && postgres && redis,
  };
}
