import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ProviderConfigError } from './errors';

const fromSecrets = new Map<string, Promise<string>>();
let secretsClient: SecretsManagerClient | undefined;

/**
 * The provider API key: from Secrets Manager when POLYGON_API_KEY_SECRET_ARN is set (AWS; fetched
 * once per container and cached), else from POLYGON_API_KEY (local stage). The secret may hold the
 * bare key or JSON with an `apiKey` field.
 */
export async function resolveApiKey(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const arn = env.POLYGON_API_KEY_SECRET_ARN;
  if (arn) {
    let pending = fromSecrets.get(arn);
    if (!pending) {
      pending = fetchSecret(arn);
      fromSecrets.set(arn, pending);
      // A failed fetch is not cached: the next invocation tries again.
      pending.catch(() => fromSecrets.delete(arn));
    }
    return pending;
  }
  const key = env.POLYGON_API_KEY;
  if (!key) throw new ProviderConfigError('set POLYGON_API_KEY (local) or POLYGON_API_KEY_SECRET_ARN (AWS)');
  return key;
}

async function fetchSecret(arn: string): Promise<string> {
  secretsClient ??= new SecretsManagerClient({});
  const out = await secretsClient.send(new GetSecretValueCommand({ SecretId: arn }));
  const text = out.SecretString?.trim();
  if (!text) throw new ProviderConfigError(`secret ${arn} has no string value`);
  if (!text.startsWith('{')) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ProviderConfigError(`secret ${arn} is neither a bare key nor JSON`);
  }
  const key = (parsed as { apiKey?: unknown }).apiKey;
  if (typeof key !== 'string' || key.length === 0)
    throw new ProviderConfigError(`secret ${arn} has no apiKey field`);
  return key;
}
