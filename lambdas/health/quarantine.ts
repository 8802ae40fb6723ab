/**
 * Quarantine: a terminal, recorded outcome. The raw object is copied to the same key under
 * `quarantine/` (instead of `raw/`) with a `<key>.metadata.json` sidecar saying why. Pure: the
 * caller does the copy and the put.
 */
import type { SourceIdentity } from './source';
import type { CheckScores, ValidationCounts } from './validate';

export type { SourceIdentity } from './source';

/** `raw/<Type>/YYYY/MM/DD/<file>` -> `quarantine/<Type>/YYYY/MM/DD/<file>`; other keys are prefixed. */
export function quarantineKey(key: string): string {
  const clean = key.replace(/^\/+/, '');
  if (clean.startsWith('raw/')) return `quarantine/${clean.slice(4)}`;
  if (clean.startsWith('quarantine/')) return clean;
  return `quarantine/${clean}`;
}

export function sidecarKey(quarantinedKey: string): string {
  return `${quarantinedKey}.metadata.json`;
}

export interface QuarantineSidecar {
  readonly originalKey: string;
  readonly quarantineKey: string;
  readonly source: SourceIdentity;
  readonly recordType: string | null;
  /** Blocking reasons, each starting with a machine-readable code (`no_records: ...`). */
  readonly reasons: string[];
  /** Name of the error when the file could not be read at all (AvroFormatError, ...). */
  readonly error: { readonly name: string; readonly message: string } | null;
  readonly qualityScore: number | null;
  readonly threshold: number;
  readonly checks: CheckScores | null;
  readonly counts: ValidationCounts | null;
  readonly warnings: string[];
  readonly recordsRead: number;
  readonly quarantinedAt: string;
  readonly processorVersion: string;
}

export interface QuarantinePlan {
  readonly key: string;
  readonly sidecarKey: string;
  readonly sidecar: QuarantineSidecar;
  /** The sidecar as written (pretty JSON + newline). */
  readonly sidecarBody: string;
}

export interface QuarantineInput {
  readonly source: SourceIdentity;
  readonly recordType: string | null;
  readonly reasons: string[];
  readonly error?: { name: string; message: string } | null;
  readonly qualityScore?: number | null;
  readonly threshold: number;
  readonly checks?: CheckScores | null;
  readonly counts?: ValidationCounts | null;
  readonly warnings?: string[];
  readonly recordsRead: number;
  readonly now: Date;
  readonly processorVersion: string;
}

export function planQuarantine(input: QuarantineInput): QuarantinePlan {
  const key = quarantineKey(input.source.key);
  const sidecar: QuarantineSidecar = {
    originalKey: input.source.key,
    quarantineKey: key,
    source: input.source,
    recordType: input.recordType,
    reasons: input.reasons,
    error: input.error ?? null,
    qualityScore: input.qualityScore ?? null,
    threshold: input.threshold,
    checks: input.checks ?? null,
    counts: input.counts ?? null,
    warnings: input.warnings ?? [],
    recordsRead: input.recordsRead,
    quarantinedAt: input.now.toISOString(),
    processorVersion: input.processorVersion,
  };
  return { key, sidecarKey: sidecarKey(key), sidecar, sidecarBody: `${JSON.stringify(sidecar, null, 2)}\n` };
}
