/**
 * Multi-process accuracy against the NATS server on 127.0.0.1:4222 (JetStream on): 4 Node
 * processes × 50 fibers share one limiter of 100/s, burst 10, for 10 s, measured after each process
 * warmed up, from an instant every process is told on a signal. The admissions that proceed within
 * the 5 s must be within [0.97, 1.00] × (burst + 100·10), never above.
 */
import { layer } from "#test/vitest"
import { Layer } from "effect"
import { rateAccuracy } from "../utils/accuracy.js"
import { dropBucket, URL } from "../utils/nats.js"
import { describeWhenUp, requireService } from "../utils/services.js"

const available = await requireService("NATS", "127.0.0.1", 4222)

const BUCKET = `rs-accuracy-${crypto.randomUUID()}`

describeWhenUp(available)("NatsStore multi-process accuracy (4 processes × 50 fibers)", () => {
  layer(Layer.empty.pipe(Layer.provideMerge(dropBucket(BUCKET))), { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("one limiter of 100/s, burst 10, admits [0.97, 1.0] × (burst + 100·10) in 10 s", () =>
      rateAccuracy("NATS", "test/nats/fixtures/worker.ts", (rateId) => ["accuracy", URL, BUCKET, rateId]))
  })
})
