import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection } from 'node:net';

/** Who listens on a TCP port of this machine, read from /proc (Linux). */
export interface PortHolder {
  readonly pid: number;
  /** The holder's process group: the stage starts each service as a group leader. */
  readonly pgid: number;
  /** Its working directory: the checkout that started it (the stage starts everything from its root). */
  readonly cwd?: string;
  readonly command: string;
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
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

/** Inodes of the sockets listening on the port (IPv4 and IPv6 tables). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl local_address rem_address st ... inode (10th)
      const local = fields[1];
      if (!local || fields[3] !== '0A') continue; // 0A = LISTEN
      if (local.split(':')[1] === hexPort && fields[9] && fields[9] !== '0') inodes.add(fields[9]);
    }
  }
  return inodes;
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The process group of a process (field 5 of /proc/<pid>/stat), or undefined when it is gone. */
export function processGroup(pid: number): number | undefined {
  const stat = readOr(`/proc/${pid}/stat`);
  // The command (field 2) is in parentheses and may contain spaces: split after its closing one.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgid = Number(rest[2]);
  return Number.isInteger(pgid) && pgid > 0 ? pgid : undefined;
}

export function describeProcess(pid: number): PortHolder | undefined {
  const pgid = processGroup(pid);
  if (pgid === undefined) return undefined;
  let cwd: string | undefined;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    cwd = undefined;
  }
  const command = readOr(`/proc/${pid}/cmdline`).split('\0').filter(Boolean).join(' ').slice(0, 160);
  return { pid, pgid, ...(cwd ? { cwd } : {}), command };
}

/**
 * The process listening on the port, or undefined when none (or when /proc does not say, e.g. a
 * port published by a container, whose listener lives in another network namespace).
 */
export function portHolder(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      if (targets.has(link)) return describeProcess(Number(entry));
    }
  }
  return undefined;
}
