/**
 * Trading domain types: orders, limits, events, broker commands and reports. Pure data, no I/O.
 */

export const ORDER_STATUSES = [
  'pending_new',
  'new',
  'partially_filled',
  'filled',
  'pending_cancel',
  'canceled',
  'pending_replace',
  'replaced',
  'rejected',
  'denied',
  'expired',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const DENIAL_CODES = [
  'MAX_ORDER_NOTIONAL',
  'MAX_POSITION',
  'MAX_GROSS_EXPOSURE',
  'MAX_LEVERAGE',
  'CORRELATION_EXPOSURE',
  'ORDER_RATE',
  'PRICE_COLLAR',
  'RESTRICTED_SYMBOL',
  'TRADING_HALTED',
  'REDUCE_ONLY',
  'MARKET_CLOSED',
  'SYMBOL_HALTED',
  'INSUFFICIENT_BUYING_POWER',
  'DUPLICATE_CLIENT_ORDER_ID',
  'INVALID_ORDER',
] as const;
export type DenialCode = (typeof DENIAL_CODES)[number];

export interface Denial {
  readonly code: DenialCode;
  readonly detail: string;
}

export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit';
export type TimeInForce = 'day' | 'gtc';
export type Session = 'pre-market' | 'open' | 'after-hours' | 'closed';
export type TradingStateName = 'active' | 'reducing' | 'halted';

/** What a caller asks for. Values are validated by the risk checks (INVALID_ORDER), not trusted. */
export interface OrderRequest {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: string;
  readonly qty: number;
  readonly type: string;
  readonly limitPrice?: number | null;
  readonly tif: string;
  /** 'fit': the caller allows the quantity to be cut to what the limits allow. */
  readonly sizing?: 'fit' | 'none';
}

export interface Order {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly side: Side;
  /** Quantity this order works (for a replacement: the new total minus what the original filled). */
  readonly qty: number;
  readonly requestedQty: number;
  readonly type: OrderType;
  readonly limitPrice: number | null;
  readonly tif: TimeInForce;
  readonly status: OrderStatus;
  readonly filledQty: number;
  readonly avgFillPrice: number | null;
  readonly denial: Denial | null;
  readonly submittedAt: string;
  readonly session: Session;
  readonly liquidation: boolean;
  readonly replaces: string | null;
  readonly replacedBy: string | null;
  /** Status to return to when a pending cancel or replace is refused by the broker. */
  readonly statusBeforePending: OrderStatus | null;
}

export interface VolatilityHalt {
  readonly windowSeconds: number;
  readonly movePct: number;
  readonly pauseSeconds: number;
}

export type CustomMetric =
  | 'grossExposure'
  | 'leverage'
  | 'openOrders'
  | 'dailyPnl'
  | 'drawdownPct'
  | 'brokerRejects';

export interface CustomBreaker {
  readonly name: string;
  readonly metric: CustomMetric;
  readonly above?: number;
  readonly below?: number;
  readonly action: 'reducing' | 'halted';
}

export interface Restoration {
  /** Fractions of the scaled limits in force after a reset, one per step; the last should be 1. */
  readonly steps: number[];
  readonly stepSeconds: number;
}

/** Every limit may be absent: absent = not enforced. */
export interface Limits {
  readonly maxOrderNotional?: number;
  readonly maxPositionQty?: Record<string, number>;
  readonly maxGrossExposure?: number;
  readonly maxLeverage?: number;
  readonly dailyLossLimit?: number;
  readonly liquidationBuffer?: number;
  readonly volatilityHalt?: VolatilityHalt;
  readonly maxOrdersPerSecond?: number;
  readonly priceCollarPct?: number;
  readonly correlationGroups?: Record<string, { symbols: string[]; maxExposure: number }>;
  readonly restricted?: string[];
  readonly customBreakers?: CustomBreaker[];
  readonly restoration?: Restoration;
}

export const DEFAULT_RESTORATION: Restoration = { steps: [0.25, 0.5, 0.75, 1], stepSeconds: 300 };

export interface PositionInit {
  readonly qty: number;
  readonly avgPrice: number;
}

export interface BreakerRecord {
  readonly id: number;
  readonly at: string;
  readonly breaker: string;
  readonly scope: string;
  /** The trading states this trip imposes while it is active. */
  readonly effects: { scope: string; state: TradingStateName }[];
  readonly inputs: Record<string, unknown>;
  readonly limitsVersion: number;
  readonly actions: string[];
  readonly autoRecovery: string | null;
  readonly until: string | null;
  readonly resetAt: string | null;
  readonly resetBy: string | null;
}

export interface StateChange {
  readonly at: string;
  readonly scope: string;
  readonly state: TradingStateName;
  readonly cause: string;
}

export type MarketChange = { session: 'open' | 'closed' } | { halt: string } | { resume: string };

export type BrokerCommand =
  | {
      readonly kind: 'submit';
      readonly clientOrderId: string;
      readonly symbol: string;
      readonly side: Side;
      readonly qty: number;
      readonly type: OrderType;
      readonly limitPrice: number | null;
      readonly tif: TimeInForce;
    }
  | { readonly kind: 'cancel'; readonly clientOrderId: string }
  | {
      readonly kind: 'replace';
      readonly clientOrderId: string;
      readonly newClientOrderId: string;
      readonly qty: number;
      readonly limitPrice: number | null;
    };

export type BrokerReport =
  | { readonly kind: 'accepted'; readonly clientOrderId: string }
  | { readonly kind: 'fill'; readonly clientOrderId: string; readonly qty: number; readonly price: number }
  | { readonly kind: 'canceled'; readonly clientOrderId: string }
  | { readonly kind: 'cancel_rejected'; readonly clientOrderId: string; readonly reason: string }
  | { readonly kind: 'replaced'; readonly clientOrderId: string; readonly newClientOrderId: string }
  | { readonly kind: 'replace_rejected'; readonly clientOrderId: string; readonly reason: string }
  | { readonly kind: 'rejected'; readonly clientOrderId: string; readonly reason: string }
  | { readonly kind: 'expired'; readonly clientOrderId: string };

export type ReconciliationKind =
  | 'missing_fill'
  | 'order_status'
  | 'unknown_order'
  | 'missing_order'
  | 'position'
  | 'balance'
  | 'trade_history';

export type ReconciliationResolution = 'book_from_broker' | 'manual_intervention';

/** How an operator closes a manual-intervention difference (TC-RC-015). */
export type ReconciliationAction = 'accept_broker' | 'dismiss';

/** One difference between the engine and the broker, named by a deterministic id. */
export interface ReconciliationDifference {
  readonly id: string;
  readonly kind: ReconciliationKind;
  /** The symbol or client order id concerned, or 'account'. */
  readonly key: string;
  readonly detail: string;
  readonly resolution: ReconciliationResolution;
  /** The symbol (or 'account') a dispute blocks. */
  readonly scope: string;
  /** The broker's figures, when an operator may take them over (position, balance). */
  readonly broker?: { qty?: number; avgPrice?: number; cash?: number };
}

/** The events of an account's stream. `at` is the engine clock's ISO time. */
export type TradingEvent =
  | {
      type: 'AccountOpened';
      at: string;
      cash: number;
      positions: Record<string, PositionInit>;
      limits: Limits;
    }
  | { type: 'LimitsUpdated'; at: string; limits: Limits; version: number }
  | { type: 'PricesUpdated'; at: string; prices: Record<string, number> }
  | { type: 'SessionChanged'; at: string; session: Session; override: boolean }
  | { type: 'SymbolHaltChanged'; at: string; symbol: string; halted: boolean }
  | { type: 'OrderSubmitted'; at: string; order: Order }
  | { type: 'OrderDenied'; at: string; order: Order }
  | { type: 'DuplicateSubmitDenied'; at: string; clientOrderId: string; detail: string }
  | {
      type: 'CommandRefused';
      at: string;
      command: string;
      clientOrderId: string;
      code: DenialCode;
      detail: string;
    }
  | { type: 'OrderAccepted'; at: string; clientOrderId: string }
  | { type: 'OrderFilled'; at: string; clientOrderId: string; qty: number; price: number }
  | { type: 'CancelRequested'; at: string; clientOrderId: string; reason: string }
  | { type: 'OrderCanceled'; at: string; clientOrderId: string }
  | { type: 'CancelRejected'; at: string; clientOrderId: string; reason: string }
  | {
      type: 'ReplaceRequested';
      at: string;
      clientOrderId: string;
      newClientOrderId: string;
      qty: number;
      limitPrice: number | null;
    }
  | { type: 'OrderReplaced'; at: string; clientOrderId: string; newClientOrderId: string }
  | { type: 'ReplaceRejected'; at: string; clientOrderId: string; reason: string }
  | { type: 'OrderRejected'; at: string; clientOrderId: string; reason: string }
  | { type: 'OrderExpired'; at: string; clientOrderId: string }
  | { type: 'BrokerReportIgnored'; at: string; report: BrokerReport; reason: string }
  | { type: 'BreakerTripped'; at: string; record: BreakerRecord }
  | { type: 'BreakerActionsRecorded'; at: string; id: number; actions: string[] }
  | { type: 'BreakerReset'; at: string; breaker: string; by: string }
  | { type: 'BreakerResetRefused'; at: string; breaker: string; by: string; reason: string }
  | { type: 'TradingStateChanged'; at: string; scope: string; state: TradingStateName; cause: string }
  | { type: 'RestorationStepped'; at: string; scope: string; factor: number; nextAt: string | null }
  | { type: 'AlertRaised'; at: string; severity: 'warning' | 'critical'; source: string; message: string }
  | { type: 'ReconciliationDifferenceRecorded'; at: string; difference: ReconciliationDifference }
  | {
      type: 'ReconciliationAdjusted';
      at: string;
      differenceId: string;
      /** The broker's figures taken over: a position (symbol) or the cash balance. */
      symbol: string | null;
      qty: number | null;
      avgPrice: number | null;
      cash: number | null;
    }
  | {
      type: 'ReconciliationDifferenceResolved';
      at: string;
      differenceId: string;
      by: string;
      action: ReconciliationAction;
      note: string;
    }
  | {
      /** The event store's chain broke at `brokenAt` (lambdas/trading/integrity.ts): the state rebuilt from the broker. */
      type: 'IntegrityRecovered';
      at: string;
      brokenAt: number;
      kind: 'corrupted' | 'missing';
      detail: string;
      /** The last version stored before this event: the rows brokenAt..through are not folded. */
      through: number;
      recovered: {
        orders: number;
        ordersUnknownLocally: number;
        fills: number;
        positions: string[];
        cash: number;
      };
      orders: Order[];
      positions: Record<string, PositionInit>;
      cash: number;
    };

export type TradingEventType = TradingEvent['type'];
