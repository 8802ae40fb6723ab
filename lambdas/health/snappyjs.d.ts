// snappyjs ships no types; only what decode.ts and the fixture generator use.
declare module 'snappyjs' {
  interface SnappyJS {
    /** Throws when the declared uncompressed length exceeds maxLength. */
    uncompress<T extends Uint8Array | ArrayBuffer>(compressed: T, maxLength?: number): T;
    compress<T extends Uint8Array | ArrayBuffer>(uncompressed: T): T;
  }
  const snappy: SnappyJS;
  export default snappy;
}
