/**
 * Messages to the app: one module owns the channel names, the envelope, publishing (Redis Stream +
 * pub/sub, atomically) and the consumer-group reader. Every producer and every test imports from here.
 */
export {
  ALERT_CHANNELS,
  ALL_CHANNELS,
  ALL_CHANNELS_PATTERN,
  CHANNEL_NAME_PATTERN,
  CHANNEL_SERVICE,
  CHANNELS,
  type Channel,
  type ChannelKey,
  isChannel,
  SEED_SERVICES,
  type SeedService,
  serviceOfChannel,
} from './event-bus/channels';
export {
  type DeliveredEvent,
  StreamConsumer,
  type StreamConsumerOptions,
} from './event-bus/consumer';
export {
  buildEnvelope,
  decodeEnvelope,
  type Envelope,
  type EnvelopeInput,
  EnvelopeSchema,
  parseEnvelope,
  type Severity,
  SeveritySchema,
} from './event-bus/envelope';
export {
  EventBusError,
  EventBusUnavailableError,
  InvalidEnvelopeError,
  UnknownChannelError,
} from './event-bus/errors';
export { compareIds, type StreamGap, StreamGapError } from './event-bus/gaps';
export { channelOfStreamKey, DEFAULT_NAMESPACE, epochKey, streamKey } from './event-bus/keys';
export {
  DEFAULT_MAX_LEN,
  EventBus,
  type EventBusOptions,
  type Published,
  type PublishInput,
} from './event-bus/publisher';
export { StreamReplyError } from './event-bus/stream-reply';
export { type LiveMessage, subscribeLive } from './event-bus/subscriber';
export { channelsMatching, type StreamTailOptions, tailStreams } from './event-bus/tail';
