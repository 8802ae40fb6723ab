import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../lib/paths';
import { portHolder } from '../../../localstack/ports';
import {
  isAlive,
  runningPid,
  startBackground,
  startedByStage,
  stopGroup,
} from '../../../localstack/processes';
import { StageError, stageStatus, stageUp } from '../../../localstack/stage';

/**
 * Who owns the stage's ports, with real processes on free ports: never the shared :4566/:4580,
 * and never a process this test did not start.
 */

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A node process (in its own process group, as another checkout's service would be). */
function spawnNode(script: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['-e', script], {
    cwd: tmpdir(),
    env: { ...process.env, ...env },
    detached: true,
    stdio: 'ignore',
  });
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LISTEN = (body: string) =>
  `require('node:http').createServer((q, s) => { ${body} }).listen(Number(process.env.PORT), '127.0.0.1')`;

describe('local stage port ownership', () => {
  const saved = { ...process.env };
  const started: ChildProcess[] = [];
  let stateDir: string;

  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'stage-ownership-'));
  });
  afterEach(async () => {
    for (const child of started.splice(0))
      if (child.pid && isAlive(child.pid)) await stopGroup(child.pid, 1_000);
    process.env = { ...saved };
  });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  async function ports(): Promise<void> {
    process.env.LOCAL_STAGE_STATE_DIR = stateDir;
    process.env.LOCALSTACK_PORT = String(await freePort());
    process.env.MARKET_API_PORT = String(await freePort());
    process.env.BROKER_SIM_PORT = String(await freePort());
    // Endpoints follow the ports (applyLocalDefaults derives them when unset).
    delete process.env.AWS_ENDPOINT_URL;
    delete process.env.MARKET_API_BASE_URL;
    delete process.env.BROKER_BASE_URL;
  }

  it('names the process listening on a port, its process group and its directory', async () => {
    // Prepare
    const port = await freePort();
    const child = spawnNode(LISTEN("s.end('x')"), { PORT: String(port) });
    started.push(child);

    // Act
    await until(() => portHolder(port) !== undefined);
    const holder = portHolder(port);

    // Assess
    expect(holder?.pid).toBe(child.pid);
    expect(holder?.pgid).toBe(child.pid);
    expect(holder?.cwd).toBe(tmpdir());
    expect(portHolder(await freePort())).toBeUndefined();
  });

  it('stops a process group that ignores SIGTERM with SIGKILL after the grace period, children included', async () => {
    // Prepare: a leader that ignores SIGTERM and a child of it that does too.
    const ignore = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";
    const leader = spawn(
      process.execPath,
      [
        '-e',
        `${ignore} const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(`${ignore} console.log('ready')`)}], { stdio: ['ignore', 'inherit', 'ignore'] });`,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    started.push(leader);
    const pgid = leader.pid as number;
    // Both handlers are installed once the child (started after the leader's handler) says so.
    await new Promise((r) => leader.stdout?.once('data', r));
    const members = () => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(members()).toBe(true);

    // Act
    const how = await stopGroup(pgid, 500);

    // Assess
    expect(how).toBe('SIGKILL');
    expect(members()).toBe(false);
  });

  it('fails loudly when a non-LocalStack process holds the LocalStack port, naming it', async () => {
    // Prepare
    await ports();
    const other = spawnNode(LISTEN('s.statusCode = 404; s.end()'), { PORT: process.env.LOCALSTACK_PORT });
    started.push(other);
    await until(() => portHolder(Number(process.env.LOCALSTACK_PORT)) !== undefined);

    // Act
    const error = await stageUp(() => undefined).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(StageError);
    expect((error as Error).message).toContain(`port ${process.env.LOCALSTACK_PORT} is taken`);
    expect((error as Error).message).toContain(`pid ${other.pid}, ${tmpdir()}, NOT started by this stage`);
  });

  it('stops a LocalStack of its own that does not hold the port, and with --own refuses a shared one', async () => {
    // Prepare: another checkout's LocalStack answers on the port; ours runs without holding it (it
    // lost the race for the port), as after a CannotListenError.
    await ports();
    const other = spawnNode(
      LISTEN(`s.setHeader('content-type', 'application/json'); s.end('{"version":"4.13.1","services":{}}')`),
      {
        PORT: process.env.LOCALSTACK_PORT,
      },
    );
    started.push(other);
    await until(() => portHolder(Number(process.env.LOCALSTACK_PORT)) !== undefined);
    const stray = startBackground(
      'localstack',
      process.execPath,
      ['-e', 'setInterval(() => {}, 1000)'],
      process.env,
    );
    expect(startedByStage('localstack', stray)).toBe(true);
    const lines: string[] = [];

    // Act
    const error = await stageUp((l) => lines.push(l), { own: true }).catch((e: unknown) => e);

    // Assess
    expect(isAlive(stray)).toBe(false);
    expect(runningPid('localstack')).toBeUndefined();
    expect(lines.join('\n')).toContain(`stopped our LocalStack (pid ${stray}`);
    expect(error).toBeInstanceOf(StageError);
    expect((error as Error).message).toContain(
      `LocalStack 4.13.1 on :${process.env.LOCALSTACK_PORT} is shared: pid ${other.pid}`,
    );
    expect((error as Error).message).toContain('--own needs one started by this stage');
    expect(isAlive(other.pid as number)).toBe(true);
  });

  it('stage status says who holds each port and whether this stage started it', async () => {
    // Prepare: ours on the market API port (started by this stage), another on the LocalStack port.
    await ports();
    const other = spawnNode(
      LISTEN(`s.setHeader('content-type', 'application/json'); s.end('{"version":"4.13.1","services":{}}')`),
      {
        PORT: process.env.LOCALSTACK_PORT,
      },
    );
    started.push(other);
    const ours = startBackground(
      'market-api',
      process.execPath,
      [
        '-e',
        `require('node:http').createServer((q, s) => s.end('ok')).listen(${process.env.MARKET_API_PORT}, '127.0.0.1')`,
      ],
      process.env,
    );
    await until(() => portHolder(Number(process.env.MARKET_API_PORT)) !== undefined);
    await until(() => portHolder(Number(process.env.LOCALSTACK_PORT)) !== undefined);

    // Act
    const status = await stageStatus();
    await stopGroup(ours, 1_000);

    // Assess
    const localstack = status.services.find((s) => s.service === 'LocalStack');
    const market = status.services.find((s) => s.service === 'market API');
    expect(localstack).toMatchObject({
      running: true,
      version: '4.13.1',
      holder: { pid: other.pid, ours: false },
    });
    expect(localstack?.ourPid).toBeUndefined();
    expect(market).toMatchObject({
      running: true,
      holder: { pid: ours, ours: true, checkout: REPO_ROOT.replace(/\/$/, '') },
    });
  });
});
