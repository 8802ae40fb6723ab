/**
 * The health ETL's output protocol, owned by the domain: decide (processExport), write what was
 * decided through an OutputSink, and only then mark the object complete, so a crash between the two
 * reproduces the same outputs on the retry instead of losing them. The Lambda handler writes to S3,
 * the CLI to a directory; both call this.
 */
import { type ProcessExportInput, type ProcessExportResult, processExport } from './pipeline';
import type { QuarantinePlan } from './quarantine';
import type { SourceIdentity } from './source';
import { TRAINING_MANIFEST_KEY, type TrainingSetCounts, trainingManifest } from './training';

/** Where the ETL's outputs go. Every write must be repeatable: a retry writes the same bytes again. */
export interface OutputSink {
  /** The training JSONL of a processed export at `key` (the source's bucket or directory). */
  writeTraining(source: SourceIdentity, key: string, body: string): Promise<void>;
  /** The training manifest snapshot at `key`: REPLACES what is there (unlike the immutable examples). */
  writeManifest(source: SourceIdentity, key: string, body: string): Promise<void>;
  /** A copy of the source export at `plan.key` and its sidecar at `plan.sidecarKey`. */
  quarantine(source: SourceIdentity, plan: QuarantinePlan): Promise<void>;
}

/** What the training manifest says after a processed export (summary, metrics). */
export interface TrainingSetState extends TrainingSetCounts {
  /** The key of the example this export's example nearly duplicates (then it is suppressed), or null. */
  readonly nearDuplicateOf: string | null;
}

export type IngestResult = ProcessExportResult & { readonly trainingSet?: TrainingSetState };

export async function ingestExport(input: ProcessExportInput, sink: OutputSink): Promise<IngestResult> {
  const result = await processExport(input);
  if (result.status === 'processed') {
    await sink.writeTraining(input.source, result.trainingKey, result.trainingBody);
    await input.store.completeIngest(result.sourceId);
    // A snapshot of what is current, rewritten after every example; the record store's table is
    // the source of truth, so a snapshot written late by a slower worker is corrected by the next.
    const manifest = trainingManifest(await input.store.trainingManifest(), input.now);
    await sink.writeManifest(input.source, TRAINING_MANIFEST_KEY, manifest.body);
    const own = manifest.curated.find((s) => s.current.sourceId === result.sourceId);
    return {
      ...result,
      trainingSet: { ...manifest.counts, nearDuplicateOf: own?.nearDuplicateOf?.trainingKey ?? null },
    };
  } else if (result.status === 'quarantined') {
    await sink.quarantine(input.source, result.quarantine);
  }
  return result;
}
