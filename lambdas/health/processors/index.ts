/** One processor per record type. */
import type { HealthRecord, RecordType } from '../types';
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
  type ProcessorResult,
} from './common';

export function createProcessor(
  recordType: RecordType,
  config: ProcessorConfig = DEFAULT_PROCESSOR_CONFIG,
): Processor<HealthRecord> {
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
