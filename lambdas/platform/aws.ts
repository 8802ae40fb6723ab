import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

// SDK clients read region, credentials and AWS_ENDPOINT_URL (LocalStack) from the environment.
// LocalStack's S3 needs path-style addressing: bucket names are not resolvable host names there.
export const s3 = new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) });
export const sqs = new SQSClient({});
