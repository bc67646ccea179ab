/**
 * A parser of RFC 9651 (Structured Field Values) Lists: members that are Items or Inner Lists,
 * each with its Parameters; bare items Integer, Decimal, String, Token, Byte Sequence, Boolean
 * (Dates and Display Strings too). It reads what `RateLimit` and `RateLimit-Policy` carry, so
 * tests (and clients of a server using this library) can check the fields by their members and
 * parameters rather than by their text. Strict: every deviation from the grammar is a failure, as
 * RFC 9651 §4.2 asks ("fail parsing", the whole field is then ignored).
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/**
 * A bare item (RFC 9651 §3.3): a Token and a Byte Sequence are tagged to keep them apart from a
 * String.
 *
 * @internal
 */
export type BareItem =
  | number
  | string
  | boolean
  | { readonly token: string }
  | { readonly bytes: Uint8Array }
  | { readonly date: number }

/** @internal */
export interface Item {
  readonly value: BareItem
  readonly params: ReadonlyMap<string, BareItem>
}

/** @internal */
export interface InnerList {
  readonly items: ReadonlyArray<Item>
  readonly params: ReadonlyMap<string, BareItem>
}

/** @internal */
export type Member = Item | InnerList

/** @internal */
export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }

class SfError extends Error {}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9"
const isAlpha = (c: string | undefined): boolean => c !== undefined && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z"))
const isLcAlpha = (c: string | undefined): boolean => c !== undefined && c >= "a" && c <= "z"
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/

class Parser {
  pos = 0
  constructor(readonly input: string) {}

  fail(what: string): never {
    throw new SfError(`${what} at ${this.pos}`)
  }
  peek(): string | undefined {
    return this.input[this.pos]
  }
  eof(): boolean {
    return this.pos >= this.input.length
  }
  skipSP(): void {
    while (this.peek() === " ") this.pos++
  }
  skipOWS(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++
  }

  list(): Array<Member> {
    const members: Array<Member> = []
    this.skipSP()
    if (this.eof()) return members
    for (;;) {
      members.push(this.peek() === "(" ? this.innerList() : this.item())
      this.skipOWS()
      if (this.eof()) return members
      if (this.peek() !== ",") this.fail("expected ','")
      this.pos++
      this.skipOWS()
      if (this.eof()) this.fail("trailing ','")
    }
  }

  innerList(): InnerList {
    this.pos++ // "("
    const items: Array<Item> = []
    for (;;) {
      this.skipSP()
      if (this.peek() === ")") {
        this.pos++
        return { items, params: this.params() }
      }
      if (this.eof()) this.fail("unterminated inner list")
      items.push(this.item())
      const c = this.peek()
      if (c !== " " && c !== ")") this.fail("expected ' ' or ')'")
    }
  }

  item(): Item {
    const value = this.bare()
    return { value, params: this.params() }
  }

  params(): Map<string, BareItem> {
    const params = new Map<string, BareItem>()
    while (this.peek() === ";") {
      this.pos++
      this.skipSP()
      const key = this.key()
      let value: BareItem = true
      if (this.peek() === "=") {
        this.pos++
        value = this.bare()
      }
      // RFC 9651 §4.2.3.2: a repeated key overwrites, keeping its first position
      params.set(key, value)
    }
    return params
  }

  key(): string {
    const first = this.peek()
    if (!(isLcAlpha(first) || first === "*")) this.fail("expected a key")
    const start = this.pos
    for (;;) {
      const c = this.peek()
      if (c === undefined || !(isLcAlpha(c) || isDigit(c) || c === "_" || c === "-" || c === "." || c === "*")) break
      this.pos++
    }
    return this.input.slice(start, this.pos)
  }

  bare(): BareItem {
    const c = this.peek()
    if (c === "-" || isDigit(c)) return this.number()
    if (c === "\"") return this.string()
    if (c === "*" || isAlpha(c)) return { token: this.token() }
    if (c === ":") return { bytes: this.bytes() }
    if (c === "?") return this.boolean()
    if (c === "@") {
      this.pos++
      const n = this.number()
      if (!Number.isInteger(n)) this.fail("a date must be an integer")
      return { date: n }
    }
    return this.fail("expected a bare item")
  }

  number(): number {
    let sign = 1
    if (this.peek() === "-") {
      sign = -1
      this.pos++
    }
    if (!isDigit(this.peek())) this.fail("expected a digit")
    let digits = ""
    let decimal = false
    for (;;) {
      const c = this.peek()
      if (isDigit(c)) digits += c
      else if (c === "." && !decimal) {
        if (digits.length > 12) this.fail("decimal integer part too long")
        decimal = true
        digits += c
      } else break
      this.pos++
      if (!decimal && digits.length > 15) this.fail("integer too long")
      if (decimal && digits.length > 16) this.fail("decimal too long")
    }
    if (decimal) {
      if (digits.endsWith(".")) this.fail("decimal ends with '.'")
      if (digits.length - digits.indexOf(".") - 1 > 3) this.fail("more than 3 fraction digits")
    }
    const n = sign * Number(digits)
    return n
  }

  string(): string {
    this.pos++ // opening quote
    let out = ""
    for (;;) {
      const c = this.peek()
      if (c === undefined) this.fail("unterminated string")
      this.pos++
      if (c === "\\") {
        const next = this.peek()
        if (next !== "\"" && next !== "\\") this.fail("bad escape")
        out += next
        this.pos++
      } else if (c === "\"") return out
      else {
        const code = c.charCodeAt(0)
        if (code < 0x20 || code > 0x7e) this.fail("non-printable character in string")
        out += c
      }
    }
  }

  token(): string {
    const start = this.pos
    this.pos++
    for (;;) {
      const c = this.peek()
      if (c === undefined || !(TCHAR.test(c) || c === ":" || c === "/")) break
      this.pos++
    }
    return this.input.slice(start, this.pos)
  }

  bytes(): Uint8Array {
    this.pos++ // ":"
    const end = this.input.indexOf(":", this.pos)
    if (end === -1) this.fail("unterminated byte sequence")
    const text = this.input.slice(this.pos, end)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) this.fail("bad base64")
    this.pos = end + 1
    return new Uint8Array(Buffer.from(text, "base64"))
  }

  boolean(): boolean {
    this.pos++ // "?"
    const c = this.peek()
    if (c !== "0" && c !== "1") this.fail("expected ?0 or ?1")
    this.pos++
    return c === "1"
  }
}

/**
 * Parses a List field value (RFC 9651 §4.2.1). Several field lines of one name are one value,
 * joined with `", "` (as Node and `fetch` join them).
 *
 * @internal
 */
export const parseList = (input: string): Parsed<ReadonlyArray<Member>> => {
  const parser = new Parser(input)
  try {
    const value = parser.list()
    return { ok: true, value }
  } catch (error) {
    if (error instanceof SfError) return { ok: false, error: error.message }
    throw error
  }
}

/** @internal */
export const isInnerList = (member: Member): member is InnerList => "items" in member

/**
 * A Byte Sequence's bytes as UTF-8 text, or undefined when the item is not a Byte Sequence.
 *
 * @internal
 */
export const bytesText = (value: BareItem | undefined): string | undefined =>
  typeof value === "object" && "bytes" in value ? Buffer.from(value.bytes).toString("utf8") : undefined
