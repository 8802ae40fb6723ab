import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { processExport } from '../../../lambdas/health/pipeline';
import { MemoryRecordStore } from '../../../lambdas/health/record-store';
import { rawKeyFor } from '../../../lambdas/health/source';
import { SAMPLES_DIR } from '../../fixtures/health/generator';
import { NOW } from './helpers';

const HOSTILE_DIR = join(SAMPLES_DIR, '..', 'hostile');

/** Every number written in a text (thousands separators dropped), as numbers. */
function numbersIn(text: string): number[] {
  return (text.match(/\d[\d,]*(?:\.\d+)?/g) ?? []).map((x) => Number(x.replace(/,/g, '')));
}

async function examplesOf(dir: string): Promise<{ file: string; input: string; output: string }[]> {
  const store = new MemoryRecordStore();
  const out: { file: string; input: string; output: string }[] = [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.avro'))
    .sort((a, b) => Number(a.replace(/\D+/g, '')) - Number(b.replace(/\D+/g, '')));
  for (const file of files) {
    const r = await processExport({
      bytes: readFileSync(join(dir, file)),
      source: { bucket: 'b', key: rawKeyFor(file.replace(/^[a-z0-9-]+__/, '')), etag: file },
      store,
      now: new Date(NOW),
    });
    if (r.status !== 'processed') continue;
    await store.completeIngest(r.sourceId);
    out.push({ file, input: r.trainingExample.input, output: r.trainingExample.output });
  }
  return out;
}

describe('training examples are grounded (issue 15, point 5)', () => {
  it('every number in every output of the 26 samples appears in its input', async () => {
    const examples = await examplesOf(SAMPLES_DIR);
    expect(examples.length).toBeGreaterThanOrEqual(20);
    for (const e of examples) {
      const given = new Set(numbersIn(e.input));
      const missing = numbersIn(e.output).filter((n) => !given.has(n));
      expect({ file: e.file, missing }).toEqual({ file: e.file, missing: [] });
    }
  });

  it('so do the processed files of the hostile corpus (partial days, excluded values, conflicts)', async () => {
    const examples = await examplesOf(HOSTILE_DIR);
    expect(examples.length).toBeGreaterThan(0);
    for (const e of examples) {
      const given = new Set(numbersIn(e.input));
      const missing = numbersIn(e.output).filter((n) => !given.has(n));
      expect({ file: e.file, missing }).toEqual({ file: e.file, missing: [] });
    }
  });

  it('the input states the computed facts and the reference values, not only the raw data', async () => {
    const [glucose] = (await examplesOf(SAMPLES_DIR)).filter((e) => e.file.startsWith('BloodGlucose'));
    expect(glucose?.input).toContain('Computed facts:');
    expect(glucose?.input).toContain('Reference values: target range 70-180 mg/dL');
    expect(glucose?.input).toMatch(/mean\w*: 111\.5/i);
  });
});
