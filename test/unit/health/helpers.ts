import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeExport } from '../../../lambdas/health/decode';
import type { HealthRecord, RecordOf, RecordType } from '../../../lambdas/health/types';
import { BAD_DIR, SAMPLES_DIR } from '../../fixtures/health/generator';

/** Sample file names in replay order (fetch time in the name). */
export function sampleFiles(prefix?: RecordType): string[] {
  return readdirSync(SAMPLES_DIR)
    .filter((f) => !prefix || f.startsWith(`${prefix}_`))
    .sort((a, b) => Number(a.replace(/\D+/g, '')) - Number(b.replace(/\D+/g, '')));
}

export async function loadSample<T extends RecordType>(file: string): Promise<RecordOf[T][]> {
  const { records } = await decodeExport<RecordOf[T]>(readFileSync(join(SAMPLES_DIR, file)));
  return records;
}

export async function loadBad(file: string): Promise<HealthRecord[]> {
  return (await decodeExport(readFileSync(join(BAD_DIR, file)))).records;
}

/** Processing time used across the health tests (after every fixture's fetch time). */
export const NOW = Date.UTC(2025, 10, 10, 12, 0, 0);
