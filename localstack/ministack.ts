import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths';
import { isAlive, logFile, runningPid, startBackground, stopBackground, tail } from './processes';

/**
 * MiniStack: the emulator of the deploy rehearsal. It runs Node.js Lambda functions as local
 * processes (no Docker), so `cdk deploy` of the real app executes there. LocalStack stays the
 * everyday stage; see the README for why both.
 */
const VENV = join(REPO_ROOT, '.venv-ministack');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(REPO_ROOT, 'localstack', 'ministack-requirements.txt');
const PROCESS_NAME = 'ministack';
/** LocalStack's port, shared by every checkout on the machine: never ours. */
const LOCALSTACK_PORT = 4566;

type Say = (line: string) => void;

export class MiniStackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MiniStackError';
  }
}

function requirementsHash(): string {
  return createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
}

/** The project-local virtualenv with the pinned MiniStack; (re)installed when its requirements change. */
export function ensureMiniStackVenv(say: Say): void {
  const marker = join(VENV, '.requirements.sha256');
  if (existsSync(VENV_PYTHON) && existsSync(marker) && readFileSync(marker, 'utf8') === requirementsHash())
    return;
  const python = ['python3.11', 'python3.12', 'python3'].find(
    (cmd) => spawnSync(cmd, ['-c', 'import sys; sys.exit(sys.version_info < (3, 10))']).status === 0,
  );
  if (!python) throw new MiniStackError('MiniStack needs Python 3.10 or newer (python3.11 or python3)');
  say('installing MiniStack into .venv-ministack (first run, or its requirements changed)...');
  const run = (cmd: string, args: string[]) => {
    const result = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (result.status !== 0) {
      throw new MiniStackError(
        `${cmd} ${args.join(' ')} failed:\n${(result.stderr || result.stdout).slice(-2_000)}`,
      );
    }
  };
  if (existsSync(VENV)) rmSync(VENV, { recursive: true, force: true });
  run(python, ['-m', 'venv', VENV]);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS]);
  writeFileSync(marker, requirementsHash());
}

/** A free TCP port on the loopback interface, never LocalStack's. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && port !== LOCALSTACK_PORT) return port;
  }
}

/** The machine's basics only (paths, locale, CA bundle): nothing of the project's configuration. */
export function hostEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS'];
  return Object.fromEntries(keep.flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]]])));
}

export interface MiniStack {
  readonly port: number;
  readonly endpoint: string;
  readonly pid: number;
  readonly log: string;
  /** Stops MiniStack and every Lambda worker it started (its whole process group). */
  stop(): Promise<void>;
}

async function healthy(endpoint: string): Promise<{ version?: string } | undefined> {
  try {
    const response = await fetch(`${endpoint}/_ministack/health`, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? ((await response.json()) as { version?: string }) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts a fresh MiniStack on a free port of its own, in its own process group, with its temporary
 * files (Lambda code, worker sockets) in a directory of its own, and waits until it answers. A
 * MiniStack this checkout left running (a rehearsal killed mid-way) is stopped first.
 */
export async function startMiniStack(
  say: Say,
  options: {
    readonly timeoutMs?: number;
    /** Its pid and log file name under localstack/.state (tests use their own). */
    readonly name?: string;
  } = {},
): Promise<MiniStack> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const name = options.name ?? PROCESS_NAME;
  ensureMiniStackVenv(say);
  if (runningPid(name) !== undefined) {
    say('stopping a MiniStack a previous rehearsal of this checkout left running');
    await stopBackground(name);
  }
  const port = await freePort();
  // Short: MiniStack puts each Lambda worker's Unix socket in here, and a socket path (with the
  // function's name in it) must stay under 108 bytes.
  const tmp = mkdtempSync(join(tmpdir(), 'ms-'));
  rmSync(logFile(name), { force: true });
  const endpoint = `http://localhost:${port}`;
  const pid = startBackground(name, VENV_PYTHON, ['-m', 'ministack'], {
    // MiniStack hands its own environment to every Lambda worker, under the function's variables:
    // anything of the local stage here (DATABASE_URL, AWS_ENDPOINT_URL of LocalStack, ...) would
    // mask what the deployed configuration lacks. Only what a process needs to run passes.
    ...hostEnvironment(),
    AWS_ENDPOINT_URL: endpoint,
    GATEWAY_PORT: String(port),
    BIND_HOST: '127.0.0.1',
    MINISTACK_HOST: 'localhost',
    MINISTACK_REGION: process.env.AWS_REGION ?? 'us-east-1',
    // Listeners the rehearsal does not use would take fixed ports other checkouts may hold.
    IOT_MTLS_ENABLED: '0',
    SFTP_ENABLED: '0',
    PERSIST_STATE: '0',
    S3_PERSIST: '0',
    LOG_LEVEL: 'INFO',
    TMPDIR: tmp,
  });
  const stop = async () => {
    await stopBackground(name);
    rmSync(tmp, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const health = await healthy(endpoint);
    if (health) {
      say(`MiniStack ${health.version ?? ''} answering on :${port} (pid ${pid})`);
      return { port, endpoint, pid, log: logFile(name), stop };
    }
    if (!isAlive(pid)) {
      await stop();
      throw new MiniStackError(`MiniStack exited during start-up:\n${tail(logFile(name))}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new MiniStackError(`MiniStack did not answer on :${port} within ${timeoutMs / 1_000} s`);
}
