/**
 * The per-major test helpers (`#test/vitest`, `#test/effect`) mean the same on both majors: this
 * file runs on the Effect 3 run and on the Effect 4 run, and checks that the two halves export the
 * same names (read from their source, so neither major's modules are loaded for it).
 */
import { readFileSync } from "node:fs"
import { Clock, Deferred, Duration, Effect, Exit, Layer, Metric, Option, Random, Scope } from "effect"
import ts from "typescript"
import * as T from "#test/effect"
import { assert, describe, it, layer } from "#test/vitest"

const { FastCheck: fc, TestClock } = T

/** The names `test/fx/<major>/<file>` exports (values and types), read from its source. */
const exportedNames = (major: "v3" | "v4", file: string): ReadonlyArray<string> => {
  const path = new URL(`./${major}/${file}`, import.meta.url)
  const source = ts.createSourceFile(file, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true)
  const names: Array<string> = []
  for (const statement of source.statements) {
    const exported = ts.canHaveModifiers(statement) &&
      (ts.getModifiers(statement) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    if (ts.isExportDeclaration(statement)) {
      if (statement.exportClause === undefined) names.push(`* from ${statement.moduleSpecifier?.getText() ?? ""}`)
      else if (ts.isNamespaceExport(statement.exportClause)) names.push(statement.exportClause.name.text)
      else for (const e of statement.exportClause.elements) names.push(e.name.text)
    } else if (exported && ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) names.push(d.name.getText())
    } else if (
      exported &&
      (ts.isFunctionDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement) ||
        ts.isClassDeclaration(statement)) && statement.name !== undefined
    ) {
      names.push(statement.name.text)
    }
  }
  return names.sort()
}

describe("the two halves of the test helpers", () => {
  it("#test/effect: test/fx/v3/effect.ts and test/fx/v4/effect.ts export the same names", () => {
    assert.deepStrictEqual(exportedNames("v4", "effect.ts"), exportedNames("v3", "effect.ts"))
  })
})

describe("#test/vitest", () => {
  it.scoped("it.scoped runs in a Scope, with the TestClock", () =>
    Effect.gen(function*() {
      let closed = false
      yield* Effect.addFinalizer(() => Effect.sync(() => (closed = true)))
      const before = yield* Clock.currentTimeMillis
      yield* TestClock.adjust("1 hour")
      assert.strictEqual((yield* Clock.currentTimeMillis) - before, 3_600_000)
      assert.isFalse(closed)
    }))

  it.effect("it.effect has the TestClock: a sleep waits for TestClock.adjust", () =>
    Effect.gen(function*() {
      const fiber = yield* T.fork(Effect.sleep("10 seconds"))
      yield* TestClock.adjust("5 seconds")
      assert.isTrue(Option.isNone(yield* T.poll(fiber)))
      yield* TestClock.adjust("5 seconds")
      const exit = yield* T.poll(fiber)
      assert.isTrue(Option.isSome(exit) && Exit.isSuccess(exit.value))
    }))

  it.scopedLive("it.scopedLive runs in a Scope, on the live clock", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.Scope
      assert.isDefined(scope)
      const before = Date.now()
      yield* Effect.sleep("20 millis")
      assert.isAtLeast(Date.now() - before, 15)
    }))

  let syncRuns = 0
  it.prop("it.prop runs a fast-check property numRuns times", [fc.integer(), fc.integer()], ([a, b]) => {
    syncRuns++
    return a + b === b + a
  }, { fastCheck: { numRuns: 25 } })
  it("(it.prop ran 25 times)", () => assert.strictEqual(syncRuns, 25))

  let effectRuns = 0
  const times = new Set<number>()
  it.scoped.prop("it.scoped.prop: each run has its own Scope and a fresh TestClock", { n: fc.nat(100) }, ({ n }) =>
    Effect.gen(function*() {
      effectRuns++
      yield* Effect.addFinalizer(() => Effect.void)
      times.add(yield* Clock.currentTimeMillis)
      yield* TestClock.adjust(Duration.millis(n + 1))
    }), { fastCheck: { numRuns: 10 } })
  it("(it.scoped.prop ran 10 times, each from the TestClock's start)", () => {
    assert.strictEqual(effectRuns, 10)
    assert.deepStrictEqual([...times], [0])
  })

  it.effect.prop("a property that fails is reported", [fc.constant(1)], () => Effect.fail("no"), {
    fastCheck: { numRuns: 1 },
    fails: true
  })
})

class Counter extends T.Service<Counter, { readonly next: Effect.Effect<number> }>()("test/fx/Counter") {}

const CounterLive = Layer.effect(
  Counter,
  Effect.sync(() => {
    let n = 0
    return { next: Effect.sync(() => ++n) }
  })
)

layer(CounterLive)("layer", (it) => {
  it.scoped("a layer's it.scoped shares the layer's services and has a Scope", () =>
    Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Effect.void)
      assert.strictEqual(yield* (yield* Counter).next, 1)
    }))
  it.effect("a layer's it.effect: the same service", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* (yield* Counter).next, 2)
    }))
  it.effect.prop("a layer's it.effect.prop", [fc.boolean()], () =>
    Effect.gen(function*() {
      assert.isAbove(yield* (yield* Counter).next, 2)
    }), { fastCheck: { numRuns: 3 } })
})

describe("#test/effect", () => {
  it.effect("result, getOk, getErr, isOk, isErr", () =>
    Effect.gen(function*() {
      const good = yield* T.result(Effect.succeed(1))
      const bad = yield* T.result(Effect.fail("e"))
      assert.isTrue(T.isOk(good) && T.isErr(bad))
      assert.strictEqual(T.getOk(good), 1)
      assert.strictEqual(T.getErr(bad), "e")
      assert.throws(() => T.getOk(bad))
      assert.throws(() => T.getErr(good))
      assert.strictEqual(T.getOk(T.ok(2)), 2)
      assert.strictEqual(T.getErr(T.err(3)), 3)
    }))

  it.effect("configProvider: flat names, and nested paths joined by _ with pathDelim", () =>
    Effect.gen(function*() {
      const flat = yield* T.configString("RATE_SYNC_X").pipe(T.withConfig({ RATE_SYNC_X: "a" }))
      assert.strictEqual(flat, "a")
      const provider = T.configProvider(new Map([["A_B", "7"]]), { pathDelim: "_" })
      const nested = yield* T.withConfigProvider(T.configNumber("A_B"), provider)
      assert.strictEqual(nested, 7)
      const missing = yield* T.result(T.configString("NOPE").pipe(T.withConfig({})))
      assert.isTrue(T.isErr(missing))
    }))

  it.effect("clockOf / withClock: the clock reads what it is told; sleeps are the base clock's", () =>
    Effect.gen(function*() {
      let now = 1_000
      const clock = T.clockOf({ millis: () => now })
      const read = Clock.currentTimeMillis.pipe(T.withClock(clock))
      assert.strictEqual(yield* read, 1_000)
      now = 2_500
      assert.strictEqual(yield* read, 2_500)
      assert.strictEqual(yield* Effect.clockWith((c) => c.currentTimeMillis).pipe(T.withClock(clock)), 2_500)
    }))

  it.effect("withSeed: the same seed gives the same numbers", () =>
    Effect.gen(function*() {
      const draw = Effect.all([Random.next, Random.next])
      assert.deepStrictEqual(yield* T.withSeed(draw, "s"), yield* T.withSeed(draw, "s"))
    }))

  it.scoped("makeLatch and poll", () =>
    Effect.gen(function*() {
      const latch = yield* T.makeLatch()
      const done = yield* Deferred.make<void>()
      const fiber = yield* T.fork(Effect.andThen(latch.await, Deferred.succeed(done, undefined)))
      yield* T.yieldNow
      assert.isTrue(Option.isNone(yield* T.poll(fiber)))
      yield* latch.open
      yield* Deferred.await(done)
      yield* T.yieldNow
      assert.isTrue(Option.isSome(yield* T.poll(fiber)))
    }))

  it.effect("counterCount, histogramCount, histogramBounds, metricSeries", () =>
    Effect.gen(function*() {
      const id = `test_fx_${Math.random().toString(36).slice(2)}`
      const counter = Metric.counter(`${id}_total`, { description: "a test counter", incremental: true })
      yield* Metric.update(T.withLabels(counter, { k: "v" }), 2)
      assert.strictEqual(yield* T.counterCount(counter, { k: "v" }), 2)
      const series = (yield* T.metricSeries).find((s) => s.name === `${id}_total`)
      assert.deepStrictEqual([series?.labels, series?.description], [{ k: "v" }, "a test counter"])
      const histogram = T.exponentialHistogram(`${id}_ms`, { start: 1, factor: 2, count: 5, description: "a test histogram" })
      yield* Metric.update(histogram, 5)
      assert.strictEqual(yield* T.histogramCount(histogram), 1)
      assert.deepStrictEqual(yield* T.histogramBounds(histogram), [1, 2, 4, 8])
    }))

  it.effect("isDie", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.die(new Error("boom")))
      assert.isTrue(Exit.isFailure(exit) && T.isDie(exit.cause))
    }))
})
