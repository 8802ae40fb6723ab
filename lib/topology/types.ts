/**
 * The shapes of the topology entries: types only, so the topology lists (lib/topology/*.ts) and
 * lib/topology.ts can all import them without importing each other.
 */

/** What every function of the pipeline declares, whatever invokes it. */
export interface FunctionDefinition {
  /** Construct id; for consumers also the base of local queue names and of `QUEUE_URL_<ID>`. */
  readonly id: string;
  /** Handler module, relative to the repository root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  /** 1 to 900 seconds (Lambda's limit). */
  readonly timeoutSeconds: number;
  /** 128 to 10240 MB (Lambda's limits). */
  readonly memoryMb: number;
  /**
   * Calls the market-data provider: NAT subnets, the provider's key and its share of the rate limit.
   * @default false
   */
  readonly needsInternet?: boolean;
  /**
   * Calls the trading broker: NAT subnets, BROKER_BASE_URL and the broker credentials' secret.
   * @default false
   */
  readonly needsBroker?: boolean;
  /**
   * Consumers (ids in lib/topology.ts) whose queues the function sends to directly; it gets their
   * `QUEUE_URL_<ID>` variables and SendMessage on them.
   * @default none
   */
  readonly sendsTo?: readonly string[];
  /**
   * Runs the outbox relay (`relayOutbox`), which drains every pending message, whoever enqueued it:
   * the function gets every queue the outbox addresses (`OUTBOX_QUEUES` in lib/topology.ts).
   * @default false
   */
  readonly relaysOutbox?: boolean;
}

/**
 * An SQS-driven consumer. Read by the CDK compute stack (queue + DLQ + function + event source
 * mapping), by the local stage bootstrap (the same queues, redrive policies and S3 notifications in
 * LocalStack) and by the local runner (the same batch settings and handler modules).
 */
export interface ConsumerDefinition extends FunctionDefinition {
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Upper bound of concurrent batches (SQS event source maximum concurrency, >= 2). */
  readonly maxConcurrency: number;
  /** Alarm when the oldest message waits longer than this. */
  readonly maxMessageAgeSeconds: number;
  /**
   * Objects created under this prefix of the data bucket are announced on this queue.
   * @default no notification
   */
  readonly s3Prefix?: string;
  /**
   * The database role the consumer connects as (schemas/sql/0090_roles.sql).
   * @default 'health' for the health consumers, else 'market'
   */
  readonly databaseComponent?: 'app' | 'market' | 'health' | 'trading' | 'router';
}

/** A job: a step of the EOD chain or a function on a schedule of its own; one run at a time. */
export interface JobDefinition extends FunctionDefinition {
  /**
   * EOD chain: a step nothing later depends on (it reports on the day); once its retries are spent
   * its failure is counted and alarmed and the chain continues.
   * @default false: a failure stops the chain
   */
  readonly observer?: boolean;
  /**
   * For jobs run on their own schedule (not in the EOD chain): the rate, in whole minutes.
   * @default none (required by a scheduled job)
   */
  readonly everyMinutes?: number;
}

/** An operations function invoked on demand or by the deploy (status, migrate). */
export interface OperationDefinition extends FunctionDefinition {
  /** Concurrent executions reserved (and allowed). */
  readonly reservedConcurrency: number;
  /**
   * Directories the handler reads at run time, copied next to the bundle.
   * @default none
   */
  readonly assetDirs?: readonly { readonly from: string; readonly to: string }[];
}
