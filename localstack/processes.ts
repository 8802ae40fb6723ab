import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths';

/** Where the local stage keeps its pid files, logs and LocalStack's data (git-ignored). */
export const STATE_DIR = join(REPO_ROOT, 'localstack', '.state');

export function logFile(name: string): string {
  return join(STATE_DIR, `${name}.log`);
}

function pidFile(name: string): string {
  return join(STATE_DIR, `${name}.pid`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
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

/** Starts a detached background process in its own process group, logging to .state/<name>.log. */
export function startBackground(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): number {
  mkdirSync(STATE_DIR, { recursive: true });
  const log = openSync(logFile(name), 'a');
  const child = spawn(command, args, { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  child.unref();
  writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

/** Stops a background process group: SIGTERM, then SIGKILL if it has not exited in time. */
export async function stopBackground(name: string, graceMs = 10_000): Promise<boolean> {
  const pid = runningPid(name);
  if (pid === undefined) return false;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  rmSync(pidFile(name), { force: true });
  return true;
}

/** Where a runner writes its memory when asked (SIGUSR2). */
export function memoryFile(stage: string): string {
  return join(STATE_DIR, `runner-${stage}.memory.json`);
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
