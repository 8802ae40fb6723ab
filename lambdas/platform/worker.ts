/**
 * Starts a worker thread from a module next to the caller, the same way from TypeScript sources (tsx,
 * vitest) and from a bundle (the router's container: esbuild emits `<name>.mjs` beside `main.mjs`).
 * Node 20 does not pass tsx's loader to workers, so a `.ts` worker starts through `ts-worker.mjs`,
 * which imports it with tsx's API; a bundled worker starts directly.
 */
import { existsSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { type ResourceLimits, workerData as received, Worker } from 'node:worker_threads';

interface Envelope {
  readonly entry?: string;
  readonly data: unknown;
}

export interface StartWorkerOptions {
  /**
   * A nice value for the worker's thread (Linux; 0 = as the process): a worker doing best-effort
   * work (the router's Redis sinks) then yields the CPU to the event loop it serves when both want it.
   */
  readonly nice?: number;
  /** The worker's V8 heap limits (its young generation: V8 flags such as the router's semi-space size apply to every isolate). */
  readonly resourceLimits?: ResourceLimits;
}

/** `name` without extension, relative to `from` (the caller's `import.meta.url`). */
export function startWorker(
  name: string,
  from: string,
  data: unknown,
  options: StartWorkerOptions = {},
): Worker {
  const before = options.nice ? threads() : null;
  const worker = from.endsWith('.ts')
    ? new Worker(new URL('./ts-worker.mjs', import.meta.url), {
        workerData: { entry: new URL(`${name}.ts`, from).href, data } satisfies Envelope,
        resourceLimits: options.resourceLimits,
      })
    : new Worker(new URL(`${name}.mjs`, from), {
        workerData: { data } satisfies Envelope,
        resourceLimits: options.resourceLimits,
      });
  if (before && options.nice) {
    const nice = options.nice;
    // Node does not say which thread a worker runs on: it is the thread that appeared since. (A libuv
    // pool thread started in the same moment would be reniced too: harmless, it only waits longer.)
    worker.once('online', () => {
      for (const tid of threads()) {
        if (before.has(tid)) continue;
        try {
          setPriority(tid, nice);
        } catch {
          // Not permitted or gone: the worker runs at the process's priority.
        }
      }
    });
  }
  return worker;
}

/** The process's thread ids (Linux), or an empty set elsewhere. */
function threads(): Set<number> {
  if (!existsSync('/proc/self/task')) return new Set();
  return new Set(readdirSync('/proc/self/task').map(Number));
}

/** In the worker: the `data` its parent passed to `startWorker`. */
export function workerInput<T>(): T {
  return (received as Envelope).data as T;
}
