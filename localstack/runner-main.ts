/**
 * The local stage's Lambda service: one event-source runner per consumer in lib/topology.ts, each
 * invoking the consumer's handler module. Started in the background by `stage up`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REPO_ROOT } from '../lib/paths';
import { CONSUMERS } from '../lib/topology';
import { applyLocalDefaults, localStageName } from './env';
import { memoryFile } from './processes';
import { localQueueUrl, queueName } from './resources';
import { EventSourceRunner, type SqsHandler } from './runner';

applyLocalDefaults();
// In AWS each function has its own service name; here every consumer shares one process.
process.env.POWERTOOLS_SERVICE_NAME ??= 'local-runner';
const sqs = new SQSClient({});
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

// Locally the machine, not the account, is the limit.
const LOCAL_CONCURRENCY = 2;
// Each Lambda container has its own pool of DB_POOL_MAX (2) connections; here the containers share the
// process's pool (one per database component), so it holds what a consumer's containers would have
// together. With 2, two health ETL containers each holding an export's transaction and asking for a
// second connection for its sleep spans waited for each other until the 5 s connect timeout.
process.env.DB_POOL_MAX ??= String(2 * LOCAL_CONCURRENCY);

// Lambda runs one invocation at a time per container, so handlers may keep per-invocation state at
// module scope. Each poller here is one "container": its own instance of the handler module
// (a distinct import URL), invoked one batch at a time. Platform modules (pools, clients) are shared.
const runners = (
  await Promise.all(
    CONSUMERS.map(async (consumer) => {
      const url = await localQueueUrl(sqs, queueName(consumer));
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
      );
      const containers = Math.min(consumer.maxConcurrency, LOCAL_CONCURRENCY);
      log(`polling ${queueName(consumer)} for ${consumer.entry} (${containers} containers)`);
      return Promise.all(
        Array.from({ length: containers }, async (_, instance) => {
          const moduleUrl = `${pathToFileURL(join(REPO_ROOT, consumer.entry)).href}?container=${instance}`;
          const module = (await import(moduleUrl)) as { handler: SqsHandler };
          const runner = new EventSourceRunner({
            sqs,
            queueUrl: url,
            queueArn: Attributes?.QueueArn ?? '',
            functionName: consumer.id,
            handler: module.handler,
            batchSize: consumer.batchSize,
            maxBatchingWindowSeconds: consumer.maxBatchingWindowSeconds,
            timeoutSeconds: consumer.timeoutSeconds,
            concurrency: 1,
            log,
          });
          runner.start();
          return runner;
        }),
      );
    }),
  )
).flat();

// Memory probe for the load test: on SIGUSR2, a full GC, then the process's memory to a file. What
// survives a full GC is what the worker keeps; RSS alone also counts heap the GC has not returned.
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  writeFileSync(memoryFile(localStageName()), JSON.stringify({ ...process.memoryUsage(), at: Date.now() }));
});

const shutdown = async () => {
  await Promise.all(runners.map((r) => r.stop()));
  log(`stopped: ${JSON.stringify(runners.map((r) => r.stats))}`);
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
