/**
 * Starts a worker thread from a module next to the caller, the same way from TypeScript sources (tsx,
 * vitest) and from a bundle (the router's container: esbuild emits `<name>.mjs` beside `main.mjs`).
 * Node 20 does not pass tsx's loader to workers, so a `.ts` worker starts through `ts-worker.mjs`,
 * which imports it with tsx's API; a bundled worker starts directly.
 */
import { workerData as received, Worker } from 'node:worker_threads';

interface Envelope {
  readonly entry?: string;
  readonly data: unknown;
}

/** `name` without extension, relative to `from` (the caller's `import.meta.url`). */
export function startWorker(name: string, from: string, data: unknown): Worker {
  if (from.endsWith('.ts')) {
    const entry = new URL(`${name}.ts`, from).href;
    return new Worker(new URL('./ts-worker.mjs', import.meta.url), {
      workerData: { entry, data } satisfies Envelope,
    });
  }
  return new Worker(new URL(`${name}.mjs`, from), { workerData: { data } satisfies Envelope });
}

/** In the worker: the `data` its parent passed to `startWorker`. */
export function workerInput<T>(): T {
  return (received as Envelope).data as T;
}
