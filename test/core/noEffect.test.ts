/**
 * The guard of src/core/: no file there may import `effect` or `@effect/*`, so the same core
 * serves an Effect 3 and an Effect 4 build. Every module reference is read with the TypeScript
 * parser: `import` (type-only included), `export ... from`, `import x = require()`, dynamic
 * `import()`, `import("...")` types and `require()`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { assert, describe, it } from "#test/vitest"

const CORE = fileURLToPath(new URL("../../src/core", import.meta.url))

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return /\.(?:[cm]?ts|tsx)$/.test(entry.name) ? [path] : []
  })

/** Every module specifier `text` refers to. */
const specifiersOf = (fileName: string, text: string): Array<string> => {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true)
  const found: Array<string> = []
  const literal = (node: ts.Node | undefined): void => {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push(node.text)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier)
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      literal(node.moduleReference.expression)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal)
    else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === "require"))
    ) literal(node.arguments[0])
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

const isEffect = (specifier: string): boolean =>
  specifier === "effect" || specifier.startsWith("effect/") || specifier.startsWith("@effect/")

const effectImportsOf = (fileName: string, text: string): Array<string> =>
  specifiersOf(fileName, text).filter(isEffect)

describe("src/core imports nothing from Effect", () => {
  it("finds every form of module reference (the guard's own check)", () => {
    const sample = [
      `import * as Effect from "effect/Effect"`,
      `import type { Option } from "effect"`,
      `import { type Layer } from "effect/Layer"`,
      `import "@effect/platform"`,
      `export * from "@effect/sql"`,
      `export type { Duration } from "effect/Duration"`,
      `import Schema = require("effect/Schema")`,
      `type S = import("effect/Scope").Scope`,
      `const m = () => import("@effect/vitest")`,
      `const r = require("effect/Function")`,
      `import { x } from "./effect.js"`,
      `import { y } from "effectful"`,
      `const s = "from 'effect'"`
    ].join("\n")
    assert.deepStrictEqual(effectImportsOf("sample.ts", sample), [
      "effect/Effect",
      "effect",
      "effect/Layer",
      "@effect/platform",
      "@effect/sql",
      "effect/Duration",
      "effect/Schema",
      "effect/Scope",
      "@effect/vitest",
      "effect/Function"
    ])
  })

  it("holds for every file under src/core/", () => {
    const files = sourceFiles(CORE)
    assert.isAbove(files.length, 0)
    const offending = files.flatMap((file) =>
      effectImportsOf(file, readFileSync(file, "utf8")).map((specifier) => `${relative(CORE, file)}: ${specifier}`)
    )
    assert.deepStrictEqual(offending, [])
  })
})
