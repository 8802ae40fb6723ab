import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths';
import { processGroup } from './ports';

/**
 * Where the local stage keeps its pid files, logs and LocalStack's data (git-ignored).
 * LOCAL_STAGE_STATE_DIR moves it: a second stage of one checkout on other ports (the ownership
 * tests) keeps its own pid files and never touches the first one's processes.
 */
export function stateDir(): string {
  return process.env.LOCAL_STAGE_STATE_DIR || join(REPO_ROOT, 'localstack', '.state');
}

export function logFile(name: string): string {
  return join(stateDir(), `${name}.log`);
}

function pidFile(name: string): string {
  return join(stateDir(), `${name}.pid`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) answers signal 0 but runs nothing.
  const stat = (() => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return '';
    }
  })();
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** The pid of a process this stage started, if it is still running. */
export function runningPid(name: string): number | undefined {
  const file = pidFile(name);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8'));
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return pid;
  rmSync(file, { force: true });
  return undefined;
}

/** Whether a pid belongs to the process group of a service this stage started under that name. */
export function startedByStage(name: string, pid: number): boolean {
  const leader = runningPid(name);
  return leader !== undefined && (pid === leader || processGroup(pid) === leader);
}

/** Starts a detached background process in its own process group, logging to <state>/<name>.log. */
export function startBackground(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): number {
  mkdirSync(stateDir(), { recursive: true });
  if (runningPid(name) !== undefined) {
    // Overwriting the pid file would orphan the running one: nothing could stop it any more.
    throw new Error(`${name} is already running (pid ${runningPid(name)}): stop it first`);
  }
  const log = openSync(logFile(name), 'a');
  const child = spawn(command, args, { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return isAlive(pgid);
  }
}

/**
 * Stops a process group: SIGTERM, then SIGKILL to the whole group if anything of it is still alive
 * after the grace period (LocalStack's shutdown can hang on a thread and ignore SIGTERM for good).
 * Returns the signal that ended it.
 */
export async function stopGroup(pgid: number, graceMs = 10_000): Promise<'SIGTERM' | 'SIGKILL'> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
    } catch {
      try {
        process.kill(pgid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!groupAlive(pgid)) return 'SIGTERM';
  signal('SIGKILL');
  const hardDeadline = Date.now() + 5_000;
  while (groupAlive(pgid) && Date.now() < hardDeadline) await new Promise((r) => setTimeout(r, 50));
  return 'SIGKILL';
}

/** Stops a background process this stage started (its whole group); false when none was running. */
export async function stopBackground(name: string, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(name);
  if (pid === undefined) return false;
  await stopGroup(pid, graceMs);
  rmSync(pidFile(name), { force: true });
  return true;
}

/** Where a runner writes its memory when asked (SIGUSR2). */
export function memoryFile(stage: string): string {
  return join(stateDir(), `runner-${stage}.memory.json`);
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
