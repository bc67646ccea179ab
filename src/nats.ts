/**
 * The `effect-rate-sync/nats` entry: the NATS JetStream KV store (needs the optional peers
 * `@nats-io/transport-node` and `@nats-io/kv`).
 *
 * Without `@nats-io/transport-node` or `@nats-io/kv` installed, importing this entry fails with an error
 * (`code` `ERR_MODULE_NOT_FOUND`, Node's error as its `cause`) that ends with
 * `npm install @nats-io/transport-node @nats-io/kv`. To report it, the store module is loaded with a
 * top-level `await import(...)`: this entry is an async module, so `require` of it is refused
 * (`ERR_REQUIRE_ASYNC_MODULE`) where `require` of ES modules works; use `import`.
 *
 * @since 0.1.0
 */
import { importDriver } from "./internal/peer.js"
import type * as NatsStoreModule from "./NatsStore.js"

const loaded = await importDriver("nats", ["@nats-io/transport-node", "@nats-io/kv"], () => import("./NatsStore.js"))

/**
 * The NATS JetStream KV store module (`NatsStore.layer`, `NatsStore.make`, ...).
 *
 * @since 0.1.0
 */
export const NatsStore: typeof NatsStoreModule = loaded

/**
 * @since 0.1.0
 */
export declare namespace NatsStore {
  /**
   * @since 0.1.0
   */
  export type NatsStoreOptions = NatsStoreModule.NatsStoreOptions
}

/**
 * The NATS store read from the environment (`RATE_SYNC_NATS_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export const NatsStoreLive: typeof NatsStoreModule.NatsStoreLive = loaded.NatsStoreLive
