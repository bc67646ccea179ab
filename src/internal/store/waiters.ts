/**
 * The store kit: waiters for a slot, per key, woken by a notification (a release, a reset) instead
 * of polling. A notification only shortens a wait: a waiter whose wake-up is lost (a dropped
 * message, another process's release) still ends at its bound, and its caller retries then.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * The waiters of every key, oldest first. Keys without waiters hold no entry.
 *
 * @internal
 */
export class Waiters {
  private readonly byKey = new Map<string, Set<Deferred.Deferred<void>>>()

  /**
   * Waits until `key` is notified or `maxWaitMs` passes (Effect's clock), whichever comes first;
   * never fails. The waiter is registered when the effect runs and removed however it ends.
   */
  wait(key: string, maxWaitMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const waiter = Fx.deferredUnsafe<void>()
      let set = this.byKey.get(key)
      if (set === undefined) {
        set = new Set()
        this.byKey.set(key, set)
      }
      set.add(waiter)
      return Deferred.await(waiter).pipe(
        Effect.timeoutOption(Duration.millis(Math.max(0, maxWaitMs))),
        Effect.asVoid,
        Effect.ensuring(Effect.sync(() => this.remove(key, waiter)))
      )
    })
  }

  /** Wakes the oldest waiter of `key` (one freed slot admits one waiter). */
  wakeOne(key: string): void {
    const set = this.byKey.get(key)
    if (set === undefined) return
    for (const waiter of set) {
      this.remove(key, waiter)
      Fx.deferredDone(waiter, Exit.void)
      return
    }
  }

  /** Wakes every waiter of `key` (a reset frees all of its slots). */
  wakeAll(key: string): void {
    const set = this.byKey.get(key)
    if (set === undefined) return
    this.byKey.delete(key)
    for (const waiter of set) Fx.deferredDone(waiter, Exit.void)
  }

  /** Wakes every waiter of every key. */
  wakeEvery(): void {
    for (const key of Array.from(this.byKey.keys())) this.wakeAll(key)
  }

  /** No waiter left. */
  get idle(): boolean {
    return this.byKey.size === 0
  }

  private remove(key: string, waiter: Deferred.Deferred<void>): void {
    const set = this.byKey.get(key)
    if (set === undefined) return
    set.delete(waiter)
    if (set.size === 0) this.byKey.delete(key)
  }
}
