/**
 * One processor per record type, behind one physiological-range gate.
 *
 * The gate is the rule "out-of-range values never enter clinical statistics": a glucose reading of
 * 9999 mg/dL, a 300 bpm sample or a 30 h sleep session is counted and named, then left out of every
 * mean, band, total and trend. It lives here, once, so no processor can forget it. The validator
 * quarantines files where such values are the majority (validate.ts); this handles the minority.
 */
import type { HealthRecord, HeartRateRecord, RecordType } from '../types';
import { inPhysiologicalRange, RANGES, singleValue } from '../validate';
import { createActiveCaloriesProcessor } from './active-calories';
import { DEFAULT_PROCESSOR_CONFIG, type Processor, type ProcessorConfig } from './common';
import { createGlucoseProcessor } from './glucose';
import { createHeartRateProcessor } from './heart-rate';
import { createHrvProcessor } from './hrv';
import { createSleepProcessor } from './sleep';
import { createStepsProcessor } from './steps';

export {
  DEFAULT_PROCESSOR_CONFIG,
  PROCESSOR_VERSION,
  type ProcessorConfig,
  type ProcessorContext,
  type ProcessorResult,
} from './common';

export function createProcessor(
  recordType: RecordType,
  config: ProcessorConfig = DEFAULT_PROCESSOR_CONFIG,
): Processor<HealthRecord> {
  return withPhysiologicalRange(recordType, createUngatedProcessor(recordType, config));
}

/** The record with only its in-range values, or null when none is left; counts what it drops. */
// No closure is created per record: this runs once per record of every export (a million for the
// largest), and a closure per call is an allocation (and, under tsx, a defineProperty) each time.
function gate(recordType: RecordType, record: HealthRecord, drop: (n: number) => void): HealthRecord | null {
  if (recordType !== 'HeartRateRecord') {
    const v = singleValue(recordType, record);
    if (inPhysiologicalRange(recordType, v)) return record;
    drop(1);
    return null;
  }
  // A heart-rate record: each sample is a value; the out-of-range ones are dropped.
  const h = record as HeartRateRecord;
  let bad = 0;
  for (const x of h.samples) if (!inPhysiologicalRange(recordType, x.beatsPerMinute)) bad++;
  if (bad === 0) return record;
  drop(bad);
  if (bad === h.samples.length) return null;
  return { ...h, samples: h.samples.filter((x) => inPhysiologicalRange(recordType, x.beatsPerMinute)) };
}

function withPhysiologicalRange(
  recordType: RecordType,
  inner: Processor<HealthRecord>,
): Processor<HealthRecord> {
  let excluded = 0;
  const drop = (n: number) => {
    excluded += n;
  };
  return {
    add(record) {
      const kept = gate(recordType, record, drop);
      if (kept) inner.add(kept);
    },
    finish(context) {
      const result = inner.finish(context);
      if (excluded === 0) return result;
      const r = RANGES[recordType];
      const note = `${excluded.toLocaleString('en-US')} ${r.what} value${excluded === 1 ? '' : 's'} outside the physiological range ${r.min}-${r.max} ${r.unit} ${excluded === 1 ? 'was' : 'were'} left out of every figure below.`;
      return {
        ...result,
        insights: {
          ...result.insights,
          excludedOutOfRange: { values: excluded, range: `${r.min}-${r.max} ${r.unit}` },
        },
        narrative: `${note}\n\n${result.narrative}`,
        input: `${note}\n${result.input}`,
      };
    },
  };
}

function createUngatedProcessor(recordType: RecordType, config: ProcessorConfig): Processor<HealthRecord> {
  switch (recordType) {
    case 'BloodGlucoseRecord':
      return createGlucoseProcessor() as Processor<HealthRecord>;
    case 'HeartRateRecord':
      return createHeartRateProcessor(config) as Processor<HealthRecord>;
    case 'HeartRateVariabilityRmssdRecord':
      return createHrvProcessor() as Processor<HealthRecord>;
    case 'SleepSessionRecord':
      return createSleepProcessor() as Processor<HealthRecord>;
    case 'StepsRecord':
      return createStepsProcessor(config) as Processor<HealthRecord>;
    case 'ActiveCaloriesBurnedRecord':
      return createActiveCaloriesProcessor(config) as Processor<HealthRecord>;
  }
}
