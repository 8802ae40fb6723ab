/**
 * The router process (the container's entry in AWS, `router up` locally). Configuration:
 * REALTIME_FEED_URL (provider socket), MARKET_API_BASE_URL (REST gap fill), POLYGON_API_KEY,
 * REALTIME_SUBSCRIPTIONS (default `T.*,Q.*,AM.*,FMV.*`), ROUTER_PORT (client WebSocket `/stream` and
 * `/health`, default 4590), REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_TLS/REDIS_AUTH_TOKEN) and
 * EVENT_BUS_NAMESPACE (the app's streams), ROUTER_METRICS_INTERVAL_MS (EMF metrics; 0 = off),
 * QUEUE_URL_ROUTER_BARS (minute bars to persistence; locally the stage's queue), DATA_BUCKET and
 * REALTIME_ARCHIVE_PREFIX (raw frames archived for replay, default `realtime/frames/<epoch>/`),
 * ROUTER_CLIENT_WRITE_BATCHING (`0`: one socket write per client message, for comparison only),
 * ROUTER_REDIS_SINK_THREAD (`main`: the Redis sinks on the router's event loop instead of their worker
 * thread, for comparison only), ROUTER_REDIS_SINK_NICE (the sink thread's nice value, default 10; 0:
 * as the router's event loop).
 * SIGTERM drains.
 */
import { randomUUID } from 'node:crypto';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CHANNELS } from '../market/realtime/types';
import { s3, sqs } from '../platform/aws';
import { queueUrl, queueUrlVariable } from '../platform/queues';
import { DEFAULT_ARCHIVE_PREFIX, frameArchive } from './archive';
import { barQueueSink } from './egress';
import { RouterService } from './service';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set`);
  return v;
}

/**
 * REDIS_URL locally; in AWS the ElastiCache primary endpoint (REDIS_HOST, REDIS_PORT) with TLS
 * (REDIS_TLS, default required) and the AUTH token ECS injects from Secrets Manager (REDIS_AUTH_TOKEN).
 */
function redisUrl(): string {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  const host = required('REDIS_HOST');
  const port = process.env.REDIS_PORT ?? '6379';
  const tls = process.env.REDIS_TLS !== 'disabled';
  const token = process.env.REDIS_AUTH_TOKEN;
  return `${tls ? 'rediss' : 'redis'}://${token ? `:${encodeURIComponent(token)}@` : ''}${host}:${port}`;
}

const url = redisUrl();
const namespace = process.env.EVENT_BUS_NAMESPACE;
const epoch = `e${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
const bucket = process.env.DATA_BUCKET;
const metricsIntervalMs = Number(process.env.ROUTER_METRICS_INTERVAL_MS ?? 0);
const service = new RouterService({
  provider: {
    wsUrl: required('REALTIME_FEED_URL'),
    restUrl: required('MARKET_API_BASE_URL'),
    apiKey: required('POLYGON_API_KEY'),
    subscriptions: process.env.REALTIME_SUBSCRIPTIONS ?? 'T.*,Q.*,AM.*,FMV.*',
    universe: (process.env.REALTIME_UNIVERSE ?? '').split(',').filter(Boolean),
  },
  port: Number(process.env.ROUTER_PORT ?? 4590),
  // EMF metrics on stdout (CloudWatch extracts them from the container's log group); off unless set.
  ...(metricsIntervalMs > 0
    ? {
        metrics: {
          publisher: new Metrics({
            namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Tickstock',
            serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'realtime-router',
          }),
          intervalMs: metricsIntervalMs,
        },
      }
    : {}),
  host: process.env.ROUTER_HOST ?? '127.0.0.1',
  clientWriteBatching: process.env.ROUTER_CLIENT_WRITE_BATCHING !== '0',
  // Every channel to its Redis Stream (one connection each), from the sinks' worker thread.
  redis: {
    targets: Object.fromEntries(CHANNELS.map((c) => [c, { url, namespace }])),
    thread: process.env.ROUTER_REDIS_SINK_THREAD === 'main' ? 'main' : 'worker',
    nice: Number(process.env.ROUTER_REDIS_SINK_NICE ?? 10),
  },
  router: { epoch },
  // Raw frames to S3 (replayable), one folder per router epoch.
  ...(bucket
    ? {
        archive: frameArchive(s3, {
          bucket,
          prefix: process.env.REALTIME_ARCHIVE_PREFIX ?? DEFAULT_ARCHIVE_PREFIX,
          epoch,
        }),
      }
    : {}),
  // Minute bars to the RouterBars queue: QUEUE_URL_ROUTER_BARS in AWS, the local stage's queue locally.
  ...(process.env[queueUrlVariable('RouterBars')] || process.env.AWS_ENDPOINT_URL
    ? { bars: barQueueSink(sqs, () => queueUrl(sqs, 'RouterBars')) }
    : {}),
});
await service.start();
console.log(`router ${service.router.hub.epoch} on ws://127.0.0.1:${service.port}/stream (health /health)`);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  const { drained } = await service.stop();
  console.log(`router stopped (${drained ? 'drained' : 'drain timed out'})`);
  process.exit(drained ? 0 : 1);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
