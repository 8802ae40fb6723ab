/**
 * Throwaway servers the fault suite may restart without disturbing other work on the machine:
 * a PostgreSQL cluster (initdb/pg_ctl in a temp dir), a redis-server, a TCP proxy in front of the
 * shared LocalStack (cut and restored: LocalStack itself is never touched), and the local
 * event-source runner as a child process. Each on a free port, each stopped by `stop()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createRedisClient } from '../../lambdas/platform/redis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

/** Polls `probe` every 25 ms until it answers true; the time it first did, or an error after `ms`. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, ms = 30_000): Promise<number> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return Date.now();
    await sleep(25);
  }
  throw new Error(`${what} did not answer within ${ms / 1000} s`);
}

function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return join(root, versions[0], 'bin');
  return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
}

/** A PostgreSQL cluster of its own: restartable without touching the machine's server. */
export class ThrowawayPostgres {
  private readonly bin = postgresBinDir();
  private readonly asRoot = process.getuid?.() === 0;
  readonly dir: string;

  private constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'tickstock-faults-pg-'));
  }

  /**
   * `hostAuth: 'scram-sha-256'` makes TCP logins prove their password (the superuser then connects
   * through the Unix socket in the cluster's directory, see adminUrl).
   */
  static async start(options: { hostAuth?: 'trust' | 'scram-sha-256' } = {}): Promise<ThrowawayPostgres> {
    const server = new ThrowawayPostgres(await freePort());
    // initdb refuses to run as root: the cluster belongs to the postgres OS user then.
    if (server.asRoot) chownSync(server.dir, uid('postgres'), gid('postgres'));
    server.hostAuth = options.hostAuth ?? 'trust';
    server.run('initdb', [
      '-D',
      join(server.dir, 'data'),
      '--auth-local=trust',
      `--auth-host=${server.hostAuth}`,
      '-U',
      'postgres',
      '--no-sync',
    ]);
    await server.up();
    return server;
  }

  private hostAuth: 'trust' | 'scram-sha-256' = 'trust';

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** The superuser over the Unix socket (trusted whatever the TCP authentication). */
  adminUrl(database = 'postgres'): string {
    return `postgres://postgres@/${database}?host=${encodeURIComponent(this.dir)}&port=${this.port}`;
  }

  private run(tool: string, args: string[]): void {
    const command = join(this.bin, tool);
    const [file, argv] = this.asRoot
      ? ['runuser', ['-u', 'postgres', '--', command, ...args]]
      : [command, args];
    execFileSync(file, argv, { stdio: 'ignore', cwd: this.dir });
  }

  /** Starts the server; resolves when it accepts queries, with the time it first did. */
  async up(): Promise<number> {
    this.run('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'server.log'),
      '-o',
      `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=60`,
      'start',
    ]);
    return waitUntil(`throwaway PostgreSQL on ${this.port}`, async () => {
      const client = new pg.Client({ connectionString: this.adminUrl(), connectionTimeoutMillis: 1_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
  }

  /** Fast shutdown: every backend is terminated, in-flight transactions roll back. */
  down(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', 'stop']);
  }

  async stop(): Promise<void> {
    try {
      this.down();
    } catch {
      // already down
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
function gid(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}

/**
 * A redis-server of its own with an fsync-always append-only file (as a durable deployment is
 * configured): a SIGKILL restart keeps every acknowledged write, consumer groups included.
 */
export class ThrowawayRedis {
  private process: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'tickstock-faults-redis-'));

  private constructor(
    readonly port: number,
    private readonly persistent: boolean,
  ) {}

  /** `persistent: false` keeps nothing across a restart (as the machine's local Redis). */
  static async start(options: { persistent?: boolean } = {}): Promise<ThrowawayRedis> {
    const server = new ThrowawayRedis(await freePort(), options.persistent ?? true);
    await server.up();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<number> {
    this.process = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        this.persistent ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    return waitUntil(`throwaway redis-server on ${this.port}`, async () => {
      const probe = createRedisClient({ url: this.url });
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        if (probe.isOpen) probe.destroy();
      }
    });
  }

  /** SIGKILL: no goodbye to the clients, as a crashed node. */
  async down(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy in front of the shared LocalStack. LocalStack on :4566 serves every checkout on this
 * machine and must not be restarted; cutting the proxy (listener closed, every connection reset)
 * is what the jobs see when LocalStack goes away, and restoring it is LocalStack answering again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), target);
    await proxy.up();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<number> {
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return Date.now();
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise((r) => server.close(r));
  }

  async stop(): Promise<void> {
    await this.down();
  }
}

/** The local event-source runner (localstack/runner-main.ts) as a child process of the suite. */
export class RunnerProcess {
  private process: ChildProcess | undefined;
  readonly log: string;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    dir: string,
  ) {
    this.log = join(dir, 'runner.log');
  }

  /** Starts it; resolves when every poller has started (the runner logs one line per queue). */
  async up(queues: number): Promise<number> {
    const out = openSync(this.log, 'a');
    this.process = spawn(process.execPath, ['--import', 'tsx', join('localstack', 'runner-main.ts')], {
      env: this.env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const child = this.process;
    return waitUntil(
      'the runner',
      async () => {
        if (child.exitCode !== null) throw new Error(`the runner exited:\n${this.tail()}`);
        return (readFileSync(this.log, 'utf8').match(/ polling /g)?.length ?? 0) >= queues;
      },
      120_000,
    );
  }

  /** SIGKILL mid-batch: what a crashed Lambda container looks like to the queue. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  alive(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  tail(lines = 20): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n') : '';
  }
}
