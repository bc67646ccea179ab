/**
 * The TypeScript types the field tables (`core/config/fields.ts`) give: what each kind holds in
 * code, and the options / definition shape of a table. The compile-time checks
 * (`fieldChecks.ts`) hold each driver's hand-written interfaces to these shapes.
 *
 * @internal
 */
import type * as Redacted from "effect/Redacted"
import type * as Fx from "#fx/core"
import type { Field, FieldKind } from "../../core/config/fields.js"

/** What a field of each kind holds in code. @internal */
export interface KindTypes {
  readonly string: string
  readonly secret: Redacted.Redacted
  readonly url: Redacted.Redacted
  readonly urlList: ReadonlyArray<Redacted.Redacted>
  readonly integer: number
  readonly number: number
  readonly boolean: boolean
  readonly duration: Fx.DurationInput
  readonly stringList: ReadonlyArray<string>
}

/** Every field of a table, optional, typed by its kind. @internal */
export type ShapeOf<F extends Field> = {
  readonly [K in F as K["name"]]?: KindTypes[K["kind"] & FieldKind] | undefined
}

/** The fields of a table that are options of the driver's `make` (not `option: false`). @internal */
export type OptionFieldsOf<F extends Field> = Exclude<F, { readonly option: false }>

/** The driver options a table describes. @internal */
export type OptionsOf<F extends Field> = ShapeOf<OptionFieldsOf<F>>

/** The store definition a table describes (with its `engine`). @internal */
export type DefinitionOf<E extends string, F extends Field> = { readonly engine: E } & ShapeOf<F>

/**
 * `true` when `A` and `B` have the same keys and each is assignable to the other; else a type
 * naming what differs (so a compile error says which field drifted).
 *
 * @internal
 */
export type SameFields<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? [A, B] extends [B, A] ? true : { readonly fieldTypesDiffer: { readonly table: A; readonly interface: B } }
  : { readonly onlyInTable: Exclude<keyof A, keyof B>; readonly onlyInInterface: Exclude<keyof B, keyof A> }
