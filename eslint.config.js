import tseslint from "typescript-eslint"

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
        { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: "Time comes from Effect's Clock or the store's clock." }
      ],
      "no-restricted-globals": ["error", { name: "setTimeout", message: "Use Effect.sleep / Clock." }]
    }
  }
)
