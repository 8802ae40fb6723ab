import type { ConsumerDefinition } from '../topology';

/** Consumers of the market-data jobs (see lib/topology.ts for what each field drives). */
export const MARKET_CONSUMERS: readonly ConsumerDefinition[] = [];
