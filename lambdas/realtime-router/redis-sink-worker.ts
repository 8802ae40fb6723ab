/**
 * The worker thread of the router's Redis sinks (`redis-sinks.ts`): takes each channel's lines off
 * its port into that channel's `RedisChannelSink` and keeps the sinks' figures in the memory it
 * shares with the router (read by `/health`, and `taken` bounds the hand-over).
 */
import { parentPort } from 'node:worker_threads';
import { CHANNELS } from '../market/realtime/types';
import { workerInput } from '../platform/worker';
import {
  BREAKER_CODES,
  channelSinks,
  type FIGURES,
  type FromWorker,
  figureSlot,
  type ToWorker,
  type WorkerInput,
} from './redis-sinks';

const input = workerInput<WorkerInput>();
const figures = new Float64Array(input.figures);
const taken = new Map(CHANNELS.map((c) => [c, 0]));

function share(): void {
  for (const [c, sink] of opened.sinks) {
    const h = sink.health();
    const at = (name: (typeof FIGURES)[number]) => figureSlot(c, name);
    figures[at('breaker')] = BREAKER_CODES.indexOf(h.breaker);
    figures[at('depth')] = h.depth;
    figures[at('published')] = h.published;
    figures[at('failures')] = h.failures;
    figures[at('dropped')] = h.dropped;
    figures[at('gaps')] = h.gaps ?? 0;
    figures[at('peakDepth')] = h.peakDepth ?? 0;
    figures[at('bytes')] = h.bytes ?? 0;
    figures[at('taken')] = taken.get(c) ?? 0;
  }
}

const opened = channelSinks(input.targets, input.limits, share);
const port = parentPort;
if (!port) throw new Error('redis-sink-worker.ts runs as a worker thread (openRedisSinks)');

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'lines': {
      const sink = opened.sinks.get(m.channel);
      for (const line of m.text.split('\n')) sink?.offer(line);
      taken.set(m.channel, (taken.get(m.channel) ?? 0) + m.text.length);
      share();
      return;
    }
    case 'flush': {
      void Promise.all([...opened.sinks.values()].map((s) => s.flush(m.deadline))).then((done) => {
        share();
        port.postMessage({ id: m.id, ok: done.every(Boolean) } satisfies FromWorker);
      });
      return;
    }
    case 'close': {
      void opened.close().then(() => {
        share();
        port.postMessage({ id: m.id, ok: true } satisfies FromWorker);
      });
      return;
    }
  }
});
// The breaker half-opens by time alone: shared figures stay current without traffic too.
setInterval(share, 250).unref();
