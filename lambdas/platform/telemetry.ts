import type { Context } from 'aws-lambda';
import { logger, metrics, tracer } from './powertools';

/**
 * The one telemetry wrapper every handler is exported through: the Lambda context on every log line,
 * a traced subsegment with the cold start and service annotations (the error attached when the
 * handler throws), and the invocation's metrics flushed once at the end whether it succeeded or not.
 * Handlers only add metrics and log; they never flush or reset.
 */
export function withTelemetry<E, R>(
  name: string,
  handler: (event: E, context: Context) => Promise<R>,
): (event: E, context: Context) => Promise<R> {
  return async (event, context) => {
    logger.addContext(context);
    const segment = tracer.getSegment();
    const subsegment = segment?.addNewSubsegment(`## ${name}`);
    if (subsegment) tracer.setSegment(subsegment);
    tracer.annotateColdStart();
    tracer.addServiceNameAnnotation();
    try {
      return await handler(event, context);
    } catch (error) {
      tracer.addErrorAsMetadata(error as Error);
      throw error;
    } finally {
      subsegment?.close();
      if (segment) tracer.setSegment(segment);
      // An invocation that recorded nothing (a skipped day, an S3 test event) publishes nothing:
      // flushing an empty set only logs a warning.
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      logger.resetKeys();
    }
  };
}
