/**
 * The router process's own scheduling figures for `/health`: event-loop delay (how long a ready
 * callback, a tick among them, waited for the loop) and garbage-collection pauses. On a shared
 * machine they tell a latency spike caused inside the process (GC, a long synchronous turn) from one
 * caused by the process not being scheduled at all.
 */
import { type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface ProcessFigures {
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly gc: { readonly count: number; readonly totalMs: number; readonly maxMs: number };
  readonly rssMb: number;
  /**
   * Where the resident memory is (MB): the event loop's JavaScript heap (used of allocated) and the
   * memory outside it that V8 accounts for, of which ArrayBuffers (typed arrays: the dedup windows,
   * the resume history). The sinks' worker isolate is in the RSS only.
   */
  readonly memoryMb: {
    readonly heapUsed: number;
    readonly heapTotal: number;
    readonly external: number;
    readonly arrayBuffers: number;
  };
  readonly cpuMs: number;
}

export class ProcessMonitor {
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 2 });
  private readonly observer: PerformanceObserver;
  private gcCount = 0;
  private gcTotal = 0;
  private gcMax = 0;

  constructor() {
    this.loop.enable();
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.gcCount += 1;
        this.gcTotal += e.duration;
        if (e.duration > this.gcMax) this.gcMax = e.duration;
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  figures(): ProcessFigures {
    const ms = (ns: number): number => Math.round(ns / 1_000) / 1_000;
    const cpu = process.cpuUsage();
    const mb = (bytes: number): number => Math.round(bytes / 1_048_576);
    const memory = process.memoryUsage();
    return {
      eventLoopDelayMs: {
        p50: ms(this.loop.percentile(50)),
        p99: ms(this.loop.percentile(99)),
        max: ms(this.loop.max),
      },
      gc: {
        count: this.gcCount,
        totalMs: Math.round(this.gcTotal * 1000) / 1000,
        maxMs: Math.round(this.gcMax * 1000) / 1000,
      },
      rssMb: mb(memory.rss),
      memoryMb: {
        heapUsed: mb(memory.heapUsed),
        heapTotal: mb(memory.heapTotal),
        external: mb(memory.external),
        arrayBuffers: mb(memory.arrayBuffers),
      },
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    };
  }

  stop(): void {
    this.loop.disable();
    this.observer.disconnect();
  }
}
