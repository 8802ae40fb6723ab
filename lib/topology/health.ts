import type { ConsumerDefinition } from '../topology';

/** Consumers of the health ETL (see lib/topology.ts for what each field drives). */
export const HEALTH_CONSUMERS: readonly ConsumerDefinition[] = [];
