import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { tracer } from './powertools';

/**
 * Attempts per AWS call. The SDK's default (3 attempts, ~0.3 s of back-off) gives up during a
 * brief endpoint outage (a LocalStack restart, a throttling burst); 6 attempts of the standard
 * jittered back-off ride out a few seconds, and the unit's own retry (faults.ts) covers the rest
 * before the error reaches the queue.
 */
export const AWS_MAX_ATTEMPTS = 6;

// SDK clients read region, credentials and AWS_ENDPOINT_URL (LocalStack) from the environment.
// LocalStack's S3 needs path-style addressing: bucket names are not resolvable host names there.
// Traced with X-Ray through Powertools (a no-op where tracing is off, as on the local stage).
export const s3 = tracer.captureAWSv3Client(
  new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL), maxAttempts: AWS_MAX_ATTEMPTS }),
);
export const sqs = tracer.captureAWSv3Client(new SQSClient({ maxAttempts: AWS_MAX_ATTEMPTS }));
