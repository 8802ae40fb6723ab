/** Base class so callers can catch every event-bus failure in one place. */
export class EventBusError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Redis did not confirm the write (offline, closed, connection lost mid-command, or a server error
 * such as LOADING/OOM). The message may or may not be stored: the caller retries with the same
 * message_id and consumers drop the duplicate.
 */
export class EventBusUnavailableError extends EventBusError {}

/** The message does not satisfy the envelope schema; retrying will not help. */
export class InvalidEnvelopeError extends EventBusError {
  constructor(
    message: string,
    readonly issues: readonly string[],
  ) {
    super(`${message}: ${issues.join('; ')}`);
  }
}

/** A channel name that is not in CHANNELS. */
export class UnknownChannelError extends EventBusError {
  constructor(readonly channel: string) {
    super(`unknown event channel: ${channel}`);
  }
}
