/**
 * Typed per-environment configuration. Read once in bin/app.ts and passed down as props: constructs
 * never read process.env.
 */
export const STAGE_NAMES = ['dev', 'staging', 'prod', 'local'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface StageConfig {
  readonly name: StageName;
  readonly network: {
    readonly maxAzs: number;
    /** NAT gateways serve only the subnets of functions that call the market-data provider. */
    readonly natGateways: number;
  };
  readonly database: {
    readonly instanceType: string;
    readonly allocatedStorageGb: number;
    readonly multiAz: boolean;
    readonly deletionProtection: boolean;
    readonly backupRetentionDays: number;
    readonly databaseName: string;
  };
  /** The event streams and everything else in Redis; see the README's "Durability for offline consumers". */
  readonly redis: {
    readonly nodeType: string;
    /** Primary plus replicas; >= 2 enables automatic failover and Multi-AZ. */
    readonly nodes: number;
    /** Days of daily snapshots kept (0 to 35; HIPAA asks for 15). */
    readonly snapshotRetentionDays: number;
    /** UTC window of the daily snapshot: after the EOD chain (21:30 UTC), before pre-market. */
    readonly snapshotWindow: string;
    /** How long an app may stay offline and still catch up from the streams alone. */
    readonly streamRetentionHours: number;
    /** Peak messages per hour on the busiest job channel (backfill.progress during a first load). */
    readonly streamPeakMessagesPerHour: number;
  };
  readonly data: {
    /** Days a quarantined export is kept before it expires. */
    readonly quarantineExpirationDays: number;
    readonly noncurrentVersionExpirationDays: number;
  };
  /** Retain stateful resources on stack deletion (prod) or destroy them (dev). */
  readonly retainData: boolean;
  readonly logRetentionDays: number;
  readonly alarmEmail?: string;
  readonly marketData: {
    /** Polygon.io, rebranded Massive: same API. */
    readonly baseUrl: string;
    /** The plan's limit for the whole account (free tier: 5 calls/min). */
    readonly callsPerMinute: number;
    /** The stocks WebSocket the real-time router holds (one connection per account). */
    readonly realtimeUrl: string;
  };
  /** The trading live engine (issue 14): the broker it trades with and how often it reconciles. */
  readonly trading: {
    /** The broker's REST base (Alpaca v2 shapes); its trade-updates stream is `<base>/stream`. */
    readonly brokerUrl: string;
    /** Minutes between scheduled reconciliations (EventBridge Scheduler -> TradingReconcile). */
    readonly reconcileEveryMinutes: number;
  };
  readonly schedules: {
    /** Weekday EOD start, in the exchange's time zone (NYSE closes 16:00; bars settle after). */
    readonly eodHour: number;
    readonly eodMinute: number;
    readonly timezone: string;
  };
  /**
   * Set only for a stage deployed onto a local emulator (the deploy rehearsal); every stage deployed
   * to AWS leaves it unset.
   */
  readonly emulator?: EmulatorConfig;
}

/**
 * The deploy rehearsal's stage: the real app on MiniStack, minus what an emulator cannot host
 * (EMULATOR_OMISSIONS), which the machine's PostgreSQL and Redis replace.
 */
export interface EmulatorConfig {
  /** The machine's PostgreSQL; the credentials go into the emulator's Secrets Manager. */
  readonly database: {
    readonly host: string;
    readonly port: number;
    readonly username: string;
    /** Local PostgreSQL trusts loopback connections; a value is still needed (empty secrets fail). */
    readonly password: string;
  };
  /** The machine's Redis: no AUTH token, no TLS. */
  readonly redis: { readonly host: string; readonly port: number };
  /** Stream keys of the event bus, apart from every other stage on the machine's Redis. */
  readonly eventBusNamespace: string;
  /**
   * The EOD schedule as a rate: emulators ignore a cron's time zone, and a rate fires first one
   * interval after the deploy (never during a rehearsal, which starts its run itself).
   */
  readonly eodEveryMinutes: number;
  /** Scheduled jobs (lib/topology/jobs.ts) fire this often, so a rehearsal sees one fire. */
  readonly scheduledJobsEveryMinutes: number;
}

/** What the emulator stage leaves out of the data stack (construct ids), and why. */
export const EMULATOR_OMISSIONS: Readonly<Record<string, string>> = {
  Network:
    'VPC, subnets, NAT gateway, flow logs, VPC endpoints and security groups: MiniStack cannot create EIPs, NAT gateways, flow logs or security-group rules, and runs functions as local processes outside any VPC',
  Database:
    "RDS PostgreSQL, RDS Proxy and the rotation application: without Docker MiniStack's RDS is metadata only, it cannot create DB proxies, and the rotation comes from the Serverless Application Repository; the machine's PostgreSQL stands in, its credentials in the emulator's Secrets Manager",
  Cache:
    "ElastiCache Redis and its AUTH token: without Docker MiniStack's ElastiCache is metadata only; the machine's Redis stands in",
};

/**
 * What the emulator stage leaves out of the compute stack (construct ids), and why. On the local
 * stage the same process runs with `npm run pipeline -- router up`.
 */
export const EMULATOR_COMPUTE_OMISSIONS: Readonly<Record<string, string>> = {
  RealtimeRouter:
    'ECS Fargate service of the real-time router (cluster, task, image asset, security group, alarms): MiniStack runs no containers for ECS and has no VPC; locally the same process runs with `router up`',
  TradingEngine:
    'ECS Fargate service of the trading live engine (cluster, task, image asset, security group, alarms): MiniStack runs no containers for ECS and has no VPC; locally the same process runs from lambdas/trading-live/main.ts against the broker simulator',
};

/**
 * Single resources the emulator stage leaves out of constructs it keeps (a fragment of their logical
 * ids), and why.
 */
export const EMULATOR_RESOURCE_OMISSIONS: Readonly<Record<string, string>> = {
  QuarantineRateAlarm:
    "the health ETL's quarantine-rate alarm is metric math over two EMF metrics, which MiniStack's CloudFormation refuses; the health ETL's other alarms stay",
};

/** What the emulator stage adds to the data stack in their place (construct ids), and why. */
export const EMULATOR_REPLACEMENTS: Readonly<Record<string, string>> = {
  LocalDatabaseCredentials:
    "the machine's PostgreSQL host, port, database and user as an RDS-style secret, read by the functions exactly as they read the RDS secret",
};

const base = {
  network: { maxAzs: 2, natGateways: 1 },
  database: {
    instanceType: 't4g.micro',
    allocatedStorageGb: 20,
    multiAz: false,
    deletionProtection: false,
    backupRetentionDays: 1,
    databaseName: 'tickstock',
  },
  redis: {
    nodeType: 'cache.t4g.micro',
    nodes: 1,
    snapshotRetentionDays: 15,
    snapshotWindow: '06:00-07:00',
    streamRetentionHours: 24,
    streamPeakMessagesPerHour: 2_000,
  },
  data: { quarantineExpirationDays: 30, noncurrentVersionExpirationDays: 30 },
  retainData: false,
  logRetentionDays: 14,
  marketData: {
    baseUrl: 'https://api.polygon.io',
    callsPerMinute: 5,
    realtimeUrl: 'wss://socket.massive.com/stocks',
  },
  // Paper trading until an operator points a stage at the live endpoint (and puts live keys).
  trading: { brokerUrl: 'https://paper-api.alpaca.markets', reconcileEveryMinutes: 15 },
  schedules: { eodHour: 16, eodMinute: 30, timezone: 'America/New_York' },
} satisfies Omit<StageConfig, 'name'>;

export const STAGES: Record<StageName, StageConfig> = {
  local: {
    ...base,
    name: 'local',
    database: { ...base.database, databaseName: 'tickstock_rehearsal' },
    // The local market API (localstack/market-api) serving a scenario market.
    marketData: {
      baseUrl: 'http://127.0.0.1:4580',
      callsPerMinute: 60_000,
      // The local feed (localstack/feed, `router up`); the local stage deploys no router service.
      realtimeUrl: 'ws://127.0.0.1:4581/stocks',
    },
    // The broker simulator (localstack/broker, `stage up`).
    trading: { ...base.trading, brokerUrl: 'http://127.0.0.1:4592' },
    logRetentionDays: 1,
    emulator: {
      database: { host: '127.0.0.1', port: 5432, username: 'postgres', password: 'local-trust' },
      redis: { host: '127.0.0.1', port: 6379 },
      eventBusNamespace: 'tickstock_rehearsal',
      eodEveryMinutes: 24 * 60,
      scheduledJobsEveryMinutes: 1,
    },
  },
  dev: { ...base, name: 'dev' },
  staging: {
    ...base,
    name: 'staging',
    database: { ...base.database, instanceType: 't4g.small', backupRetentionDays: 7 },
    // A replica in another AZ with automatic failover, as in prod: failover is rehearsed here.
    redis: { ...base.redis, nodeType: 'cache.t4g.small', nodes: 2 },
    logRetentionDays: 30,
  },
  prod: {
    ...base,
    name: 'prod',
    network: { maxAzs: 3, natGateways: 2 },
    database: {
      ...base.database,
      instanceType: 'm7g.large',
      allocatedStorageGb: 100,
      multiAz: true,
      deletionProtection: true,
      backupRetentionDays: 30,
    },
    // Primary and two replicas over three AZs: a failover still leaves a replica.
    redis: {
      ...base.redis,
      nodeType: 'cache.m7g.large',
      nodes: 3,
      snapshotRetentionDays: 35,
      streamRetentionHours: 72,
      streamPeakMessagesPerHour: 5_000,
    },
    data: { quarantineExpirationDays: 90, noncurrentVersionExpirationDays: 90 },
    retainData: true,
    logRetentionDays: 365,
  },
};

/**
 * The length cap of each event stream (XADD MAXLEN ~): the stated retention window at the busiest
 * job channel's peak rate, so an app offline for up to `streamRetentionHours` misses nothing; one
 * away longer gets a gap notice (lambdas/platform/event-bus/gaps.ts) and resynchronises.
 */
export function streamMaxLen(redis: StageConfig['redis']): number {
  return Math.ceil(redis.streamRetentionHours * redis.streamPeakMessagesPerHour);
}

export function stageConfig(name: string | undefined): StageConfig {
  const stage = name ?? 'dev';
  if (!(STAGE_NAMES as readonly string[]).includes(stage)) {
    throw new Error(`unknown stage "${stage}": choose one of ${STAGE_NAMES.join(', ')} (-c stage=<name>)`);
  }
  return STAGES[stage as StageName];
}
