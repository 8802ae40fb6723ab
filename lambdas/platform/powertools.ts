import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

// One shared set-up for every handler. The service name comes from POWERTOOLS_SERVICE_NAME (set per
// function by the CDK app); log level from LOG_LEVEL. Nothing here may log health values: handlers
// log identifiers, counts and outcomes only.
export const logger = new Logger({ logLevel: (process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO' });
export const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Tickstock' });
export const tracer = new Tracer();
