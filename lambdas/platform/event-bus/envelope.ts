import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ALERT_CHANNELS, type Channel, isChannel, serviceOfChannel } from './channels';
import { InvalidEnvelopeError, UnknownChannelError } from './errors';

export const SeveritySchema = z.enum(['low', 'medium', 'high', 'critical']);
export type Severity = z.infer<typeof SeveritySchema>;

/**
 * The message every channel carries. Unknown top-level keys are tolerated (stripped) so an app
 * running an older schema keeps reading messages from a newer producer.
 */
export const EnvelopeSchema = z.object({
  /** Unique per logical message; kept across producer retries so consumers can drop duplicates. */
  message_id: z.uuid(),
  /** ISO-8601 in UTC with a trailing Z (no offsets: consumers compare these as strings). */
  timestamp: z.iso.datetime(),
  service: z.string().min(1),
  event_type: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
  severity: SeveritySchema.optional(),
});

export type Envelope = z.infer<typeof EnvelopeSchema>;

export interface EnvelopeInput {
  readonly service: string;
  readonly event_type: string;
  readonly data: Record<string, unknown>;
  readonly severity?: Severity;
  /** Pass the id of a previous attempt when retrying, so the retry is recognisably the same message. */
  readonly message_id?: string;
  readonly timestamp?: Date | string;
}

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}

/** Validates a message for a channel; alert channels require a severity. */
export function parseEnvelope(channel: string, value: unknown): Envelope {
  if (!isChannel(channel)) throw new UnknownChannelError(channel);
  const parsed = EnvelopeSchema.safeParse(value);
  if (!parsed.success)
    throw new InvalidEnvelopeError(`invalid envelope for ${channel}`, issuesOf(parsed.error));
  if (ALERT_CHANNELS.has(channel) && parsed.data.severity === undefined) {
    throw new InvalidEnvelopeError(`invalid envelope for ${channel}`, [
      'severity: required on alert channels',
    ]);
  }
  return parsed.data;
}

/** Parses the JSON text found on a channel or in a stream entry. */
export function decodeEnvelope(channel: string, text: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidEnvelopeError(`invalid envelope for ${channel}`, [
      `not JSON: ${(error as Error).message}`,
    ]);
  }
  return parseEnvelope(channel, value);
}

/** Builds a channel's envelope; a seed channel's `service` is its own (CHANNEL_SERVICE), whoever publishes. */
export function buildEnvelope(channel: Channel, input: EnvelopeInput): Envelope {
  const timestamp =
    input.timestamp === undefined
      ? new Date().toISOString()
      : input.timestamp instanceof Date
        ? input.timestamp.toISOString()
        : input.timestamp;
  return parseEnvelope(channel, {
    message_id: input.message_id ?? randomUUID(),
    timestamp,
    service: serviceOfChannel(channel) ?? input.service,
    event_type: input.event_type,
    data: input.data,
    ...(input.severity === undefined ? {} : { severity: input.severity }),
  });
}
