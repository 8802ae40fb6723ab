/**
 * The daily control report (in the spirit of SEC 15c3-5, the market-access rule) built from an
 * account's event stream: limits in force with their version, every denial with its code, detail and
 * inputs, every breaker trip with its inputs and actions, every reset with who and when, trading-state
 * changes and reconciliation differences with their resolutions. Pure: events in, report out.
 */
import type { BreakerRecord, Limits, TradingEvent, TradingStateName } from './types';

export interface ReportDenial {
  readonly at: string;
  readonly clientOrderId: string;
  readonly code: string;
  readonly detail: string;
  /** What was asked (the order's facts) or the refused command. */
  readonly inputs: Record<string, unknown>;
}

export interface ReportReconciliationDifference {
  readonly at: string;
  readonly id: string;
  readonly kind: string;
  readonly detail: string;
  readonly resolution: string;
  /** The symbol or 'account' a dispute blocked. */
  readonly scope?: string;
  /** A manual resolution (TC-RC-015): who, when and what, or null while open / booked from the broker. */
  readonly resolved?: { at: string; by: string; action: string; note: string } | null;
}

export interface ControlReport {
  readonly date: string;
  readonly stream: string;
  /** Limits in force at the start of the day and every change during it, each with its version. */
  readonly limits: { at: string; version: number; limits: Limits }[];
  readonly denials: ReportDenial[];
  readonly breakerTrips: (Pick<BreakerRecord, 'at' | 'breaker' | 'scope' | 'inputs' | 'limitsVersion'> & {
    actions: string[];
  })[];
  readonly resets: {
    at: string;
    breaker: string;
    by: string;
    outcome: 'reset' | 'refused';
    reason: string | null;
  }[];
  readonly stateChanges: { at: string; scope: string; state: TradingStateName; cause: string }[];
  readonly reconciliation: ReportReconciliationDifference[];
}

const onDate = (at: string, date: string) => at.slice(0, 10) === date;

export function buildControlReport(
  stream: string,
  date: string,
  events: readonly TradingEvent[],
): ControlReport {
  const limits: ControlReport['limits'] = [];
  let inForce: { at: string; version: number; limits: Limits } | null = null;
  const denials: ReportDenial[] = [];
  const trips: ControlReport['breakerTrips'] = [];
  const tripById = new Map<number, ControlReport['breakerTrips'][number]>();
  const resets: ControlReport['resets'] = [];
  const stateChanges: ControlReport['stateChanges'] = [];
  const reconciliation: ReportReconciliationDifference[] = [];
  const seenDifferences = new Set<string>();
  const differenceById = new Map<string, ReportReconciliationDifference>();
  const earlier = new Map<string, { kind: string; detail: string; scope: string }>();

  for (const event of events) {
    const day = event.at.slice(0, 10);
    if (day > date) break;
    if (event.type === 'AccountOpened' || event.type === 'LimitsUpdated') {
      const entry = {
        at: event.at,
        version: event.type === 'AccountOpened' ? 1 : event.version,
        limits: event.limits,
      };
      if (day < date) inForce = entry;
      else limits.push(entry);
      continue;
    }
    if (event.type === 'BreakerActionsRecorded') {
      const trip = tripById.get(event.id);
      if (trip) trip.actions.push(...event.actions.filter((a) => !trip.actions.includes(a)));
      continue;
    }
    if (event.type === 'ReconciliationDifferenceRecorded' && day < date)
      earlier.set(event.difference.id, event.difference);
    if (!onDate(event.at, date)) continue;
    switch (event.type) {
      case 'OrderDenied': {
        const o = event.order;
        denials.push({
          at: event.at,
          clientOrderId: o.clientOrderId,
          code: o.denial?.code ?? 'UNKNOWN',
          detail: o.denial?.detail ?? '',
          inputs: {
            symbol: o.symbol,
            side: o.side,
            qty: o.requestedQty,
            type: o.type,
            limitPrice: o.limitPrice,
            tif: o.tif,
            session: o.session,
          },
        });
        break;
      }
      case 'DuplicateSubmitDenied':
        denials.push({
          at: event.at,
          clientOrderId: event.clientOrderId,
          code: 'DUPLICATE_CLIENT_ORDER_ID',
          detail: event.detail,
          inputs: { command: 'submit' },
        });
        break;
      case 'CommandRefused':
        denials.push({
          at: event.at,
          clientOrderId: event.clientOrderId,
          code: event.code,
          detail: event.detail,
          inputs: { command: event.command },
        });
        break;
      case 'BreakerTripped': {
        const r = event.record;
        const trip = {
          at: r.at,
          breaker: r.breaker,
          scope: r.scope,
          inputs: r.inputs,
          limitsVersion: r.limitsVersion,
          actions: [...r.actions],
        };
        trips.push(trip);
        tripById.set(r.id, trip);
        break;
      }
      case 'BreakerReset':
        resets.push({ at: event.at, breaker: event.breaker, by: event.by, outcome: 'reset', reason: null });
        break;
      case 'BreakerResetRefused':
        resets.push({
          at: event.at,
          breaker: event.breaker,
          by: event.by,
          outcome: 'refused',
          reason: event.reason,
        });
        break;
      case 'TradingStateChanged':
        stateChanges.push({ at: event.at, scope: event.scope, state: event.state, cause: event.cause });
        break;
      case 'ReconciliationDifferenceRecorded': {
        const d = event.difference;
        if (seenDifferences.has(d.id)) break;
        seenDifferences.add(d.id);
        const entry: ReportReconciliationDifference = {
          at: event.at,
          id: d.id,
          kind: d.kind,
          detail: d.detail,
          resolution: d.resolution,
          scope: d.scope,
          resolved: null,
        };
        reconciliation.push(entry);
        differenceById.set(d.id, entry);
        break;
      }
      case 'ReconciliationDifferenceResolved': {
        const resolved = { at: event.at, by: event.by, action: event.action, note: event.note };
        const entry = differenceById.get(event.differenceId);
        if (entry) differenceById.set(event.differenceId, Object.assign(entry, { resolved }));
        // Recorded on an earlier day, resolved today: listed with its resolution.
        else
          reconciliation.push({
            at: event.at,
            id: event.differenceId,
            kind: earlier.get(event.differenceId)?.kind ?? 'unknown',
            detail: earlier.get(event.differenceId)?.detail ?? '',
            resolution: 'manual_intervention',
            scope: earlier.get(event.differenceId)?.scope ?? '',
            resolved,
          });
        break;
      }
    }
  }
  if (inForce) limits.unshift(inForce);
  return { date, stream, limits, denials, breakerTrips: trips, resets, stateChanges, reconciliation };
}
