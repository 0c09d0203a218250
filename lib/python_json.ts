/**
 * The JSON text Python's `json.dumps(json.loads(text), separators=(",", ":"),
 * sort_keys=True)` writes, computed from the text on the wire. The original worker signs
 * that re-serialisation of its body, not the bytes its HTTP client sends, so the relay has
 * to rebuild it exactly:
 *
 * - keys sorted by code point at every level (Python compares code points; JavaScript's
 *   default sort compares UTF-16 units, which orders U+FFFF after U+1F600);
 * - a repeated key keeps its last value, as `json.loads` does;
 * - every character outside printable ASCII (space to `~`) escaped as lowercase `\uXXXX`,
 *   astral characters as their surrogate pair, DEL (U+007F) included; `\n`, `\r`, `\t`,
 *   `\b`, `\f`, `\"`, `\\` in their short forms; `/` as it is;
 * - numbers as Python prints them after reading them: a number without `.`, `e` or `E` is an
 *   int, exact at any size (`12345678901234567890` stays, `-0` becomes `0`); any other is a
 *   float printed by `repr` (`1.0`, `1e+16`, `1e-05`, `-0.0`, `1E400` → `Infinity`);
 * - like Python 3.11+, an int of more than 4300 digits is refused.
 *
 * Invalid JSON (and `NaN`/`Infinity` literals, which `JSON.parse` refuses too) throws.
 */

const MAX_INT_DIGITS = 4300;

/** Re-serialises JSON `text` the way Python's sorted, compact `json.dumps` would. */
export function pythonCanonicalJson(text: string, maxDepth = 64): string {
  const parser = new Parser(text, maxDepth);
  parser.skipSpace();
  const out = parser.value(0);
  parser.skipSpace();
  if (parser.pos !== text.length) parser.fail("unexpected text after the value");
  return out;
}

/** `repr(float)` in Python: shortest round-trip digits, exponent past 1e16 or below 1e-4. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mantissa, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  const exp = Number(expText);
  const decpt = exp + 1; // value = 0.DIGITS × 10^decpt
  if (decpt <= -4 || decpt > 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const e = String(Math.abs(exp)).padStart(2, "0");
    return `${sign}${digits[0]}${rest}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt < digits.length) return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
}

/** A JSON string literal as Python writes it with `ensure_ascii=True`. */
export function pythonJsonString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0x20 && unit <= 0x7e) {
      out += unit === 0x22 ? '\\"' : unit === 0x5c ? "\\\\" : value[i];
      continue;
    }
    const short = SHORT_ESCAPES[unit];
    out += short ?? `\\u${unit.toString(16).padStart(4, "0")}`;
  }
  return out + '"';
}

const SHORT_ESCAPES: Record<number, string> = {
  0x08: "\\b",
  0x09: "\\t",
  0x0a: "\\n",
  0x0c: "\\f",
  0x0d: "\\r",
};

const UNESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** Compares two strings by code point, as Python's `sorted` does. */
function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return (a.length - i) - (b.length - j);
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

class Parser {
  pos = 0;
  readonly #text: string;
  readonly #maxDepth: number;

  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
  }

  fail(why: string): never {
    throw new SyntaxError(`Invalid JSON at ${this.pos}: ${why}`);
  }

  skipSpace(): void {
    const t = this.#text;
    while (this.pos < t.length) {
      const ch = t[this.pos];
      if (ch !== " " && ch !== "\t" && ch !== "\n" && ch !== "\r") break;
      this.pos++;
    }
  }

  value(depth: number): string {
    if (depth > this.#maxDepth) this.fail("nested too deeply");
    const ch = this.#text[this.pos];
    if (ch === "{") return this.#object(depth);
    if (ch === "[") return this.#array(depth);
    if (ch === '"') return pythonJsonString(this.#string());
    for (const literal of ["true", "false", "null"]) {
      if (this.#text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return literal;
      }
    }
    return this.#number();
  }

  #expect(ch: string): void {
    if (this.#text[this.pos] !== ch) this.fail(`expected "${ch}"`);
    this.pos++;
  }

  #object(depth: number): string {
    this.#expect("{");
    const members = new Map<string, string>();
    this.skipSpace();
    if (this.#text[this.pos] === "}") {
      this.pos++;
      return "{}";
    }
    for (;;) {
      this.skipSpace();
      if (this.#text[this.pos] !== '"') this.fail("expected a key");
      const key = this.#string();
      this.skipSpace();
      this.#expect(":");
      this.skipSpace();
      members.set(key, this.value(depth + 1));
      this.skipSpace();
      if (this.#text[this.pos] === ",") {
        this.pos++;
        continue;
      }
      this.#expect("}");
      break;
    }
    const keys = [...members.keys()].sort(compareCodePoints);
    return `{${keys.map((k) => `${pythonJsonString(k)}:${members.get(k)}`).join(",")}}`;
  }

  #array(depth: number): string {
    this.#expect("[");
    const items: string[] = [];
    this.skipSpace();
    if (this.#text[this.pos] === "]") {
      this.pos++;
      return "[]";
    }
    for (;;) {
      this.skipSpace();
      items.push(this.value(depth + 1));
      this.skipSpace();
      if (this.#text[this.pos] === ",") {
        this.pos++;
        continue;
      }
      this.#expect("]");
      break;
    }
    return `[${items.join(",")}]`;
  }

  #string(): string {
    const t = this.#text;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const unit = t.charCodeAt(this.pos);
      if (unit === 0x22) break;
      if (unit < 0x20) this.fail("control character in a string");
      if (unit !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const esc = t[this.pos + 1];
      if (esc === "u") {
        const hex = t.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else {
        const plain = esc === undefined ? undefined : UNESCAPES[esc];
        if (plain === undefined) this.fail("bad escape");
        out += plain;
        this.pos += 2;
      }
      start = this.pos;
    }
    out += t.slice(start, this.pos);
    this.pos++; // closing quote
    return out;
  }

  #number(): string {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.#text);
    if (!match) this.fail("unexpected character");
    this.pos += match[0].length;
    const lexeme = match[0];
    if (match[1] === undefined && match[2] === undefined) {
      const digits = lexeme.replace("-", "");
      if (digits.length > MAX_INT_DIGITS) this.fail("integer has too many digits");
      return BigInt(lexeme).toString();
    }
    return pythonFloatRepr(Number(lexeme));
  }
}
