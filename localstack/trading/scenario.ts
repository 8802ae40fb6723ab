/**
 * The `trading replay` scenario format (issue 13), validated with zod. Structure is strict (an unknown
 * or missing key is a problem, each named with its path); order values (side, qty, type...) are left
 * to the engine's risk checks, which deny what is invalid with INVALID_ORDER, as they would for a
 * live caller.
 */
import { z } from 'zod';

const positive = z.number().positive();
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const OFFSET = /^\+(\d+(\.\d+)?)s$/;

const limitsShape = {
  maxOrderNotional: positive.optional(),
  maxPositionQty: z.record(z.string(), z.number().nonnegative()).optional(),
  maxGrossExposure: positive.optional(),
  maxLeverage: positive.optional(),
  dailyLossLimit: positive.optional(),
  liquidationBuffer: positive.optional(),
  volatilityHalt: z
    .strictObject({ windowSeconds: positive, movePct: positive, pauseSeconds: positive })
    .optional(),
  maxOrdersPerSecond: positive.optional(),
  priceCollarPct: positive.optional(),
  correlationGroups: z
    .record(z.string(), z.strictObject({ symbols: z.array(z.string()).min(1), maxExposure: positive }))
    .optional(),
  restricted: z.array(z.string()).optional(),
  customBreakers: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        metric: z.enum([
          'grossExposure',
          'leverage',
          'openOrders',
          'dailyPnl',
          'drawdownPct',
          'brokerRejects',
        ]),
        above: z.number().optional(),
        below: z.number().optional(),
        action: z.enum(['reducing', 'halted']),
      }),
    )
    .optional(),
  restoration: z
    .strictObject({ steps: z.array(z.number().positive().max(1)).min(1), stepSeconds: positive })
    .optional(),
};
const limitsSchema = z.strictObject(limitsShape);

const submitSchema = z.strictObject({
  clientOrderId: z.string(),
  symbol: z.string(),
  side: z.string(),
  qty: z.number(),
  type: z.string(),
  limitPrice: z.number().optional(),
  tif: z.string(),
  sizing: z.enum(['fit', 'none']).optional(),
});

const ACTIONS = {
  prices: z.record(z.string(), positive),
  submit: submitSchema,
  portfolio: z.array(submitSchema).min(1),
  cancel: z.string().min(1),
  modify: z.strictObject({
    clientOrderId: z.string().min(1),
    qty: z.number().optional(),
    limitPrice: z.number().optional(),
  }),
  fill: z.strictObject({ clientOrderId: z.string().min(1), qty: positive, price: positive }),
  brokerReject: z.strictObject({ clientOrderId: z.string().min(1), reason: z.string() }),
  market: z.union([
    z.strictObject({ session: z.enum(['open', 'closed']) }),
    z.strictObject({ halt: z.string().min(1) }),
    z.strictObject({ resume: z.string().min(1) }),
  ]),
  restart: z.literal(true),
  reset: z.strictObject({ breaker: z.string().min(1), by: z.string().min(1) }),
  limits: z.strictObject(Object.fromEntries(Object.entries(limitsShape).map(([k, v]) => [k, v.nullable()]))),
  // Issue 14, over the wire only (`--broker sim`): a fault of the broker simulator, and a reconciliation.
  broker: z.strictObject({
    fault: z.enum(['http429', 'timeout', 'disconnect', 'auth', 'maintenance', 'invalid', 'lost_fill']),
    durationSeconds: positive.optional(),
    clientOrderId: z.string().min(1).optional(),
  }),
  reconcile: z.literal(true),
} as const;
type Actions = { [K in keyof typeof ACTIONS]: z.infer<(typeof ACTIONS)[K]> };
export type TimelineAction = { [K in keyof Actions]: { kind: K; value: Actions[K] } }[keyof Actions];
export type SubmitEntry = z.infer<typeof submitSchema>;

const topSchema = z.strictObject({
  start: z.string().regex(ISO, 'must be an ISO 8601 time with a zone (e.g. 2026-03-02T15:00:00Z)'),
  account: z.strictObject({
    cash: z.number(),
    positions: z.record(z.string(), z.strictObject({ qty: z.number().int(), avgPrice: positive })).optional(),
  }),
  limits: limitsSchema.optional(),
  broker: z
    .strictObject({
      fill: z.enum(['immediate', 'none']),
      latencyMs: z.number().int().nonnegative().optional(),
    })
    .optional(),
  timeline: z.array(z.unknown()),
});

export interface TimelineEntry {
  readonly at: number;
  readonly index: number;
  readonly action: TimelineAction;
}

export interface Scenario {
  readonly start: number;
  readonly account: z.infer<typeof topSchema>['account'];
  readonly limits: z.infer<typeof limitsSchema>;
  readonly broker: { fill: 'immediate' | 'none'; latencyMs: number };
  readonly timeline: TimelineEntry[];
}

export class ScenarioError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid scenario:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

function path(prefix: string, p: readonly PropertyKey[]): string {
  return [prefix, ...p.map((x) => (typeof x === 'number' ? `[${x}]` : `.${String(x)}`))]
    .join('')
    .replace(/^\./, '');
}

function issues(prefix: string, error: z.ZodError): string[] {
  return error.issues.map((i) => `${path(prefix, i.path) || '(root)'}: ${i.message}`);
}

/** Validates a parsed JSON document; throws ScenarioError naming every problem. */
export function parseScenario(input: unknown): Scenario {
  const problems: string[] = [];
  const top = topSchema.safeParse(input);
  if (!top.success) problems.push(...issues('', top.error));
  const doc = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const start = typeof doc.start === 'string' && ISO.test(doc.start) ? Date.parse(doc.start) : Number.NaN;
  if (typeof doc.start === 'string' && ISO.test(doc.start) && Number.isNaN(start))
    problems.push('start: not a valid time');
  const timeline: TimelineEntry[] = [];
  const raw = Array.isArray(doc.timeline) ? doc.timeline : [];
  let previous = start;
  raw.forEach((entry, index) => {
    const where = `timeline[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: must be an object with "at" and one action`);
      return;
    }
    const e = entry as Record<string, unknown>;
    let at = Number.NaN;
    if (typeof e.at !== 'string') problems.push(`${where}.at: required (ISO time or +<seconds>s)`);
    else if (OFFSET.test(e.at)) at = start + Number((OFFSET.exec(e.at) as RegExpExecArray)[1]) * 1000;
    else if (ISO.test(e.at) && !Number.isNaN(Date.parse(e.at))) at = Date.parse(e.at);
    else problems.push(`${where}.at: ${JSON.stringify(e.at)} is neither an ISO time nor +<seconds>s`);
    if (!Number.isNaN(at) && !Number.isNaN(start)) {
      if (at < start) problems.push(`${where}.at: before start`);
      else if (at < previous)
        problems.push(`${where}.at: before the previous entry (the timeline must be in time order)`);
      else previous = at;
    }
    const keys = Object.keys(e).filter((k) => k !== 'at');
    const known = keys.filter((k) => k in ACTIONS) as (keyof typeof ACTIONS)[];
    for (const k of keys.filter((k) => !(k in ACTIONS)))
      problems.push(`${where}.${k}: unknown action (expected one of ${Object.keys(ACTIONS).join(', ')})`);
    if (known.length === 0 && keys.length === 0) problems.push(`${where}: no action`);
    if (known.length > 1) problems.push(`${where}: one action per entry, found ${known.join(', ')}`);
    const kind = known[0];
    if (kind === undefined || known.length > 1) return;
    const parsed = ACTIONS[kind].safeParse(e[kind]);
    if (!parsed.success) {
      problems.push(...issues(`${where}.${kind}`, parsed.error));
      return;
    }
    timeline.push({ at, index, action: { kind, value: parsed.data } as TimelineAction });
  });
  if (problems.length > 0 || !top.success) throw new ScenarioError(problems);
  const data = top.data;
  return {
    start,
    account: data.account,
    limits: data.limits ?? {},
    broker: { fill: data.broker?.fill ?? 'immediate', latencyMs: data.broker?.latencyMs ?? 0 },
    timeline,
  };
}
