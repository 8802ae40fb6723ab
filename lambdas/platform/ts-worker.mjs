// The entry of a worker started from TypeScript sources (startWorker in worker.ts): Node 20 gives
// workers no loader hooks from `--import tsx`, so the TypeScript module is imported through tsx's API.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.entry, import.meta.url);
