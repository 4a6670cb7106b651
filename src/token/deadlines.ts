/**
 * Many deadlines on one clock timer: a binary min-heap of the items by due time, and a single
 * timer set for the earliest. A timer per cache entry costs about 400 bytes (Node's `Timeout`, its
 * timer list, two closures and their contexts); here an item costs its two fields and one slot of
 * the heap's array. Deadlines are exact (no buckets), so a fake clock sees the same instants.
 *
 * Due times are kept in whole ms, rounded up (an item is never due early): V8 then stores them in
 * the item as small integers rather than as a boxed double per item (16 bytes).
 *
 * Each item carries its own place in the heap (`slot`), so that rescheduling or cancelling one is
 * O(log n) with no search and no per-item allocation. Node's own timer lists are not exposed, and
 * the heap libraries on npm either cannot remove an item or allocate a node per item.
 *
 * @example
 * const deadlines = new Deadlines<Entry>(clock, (entry) => refresh(entry))
 * deadlines.schedule(entry, clock.monotonic() + 60_000)
 * deadlines.cancel(entry)
 */
import type { Clock, Timer } from '../clock.js'

/** What the queue keeps on each item: its due time and its place in the heap. */
export interface Scheduled {
  /** Monotonic ms (whole) at which the item is due, while it is queued. */
  dueAt: number
  /** Its index in the heap, or -1 when it is not queued. */
  slot: number
}

export class Deadlines<T extends Scheduled> {
  readonly #clock: Clock
  readonly #onDue: (item: T) => void
  readonly #heap: T[] = []
  #timer: Timer | undefined
  /** When the timer fires (Infinity without one). */
  #timerAt = Infinity

  /** @param onDue called once per item when its time comes, the item already out of the queue. */
  constructor (clock: Clock, onDue: (item: T) => void) {
    this.#clock = clock
    this.#onDue = onDue
  }

  /** Items queued. */
  get size (): number {
    return this.#heap.length
  }

  /** Queues `item` at monotonic `at` (rounded up to a whole ms), replacing the time it was queued at, if any. */
  schedule (item: T, exactly: number): void {
    const at = Math.ceil(exactly)
    if (item.slot >= 0) {
      const earlier = at < item.dueAt
      item.dueAt = at
      if (earlier) this.#up(item.slot)
      else this.#down(item.slot)
    } else {
      item.dueAt = at
      item.slot = this.#heap.length
      this.#heap.push(item)
      this.#up(item.slot)
    }
    this.#arm()
  }

  /** Takes `item` out of the queue; nothing when it is not queued. */
  cancel (item: T): void {
    const slot = item.slot
    if (slot < 0) return
    item.slot = -1
    const last = this.#heap.pop() as T
    if (last === item) return
    this.#heap[slot] = last
    last.slot = slot
    this.#up(slot)
    this.#down(last.slot)
    // The timer stays: if it fires early, it finds nothing due and sets itself for the next.
  }

  /** Empties the queue and cancels the timer. */
  clear (): void {
    for (const item of this.#heap) item.slot = -1
    this.#heap.length = 0
    this.#timer?.cancel()
    this.#timer = undefined
    this.#timerAt = Infinity
  }

  /** Sets the timer for the earliest item, unless it is already set for then or earlier. */
  #arm (): void {
    const first = this.#heap[0]
    if (first === undefined || first.dueAt >= this.#timerAt) return
    this.#timer?.cancel()
    this.#timerAt = first.dueAt
    this.#timer = this.#clock.setTimer(() => this.#fire(), first.dueAt - this.#clock.monotonic())
  }

  #fire (): void {
    this.#timer = undefined
    this.#timerAt = Infinity
    const now = this.#clock.monotonic()
    // An item that `onDue` queues again for now or earlier is called again in this turn.
    for (let first = this.#heap[0]; first !== undefined && first.dueAt <= now; first = this.#heap[0]) {
      this.cancel(first)
      this.#onDue(first)
    }
    this.#arm()
  }

  #up (slot: number): void {
    const heap = this.#heap
    const item = heap[slot] as T
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1
      const parent = heap[parentSlot] as T
      if (parent.dueAt <= item.dueAt) break
      heap[slot] = parent
      parent.slot = slot
      slot = parentSlot
    }
    heap[slot] = item
    item.slot = slot
  }

  #down (slot: number): void {
    const heap = this.#heap
    const item = heap[slot] as T
    const half = heap.length >> 1
    while (slot < half) {
      let childSlot = 2 * slot + 1
      let child = heap[childSlot] as T
      const right = heap[childSlot + 1]
      if (right !== undefined && right.dueAt < child.dueAt) {
        childSlot++
        child = right
      }
      if (item.dueAt <= child.dueAt) break
      heap[slot] = child
      child.slot = slot
      slot = childSlot
    }
    heap[slot] = item
    item.slot = slot
  }
}
