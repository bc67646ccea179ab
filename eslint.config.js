import tseslint from "typescript-eslint"

// Effect members shared code must not use (same name, another meaning on 3.22 and 4.1; or v3 only).
const effectMembers = [
  ["catch", "Effect.catch is the discriminator catch on 3.22 and catchAll on 4.1: use Effect.catchAll (via the per-major module later)."],
  ["contextWith", "Effect.contextWith is pure on 3.22 and effectful on 4.1: use Effect.contextWithEffect (via the per-major module later)."],
  ["zipRight", "Effect.zipRight is gone in 4.1: use Effect.andThen(a, b)."],
  ["dieMessage", "Effect.dieMessage is gone in 4.1: use Effect.die(new Error(message))."],
  ["clock", "Effect.clock is gone in 4.1: use Effect.clockWith(f) (or Effect.clockWith(Effect.succeed))."]
]

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "scratchpad/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["src/**/*.ts", "test/**/*.ts", "examples/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off"
    }
  },
  {
    // Library code: time only from Effect's Clock or the store's clock.
    files: ["src/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: "Time comes from Effect's Clock or the store's clock." },
        { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: "Time comes from Effect's Clock or the store's clock." },
        {
          // the named-import spelling of the Effect members banned below (no-restricted-properties)
          selector: `ImportDeclaration[source.value=/^effect(\\/Effect)?$/] > ImportSpecifier[imported.name=/^(${effectMembers.map(([name]) => name).join("|")})$/]`,
          message: "Not in shared code: same name, another meaning on Effect 3.22 and 4.1, or v3 only (see the Effect.<name> rule)."
        }
      ],
      "no-restricted-globals": ["error", { name: "setTimeout", message: "Use Effect.sleep / Clock." }]
    }
  },
  {
    // Shared code builds on Effect 3.22 and 4.1 (scratchpad/effect4/PLAN.md, sections 1a and 6).
    // `catch` and `contextWith` exist on both with different meanings; the others are v3-only
    // spellings with a form valid on both. The per-major modules (src/fx/) may use them.
    files: ["src/**/*.ts"],
    ignores: ["src/fx/**"],
    rules: {
      "no-restricted-properties": [
        "error",
        ...effectMembers.map(([property, message]) => ({ object: "Effect", property, message }))
      ]
    }
  }
)
