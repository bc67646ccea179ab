/**
 * The `effect-rate-sync/nats` entry: the NATS JetStream KV store (needs the optional peers
 * `@nats-io/transport-node` and `@nats-io/kv`).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as NatsStore from "./NatsStore.js"

/**
 * The NATS store read from the environment (`RATE_SYNC_NATS_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export { NatsStoreLive } from "./NatsStore.js"
