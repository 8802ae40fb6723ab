import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { tracer } from './powertools';

// SDK clients read region, credentials and AWS_ENDPOINT_URL (LocalStack) from the environment.
// LocalStack's S3 needs path-style addressing: bucket names are not resolvable host names there.
// Traced with X-Ray through Powertools (a no-op where tracing is off, as on the local stage).
export const s3 = tracer.captureAWSv3Client(
  new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) }),
);
export const sqs = tracer.captureAWSv3Client(new SQSClient({}));
