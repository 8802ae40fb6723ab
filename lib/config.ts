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
  readonly redis: {
    readonly nodeType: string;
    /** Primary plus replicas; >= 2 enables automatic failover and Multi-AZ. */
    readonly nodes: number;
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
  };
  readonly schedules: {
    /** Weekday EOD start, in the exchange's time zone (NYSE closes 16:00; bars settle after). */
    readonly eodHour: number;
    readonly eodMinute: number;
    readonly timezone: string;
  };
}

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
  redis: { nodeType: 'cache.t4g.micro', nodes: 1 },
  data: { quarantineExpirationDays: 30, noncurrentVersionExpirationDays: 30 },
  retainData: false,
  logRetentionDays: 14,
  marketData: { baseUrl: 'https://api.polygon.io', callsPerMinute: 5 },
  schedules: { eodHour: 16, eodMinute: 30, timezone: 'America/New_York' },
} satisfies Omit<StageConfig, 'name'>;

export const STAGES: Record<StageName, StageConfig> = {
  local: { ...base, name: 'local' },
  dev: { ...base, name: 'dev' },
  staging: {
    ...base,
    name: 'staging',
    database: { ...base.database, instanceType: 't4g.small', backupRetentionDays: 7 },
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
    redis: { nodeType: 'cache.m7g.large', nodes: 2 },
    data: { quarantineExpirationDays: 90, noncurrentVersionExpirationDays: 90 },
    retainData: true,
    logRetentionDays: 365,
  },
};

export function stageConfig(name: string | undefined): StageConfig {
  const stage = name ?? 'dev';
  if (!(STAGE_NAMES as readonly string[]).includes(stage)) {
    throw new Error(`unknown stage "${stage}": choose one of ${STAGE_NAMES.join(', ')} (-c stage=<name>)`);
  }
  return STAGES[stage as StageName];
}
