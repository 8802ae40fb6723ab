// temporary: phase timings of one first load + re-sync through the PostgreSQL store (not committed)
import { createReadStream } from 'node:fs';
import { ingestExport } from '../../lambdas/health/ingest';
import { MemoryRecordStore, PostgresRecordStore, type RecordStore } from '../../lambdas/health/record-store';
import { createPool } from '../../lambdas/platform/postgres';
import { createTestSchema } from '../support/db';
const file = process.argv[2] as string;
const mem = process.argv.includes('--memory');
const KEY = 'raw/BloodGlucoseRecord/2025/06/01/BloodGlucoseRecord_1748743200000.avro';
function wrap(store: RecordStore, log: Record<string, number>) {
  const orig = store.ingest.bind(store);
  (store as { ingest: RecordStore['ingest'] }).ingest = (source, fn) =>
    orig(source, async (unit) => {
      const t0 = performance.now();
      let stage = 0;
      const u = {
        ...unit,
        stageRecords: async (...a: Parameters<typeof unit.stageRecords>) => {
          const s = performance.now();
          const r = await unit.stageRecords(...a);
          stage += performance.now() - s;
          return r;
        },
        merge: async () => {
          log.beforeMerge = performance.now() - t0;
          log.stageCalls = stage;
          const s = performance.now();
          const r = await unit.merge();
          log.merge = performance.now() - s;
          return r;
        },
      };
      const r = await fn(u);
      log.unit = performance.now() - t0;
      return r;
    });
}
const sink = { writeTraining: async () => {}, writeManifest: async () => {}, quarantine: async () => {} };
async function once(store: RecordStore, etag: string) {
  const log: Record<string, number> = {};
  wrap(store, log);
  const t = performance.now();
  const c = process.cpuUsage();
  await ingestExport({ stream: createReadStream(file, { highWaterMark: 65536 }), source: { bucket: 'b', key: KEY, etag }, store, now: new Date('2025-11-10T12:00:00Z') }, sink);
  const cpu = process.cpuUsage(c);
  console.log(etag, 'rssMax', (process.resourceUsage().maxRSS / 1024).toFixed(0), 'total', (performance.now() - t).toFixed(0), 'cpu', ((cpu.user + cpu.system) / 1000).toFixed(0), Object.entries(log).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(' '));
}
if (mem) { const s = new MemoryRecordStore(); await once(s, 'm1'); }
else {
  const db = await createTestSchema('bench_phase');
  const pool = createPool({ connectionString: db.url, schema: db.schema, max: 4 });
  const stats = new Map<string, { n: number; ms: number }>();
  pool.on('connect', (client) => {
    const q = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
    (client as unknown as { query: unknown }).query = (...a: unknown[]) => {
      const text = typeof a[0] === 'string' ? a[0] : '';
      const k = text.trim().slice(0, 30).replace(/\s+/g, ' ');
      const s = performance.now();
      const r = q(...a);
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(() => { const e = stats.get(k) ?? { n: 0, ms: 0 }; e.n++; e.ms += performance.now() - s; stats.set(k, e); }, () => {});
      return r;
    };
  });
  process.on('exit', () => { for (const [k, v] of stats) if (v.ms > 20) console.log('  sql', JSON.stringify(k), v.n, v.ms.toFixed(0)); });
  try { const s = new PostgresRecordStore(pool); await once(s, 'p1'); if (!process.env.PHASE_KEEP && !process.env.PHASE_ONE) await once(s, 'p2'); } finally { await pool.end(); if (process.env.PHASE_KEEP) console.log('kept', db.url, db.schema); else await db.drop(); }
}
// (timing of statements: set PHASE_SQL=1)
