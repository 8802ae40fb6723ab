import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestExport, type OutputSink } from '../../../lambdas/health/ingest';
import { MemoryRecordStore } from '../../../lambdas/health/record-store';
import { rawKeyFor } from '../../../lambdas/health/source';
import { TRAINING_MANIFEST_KEY } from '../../../lambdas/health/training';
import { SAMPLES_DIR } from '../../fixtures/health/generator';
import { NOW } from './helpers';

/** A sink with the S3 sink's semantics: training objects are written once, the manifest replaced. */
function onceSink(): OutputSink & { objects: Map<string, string>; manifests: string[] } {
  const objects = new Map<string, string>();
  const manifests: string[] = [];
  return {
    objects,
    manifests,
    async writeTraining(_source, key, body) {
      if (!objects.has(key)) objects.set(key, body);
    },
    async writeManifest(_source, key, body) {
      objects.set(key, body);
      manifests.push(body);
    },
    async quarantine() {
      throw new Error('no sample is quarantined');
    },
  };
}

describe('ingestExport', () => {
  it('replaces the training manifest after every processed export (examples are written once)', async () => {
    // Prepare: two exports of different subjects, written through a write-once sink.
    const store = new MemoryRecordStore();
    const sink = onceSink();
    const files = ['StepsRecord_1762261227317.avro', 'StepsRecord_1762347687317.avro'];

    // Act
    for (const file of files) {
      const key = rawKeyFor(file);
      const r = await ingestExport(
        {
          bytes: readFileSync(join(SAMPLES_DIR, file)),
          source: { bucket: 'b', key, etag: file },
          store,
          now: new Date(NOW),
        },
        sink,
      );
      expect(r.status).toBe('processed');
    }

    // Assess: the manifest in the bucket is the second snapshot and lists both examples.
    expect(sink.manifests).toHaveLength(2);
    const manifest = JSON.parse(sink.objects.get(TRAINING_MANIFEST_KEY) as string);
    expect(sink.objects.get(TRAINING_MANIFEST_KEY)).toBe(sink.manifests[1]);
    const listed = manifest.subjects.flatMap(
      (s: { current: { key: string }; superseded: { key: string }[] }) => [
        s.current.key,
        ...s.superseded.map((x) => x.key),
      ],
    );
    const examples = [...sink.objects.keys()].filter((k) => k !== TRAINING_MANIFEST_KEY);
    expect(examples).toHaveLength(2);
    expect(listed.sort()).toEqual(examples.sort());
  });
});
