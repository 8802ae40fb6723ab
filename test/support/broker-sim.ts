/**
 * Starts the broker simulator as its own process (localstack/broker/main.ts, as `stage up` does) on a
 * free port, for integration tests that talk to it over real HTTP and a real WebSocket.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lib/paths';

export interface SimProcess {
  readonly url: string;
  readonly wsUrl: string;
  readonly child: ChildProcess;
  /** Creates an account of its own (a fresh key) and returns its credentials. */
  account(setup?: Record<string, unknown>): Promise<{ keyId: string; secret: string }>;
  control(keyId: string, body: Record<string, unknown>): Promise<Record<string, unknown>>;
  state(keyId: string): Promise<Record<string, unknown>>;
  /**
   * Submits an order over the broker's REST API as a client does (POST /v2/orders with the account's
   * key; Alpaca's body, e.g. `qty: '1'`, `time_in_force: 'day'`): the order the broker holds without
   * our engine having sent it.
   */
  submitOrder(key: { keyId: string; secret: string }, body: Record<string, unknown>): Promise<Response>;
  stop(): Promise<void>;
}

export async function startSimProcess(env: Record<string, string> = {}): Promise<SimProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'localstack', 'broker', 'main.ts')],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, BROKER_SIM_PORT: '0', BROKER_SIM_HEARTBEAT_MS: '200', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (d) => {
    err += String(d);
  });
  const info = await new Promise<{ url: string; stream: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`broker simulator did not start: ${err}`)), 60_000);
    child.stdout?.on('data', (d) => {
      out += String(d);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.once('exit', (code) => reject(new Error(`broker simulator exited (${code}): ${err}`)));
  });
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${info.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const value = (await r.json()) as Record<string, unknown>;
    if (!r.ok) throw new Error(`control ${path}: ${r.status} ${JSON.stringify(value)}`);
    return value;
  };
  return {
    url: info.url,
    wsUrl: info.stream,
    child,
    account: async (setup = {}) =>
      (await post('/_control/accounts', {
        keyId: `T${randomBytes(6).toString('hex')}`,
        ...setup,
      })) as unknown as { keyId: string; secret: string },
    control: (keyId, body) => post(`/_control/accounts/${keyId}`, body),
    state: async (keyId) =>
      (await (await fetch(`${info.url}/_control/accounts/${keyId}`)).json()) as Record<string, unknown>,
    submitOrder: (key, body) =>
      fetch(`${info.url}/v2/orders`, {
        method: 'POST',
        headers: {
          'APCA-API-KEY-ID': key.keyId,
          'APCA-API-SECRET-KEY': key.secret,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      }),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
