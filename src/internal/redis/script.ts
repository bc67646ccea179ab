/**
 * The Lua scripts of `core/redis/scripts.ts` as the client sends them: with the SHA-1 `EVALSHA`
 * names them by and the opcode the batch script runs them by.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import * as scripts from "../../core/redis/scripts.js"

/** @internal */
export interface Script {
  readonly source: string
  readonly sha: string
  /** Its opcode in the batch script (0: not batchable). */
  readonly opcode: number
}

const script = (source: string): Script => ({
  source,
  sha: createHash("sha1").update(source).digest("hex"),
  opcode: scripts.batchable.findIndex((s) => s === source) + 1
})

/** Every script of the store (all loaded at start-up). @internal */
export const Scripts = {
  tokenBucketTake: script(scripts.tokenBucketTake),
  tokenBucketPeek: script(scripts.tokenBucketPeek),
  slidingWindowTake: script(scripts.slidingWindowTake),
  slidingWindowPeek: script(scripts.slidingWindowPeek),
  fixedWindowTake: script(scripts.fixedWindowTake),
  fixedWindowPeek: script(scripts.fixedWindowPeek),
  slotAcquire: script(scripts.slotAcquire),
  slotRenew: script(scripts.slotRenew),
  slotRelease: script(scripts.slotRelease),
  slotPeek: script(scripts.slotPeek),
  takeAll: script(scripts.takeAll),
  tokenBucketAdjust: script(scripts.tokenBucketAdjust),
  slidingWindowAdjust: script(scripts.slidingWindowAdjust),
  fixedWindowAdjust: script(scripts.fixedWindowAdjust),
  batch: script(scripts.batch)
} as const
