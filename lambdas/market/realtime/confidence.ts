/**
 * FMV confidence. The provider sends a fair market value with no confidence, so the router derives
 * one from what it can check: agreement with the symbol's latest quote midpoint (or latest trade when
 * there is no fresh quote) and the value's staleness on arrival.
 */

export interface ConfidenceOptions {
  /** FMV below this confidence is dropped with reason `low_confidence`. */
  readonly threshold: number;
  /** Relative deviation from the reference price at which agreement reaches 0. */
  readonly maxDeviation: number;
  /** A trade or quote older than this (relative to the FMV) is no reference. */
  readonly referenceMaxAgeMs: number;
  /** Staleness on arrival up to this costs nothing... */
  readonly freshMs: number;
  /** ...and reaches confidence 0 here. */
  readonly staleMs: number;
  /** Agreement assumed when the symbol has no fresh trade or quote to compare with. */
  readonly unreferencedAgreement: number;
}

export const DEFAULT_CONFIDENCE: ConfidenceOptions = {
  threshold: 0.5,
  maxDeviation: 0.05,
  referenceMaxAgeMs: 60_000,
  freshMs: 2_000,
  staleMs: 30_000,
  unreferencedAgreement: 0.6,
};

export interface PriceReference {
  /** Latest trade price and its time (ms), if any. */
  readonly tradePrice?: number;
  readonly tradeT?: number;
  /** Latest quote midpoint and its time (ms), if any. */
  readonly quoteMid?: number;
  readonly quoteT?: number;
}

export interface Confidence {
  readonly confidence: number;
  readonly reference: 'quote' | 'trade' | 'none';
}

/** Confidence in [0, 1], three decimals, for an FMV value stamped `fmvT` and received at `receivedAt`. */
export function fmvConfidence(
  fmv: number,
  fmvT: number,
  receivedAt: number,
  ref: PriceReference,
  options: ConfidenceOptions = DEFAULT_CONFIDENCE,
): Confidence {
  let reference: Confidence['reference'] = 'none';
  let price: number | undefined;
  const fresh = (t: number | undefined): boolean =>
    t !== undefined && Math.abs(fmvT - t) <= options.referenceMaxAgeMs;
  if (ref.quoteMid !== undefined && ref.quoteMid > 0 && fresh(ref.quoteT)) {
    reference = 'quote';
    price = ref.quoteMid;
  } else if (ref.tradePrice !== undefined && ref.tradePrice > 0 && fresh(ref.tradeT)) {
    reference = 'trade';
    price = ref.tradePrice;
  }
  const agreement =
    price === undefined
      ? options.unreferencedAgreement
      : Math.max(0, 1 - Math.abs(fmv - price) / price / options.maxDeviation);
  const age = Math.max(0, receivedAt - fmvT);
  const freshness =
    age <= options.freshMs
      ? 1
      : Math.max(0, 1 - (age - options.freshMs) / (options.staleMs - options.freshMs));
  return { confidence: Math.round(agreement * freshness * 1000) / 1000, reference };
}
