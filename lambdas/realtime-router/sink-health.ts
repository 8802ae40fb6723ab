/** What `/health` shows of each of the router's sinks (Redis Streams, SQS bars, S3 frames). */
import { CircuitState } from 'cockatiel';

export interface SinkHealth {
  readonly breaker: 'closed' | 'open' | 'half_open' | 'isolated';
  readonly depth: number;
  readonly published: number;
  readonly failures: number;
  readonly dropped: number;
  /** Gap entries written to the stream for dropped messages (Redis sinks only). */
  readonly gaps?: number;
  /** Deepest the buffer has been since start (Redis sinks only). */
  readonly peakDepth?: number;
  /** Text buffered (UTF-16 code units of the lines, about bytes: ASCII), Redis sinks only. */
  readonly bytes?: number;
}

/** The breaker's state as `/health` names it. */
export const BREAKER_STATES: Readonly<Record<CircuitState, SinkHealth['breaker']>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};
