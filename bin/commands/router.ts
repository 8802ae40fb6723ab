/**
 * `npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max]`
 *
 * Runs the real-time router core offline over a recorded feed (one `{"source","receivedAt","frame"}`
 * per line) and writes `<dir>/delivered.jsonl` (what a client subscribed to everything receives, in
 * delivery order) and `<dir>/summary.json` (per-channel accounting, malformed lines, latency, peak
 * RSS). Exit 0 unless the run itself could not happen (unreadable feed, unwritable output).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { type ReplaySummary, replayFeed } from '../../lambdas/market/realtime/replay';

export const summary =
  'router replay <feed.jsonl> --out DIR [--speed X|max]: the real-time router over a recorded feed';

const USAGE = `usage:
  npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max]`;

export function parseSpeed(value: string | undefined): number | 'max' | null {
  if (value === undefined || value === 'max') return 'max';
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

export async function replayFile(feed: string, out: string, speed: number | 'max'): Promise<ReplaySummary> {
  await access(feed);
  await mkdir(out, { recursive: true });
  const delivered = createWriteStream(join(out, 'delivered.jsonl'));
  const lines = createInterface({
    input: createReadStream(feed, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const result = await replayFeed(lines, (line) => delivered.write(`${JSON.stringify(line)}\n`), { speed });
  await new Promise<void>((resolve, reject) => {
    delivered.once('error', reject);
    delivered.end(resolve);
  });
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

async function replay(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, speed: { type: 'string' } },
  });
  const speed = parseSpeed(values.speed);
  const feed = positionals[0];
  if (!feed || positionals.length !== 1 || !values.out || speed === null) {
    console.error(USAGE);
    return 2;
  }
  const result = await replayFile(feed, values.out, speed);
  const line = (c: keyof ReplaySummary['channels']): string => {
    const s = result.channels[c];
    const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
    return `  ${c.padEnd(6)} received ${s.received}, delivered ${s.delivered}, duplicates ${s.duplicates}, corrections ${s.corrections}, conflated ${s.conflated}, rejected ${rejected}, p99 ${result.latencyMs[c].p99} ms`;
  };
  console.log(
    [
      `router replay ${feed} -> ${values.out}`,
      line('tick'),
      line('event'),
      line('fmv'),
      line('ohlcv'),
      `  malformed lines ${result.malformed}, peak RSS ${result.peakRssMb} MB`,
    ].join('\n'),
  );
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'replay') return replay(rest);
  console.error(USAGE);
  return 2;
}
