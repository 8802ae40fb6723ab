import { mulberry32 } from '../scenarios/prng';

/** Small deterministic PRNG for the overlays: the same seed and knob always give the same tickers. */
export function hash32(text: string): number {
  // FNV-1a
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 seeded by a string's hash: uniform [0, 1). */
export function rng(seed: string): () => number {
  return mulberry32(hash32(seed));
}
