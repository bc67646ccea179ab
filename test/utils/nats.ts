/** What the NATS tests share: a raw view of a test bucket, and its removal. */
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Effect } from "effect"
import * as T from "#test/effect"

/** The test server (JetStream enabled). */
export const URL = "nats://127.0.0.1:4222"

/** A raw connection to `bucket`, to look at what the store wrote (closed with the scope). */
export const rawBucket = (bucket: string) =>
  Effect.acquireRelease(
    Effect.promise(() => connect({ servers: URL })),
    (nc) => Effect.promise(() => nc.close()).pipe(Effect.ignore)
  ).pipe(Effect.flatMap((nc) => Effect.promise(() => new Kvm(nc).open(bucket))))

/** Deletes `bucket` when the layer that holds it is released. */
export const dropBucket = (bucket: string) =>
  T.layerScopedDiscard(
    Effect.addFinalizer(() =>
      Effect.scoped(Effect.flatMap(rawBucket(bucket), (kv) => Effect.tryPromise(() => kv.destroy()))).pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.ignore
      )
    )
  )
