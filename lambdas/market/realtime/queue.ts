/** A bounded FIFO with O(1) push and shift (a ring), so a deep buffer never costs an array shift. */
export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer`);
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** False (and nothing stored) when full: the caller decides what overflow means. */
  push(item: T): boolean {
    if (this.count === this.capacity) return false;
    this.items[(this.head + this.count) % this.capacity] = item;
    this.count += 1;
    return true;
  }

  /** Stores the item, evicting the oldest when full; true when one was evicted. */
  pushEvictingOldest(item: T): boolean {
    const evicted = this.full;
    if (evicted) this.shift();
    this.push(item);
    return evicted;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
    return item;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Items oldest first, without removing them. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let k = 0; k < this.count; k += 1) yield this.items[(this.head + k) % this.capacity] as T;
  }
}
