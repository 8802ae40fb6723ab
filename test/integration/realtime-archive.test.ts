/**
 * Raw frames archived to S3 (LocalStack, the test stage's data bucket) by the live router, in the
 * `router replay` feed format: the archive, replayed through the CLI's replay, delivers exactly what
 * the live router delivered.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { replayFile } from '../../bin/commands/router';
import { frameArchive } from '../../lambdas/realtime-router/archive';
import { RouterService } from '../../lambdas/realtime-router/service';
import { applyLocalDefaults } from '../../localstack/env';
import { startFeed } from '../../localstack/feed/server';

applyLocalDefaults();

const PROFILE = {
  ohlcvSymbols: 20,
  tickSymbols: 6,
  fmvSymbols: 3,
  eventsPerMinute: 1_200,
  frameSize: 10,
  barFrameSize: 5,
  seed: 5,
};

describe('router raw-frame archive on S3', () => {
  const s3 = new S3Client({ forcePathStyle: true });
  const bucket = process.env.DATA_BUCKET as string;
  const prefix = `test-realtime-archive/${randomBytes(4).toString('hex')}/`;
  const dirs: string[] = [];

  afterAll(async () => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key as string }));
    if (keys.length > 0)
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    s3.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('writes every ingested frame, in order, in objects that replay to the same deliveries', async () => {
    const now = Date.now();
    const feed = await startFeed({
      profile: PROFILE,
      speed: 60,
      startAt: now - (now % 60_000),
      faults: { duplicateEvery: 7 },
    });
    const epoch = `e-archive-${randomBytes(3).toString('hex')}`;
    // Small objects, so the archive spans several and their order matters.
    const archive = frameArchive(s3, { bucket, prefix, epoch, framesPerObject: 40, lingerMs: 300 });
    const service = new RouterService({
      provider: {
        wsUrl: feed.wsUrl,
        restUrl: feed.restUrl,
        apiKey: 'local-key',
        subscriptions: 'T.*,Q.*,AM.*,FMV.*',
      },
      router: { epoch },
      archive,
    });
    const live: string[] = [];
    service.router.tap((m) => {
      if (m.kind !== 'control') live.push(`${m.channel}|${m.sym}|${JSON.stringify(m.data)}`);
    });
    await service.start();
    try {
      const deadline = Date.now() + 60_000;
      while (service.router.stats.ohlcv.delivered < PROFILE.ohlcvSymbols * 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
    } finally {
      const { drained } = await service.stop(10_000);
      expect(drained).toBe(true);
      await feed.close();
    }
    const frames = service.router.frames;
    expect(service.health().egress.archive).toMatchObject({ depth: 0, dropped: 0, published: frames });

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${epoch}/` }));
    const keys = (listed.Contents ?? []).map((o) => o.Key as string).sort();
    expect(keys.length).toBeGreaterThan(2);
    let text = '';
    for (const key of keys) {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      text += await (object.Body as { transformToString(): Promise<string> }).transformToString();
    }
    const lines = text.split('\n').filter(Boolean);
    expect(lines).toHaveLength(frames);
    const at = lines.map((l) => (JSON.parse(l) as { receivedAt: number }).receivedAt);
    expect(at).toEqual([...at].sort((a, b) => a - b));

    const dir = await mkdtemp(join(tmpdir(), 'rt-archive-'));
    dirs.push(dir);
    await writeFile(join(dir, 'feed.jsonl'), text);
    const summary = await replayFile(join(dir, 'feed.jsonl'), join(dir, 'out'), 'max');
    const replayed = (await readFile(join(dir, 'out', 'delivered.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { channel: string; sym: string; data: Record<string, unknown> })
      .filter((m) => m.data.ev !== 'minute_complete' && m.data.ev !== 'gap')
      .map((m) => `${m.channel}|${m.sym}|${JSON.stringify(m.data)}`);
    expect(summary.malformed).toBe(0);
    expect(summary.channels.tick.duplicates).toBeGreaterThan(0);
    // Same frames, same decisions: the same messages (the order across channels may differ by drain).
    expect([...replayed].sort()).toEqual([...live].sort());
  });
});
