/**
 * What an AWS SDK (S3, KMS) error means for the object it was about, by the service's error names
 * and the HTTP status, so domain code can decide without knowing AWS's vocabulary.
 */

const MISSING_NAMES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchVersion']);
const ACCESS_NAMES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'Forbidden',
  'InvalidAccessKeyId',
  'KMS.AccessDeniedException',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/**
 * - missing: the object (or bucket, or version) does not exist, e.g. deleted before it was read;
 * - access: access denied or misconfigured credentials: a retry cannot fix it;
 * - other: anything else (network, throttling, a dependency down, a bug).
 */
export function storageErrorKind(error: unknown): 'missing' | 'access' | 'other' {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : '';
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  if (MISSING_NAMES.has(name) || MISSING_NAMES.has(code)) return 'missing';
  if (ACCESS_NAMES.has(name) || ACCESS_NAMES.has(code) || status === 403) return 'access';
  if (status === 404) return 'missing';
  return 'other';
}
