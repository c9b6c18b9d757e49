/**
 * Parser for the NATS server configuration format (the syntax of nats-server `.conf` files),
 * producing plain values plus the file/line of every key so later layers can point at mistakes.
 */

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface ConfPos {
  file: string;
  line: number;
  col: number;
  /**
   * Source text of an unquoted numeric value, kept because `2m` means 2 000 000 to the parser
   * while a duration setting would rather read it as two minutes.
   */
  raw?: string;
}

export type ConfValue = string | number | boolean | Date | ConfValue[] | ConfMap;

export interface ConfMap {
  [key: string]: ConfValue;
}

/** Label used as `file` when text is parsed without a file name. */
export const TEXT_SOURCE = "<string>";

export class ConfParseError extends Error {
  readonly file: string;
  readonly line: number;

  constructor(file: string, line: number, detail: string) {
    super(line > 0 ? `${file}:${line}: ${detail}` : `${file}: ${detail}`);
    this.name = "ConfParseError";
    this.file = file;
    this.line = line;
  }
}

export interface ParseOptions {
  file?: string;
  env?: Record<string, string | undefined>;
  readFile?: (absPath: string) => string;
}

export interface ParsedConf {
  value: ConfMap;
  /** For each map (and array) object: key (or index) → where it was written. */
  positions: Map<object, Map<string, ConfPos>>;
}

export function parseConf(text: string, opts: ParseOptions = {}): ParsedConf {
  const file = opts.file ?? TEXT_SOURCE;
  return parseText(text, {
    file,
    // Without a file there is no better anchor for includes than the working directory.
    dir: opts.file === undefined ? process.cwd() : dirname(resolve(opts.file)),
    env: opts.env ?? process.env,
    readFile: opts.readFile ?? defaultReadFile,
    includeStack: opts.file === undefined ? [] : [resolve(opts.file)],
    outerScopes: [],
    envInProgress: new Set(),
    positions: new Map(),
  });
}

export function parseConfFile(path: string, opts: Omit<ParseOptions, "file"> = {}): ParsedConf {
  const abs = resolve(path);
  const readFile = opts.readFile ?? defaultReadFile;
  let text: string;
  try {
    text = readFile(abs);
  } catch (err) {
    throw new ConfParseError(abs, 0, `cannot read configuration file: ${errorText(err)}`);
  }
  return parseConf(text, { ...opts, file: abs });
}

function defaultReadFile(absPath: string): string {
  return readFileSync(absPath, "utf8");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Context {
  file: string;
  dir: string;
  env: Record<string, string | undefined>;
  readFile: (absPath: string) => string;
  /** Absolute paths of the files currently being parsed, outermost first (cycle detection). */
  includeStack: string[];
  /** Maps of the including file that are still open, so an included file can use their variables. */
  outerScopes: ConfMap[];
  /** Environment variables being expanded right now; stops `A=$A` from recursing forever. */
  envInProgress: Set<string>;
  positions: Map<object, Map<string, ConfPos>>;
  /** Maps and arrays open around this text (an include continues its includer's nesting). */
  depth?: number;
}

/**
 * Deepest nesting of maps and arrays accepted. Real configurations stay under ten; the limit
 * turns a hostile or broken file into a parse error instead of a stack overflow.
 */
export const MAX_NESTING = 128;

function parseText(text: string, ctx: Context): ParsedConf {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const root = new Parser(src, ctx).document();
  return { value: root, positions: ctx.positions };
}

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  on: true,
  false: false,
  no: false,
  off: false,
};

const SIZE_SUFFIXES: ReadonlyMap<string, bigint> = (() => {
  const m = new Map<string, bigint>();
  ["k", "m", "g", "t", "p", "e"].forEach((letter, i) => {
    const exp = BigInt(i + 1);
    m.set(letter, 1000n ** exp);
    for (const s of ["b", "i", "ib"]) m.set(letter + s, 1024n ** exp);
  });
  return m;
})();

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// bcrypt hashes are commonly written unquoted in NATS configs; they must not be taken as variables.
const BCRYPT_PREFIXES = ["$2a$", "$2b$", "$2y$"];

const ZULU = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

function isBlank(c: string): boolean {
  return c === " " || c === "\t";
}

function isNewline(c: string): boolean {
  return c === "\n" || c === "\r";
}

/** Characters that end an unquoted value. */
function endsBare(c: string): boolean {
  return c === "" || isBlank(c) || isNewline(c) || c === "," || c === ";" || c === "]" || c === "}";
}

function describe(c: string): string {
  if (c === "") return "end of file";
  if (c === "\n" || c === "\r") return "new line";
  return `'${c}'`;
}

class Parser {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  /** Maps currently open in this file, outermost first: the variable scopes. */
  private readonly scopes: ConfMap[] = [];
  private depth: number;

  private readonly src: string;
  private readonly ctx: Context;

  constructor(src: string, ctx: Context) {
    this.src = src;
    this.ctx = ctx;
    this.depth = ctx.depth ?? 0;
  }

  /** Enter a map or array; fails past MAX_NESTING. */
  private nest(): void {
    if (++this.depth > MAX_NESTING) this.fail(`maps and arrays are nested more than ${MAX_NESTING} deep`);
  }

  document(): ConfMap {
    const root = this.newMap();
    this.scopes.push(root);
    this.skipBlankAndComments(true);
    if (this.peek() === "{") {
      const openLine = this.line;
      this.advance();
      this.mapBody(root, openLine);
      this.skipBlankAndComments(true);
      if (this.peek() !== "") {
        this.fail(`unexpected ${describe(this.peek())} after the closing '}' of the top-level map`);
      }
    } else {
      this.mapBody(root, 0);
    }
    return root;
  }

  // ---- character level -------------------------------------------------------------------

  private peek(offset = 0): string {
    return this.src.charAt(this.i + offset);
  }

  private advance(): string {
    const c = this.src.charAt(this.i);
    if (c === "") return c;
    this.i++;
    if (c === "\n") {
      this.line++;
      this.lineStart = this.i;
    }
    return c;
  }

  private pos(): ConfPos {
    return { file: this.ctx.file, line: this.line, col: this.i - this.lineStart + 1 };
  }

  private fail(detail: string, line = this.line): never {
    throw new ConfParseError(this.ctx.file, line, detail);
  }

  private atComment(): boolean {
    const c = this.peek();
    return c === "#" || (c === "/" && this.peek(1) === "/");
  }

  private skipComment(): void {
    while (this.peek() !== "" && !isNewline(this.peek())) this.advance();
  }

  private skipSpaces(): void {
    while (isBlank(this.peek())) this.advance();
  }

  /** Skips whitespace, new lines and comments; with `separators`, also stray `,` and `;`. */
  private skipBlankAndComments(separators: boolean): void {
    for (;;) {
      const c = this.peek();
      if (isBlank(c) || isNewline(c) || (separators && (c === "," || c === ";"))) {
        this.advance();
      } else if (this.atComment()) {
        this.skipComment();
      } else {
        return;
      }
    }
  }

  // ---- maps ------------------------------------------------------------------------------

  private newMap(): ConfMap {
    const m: ConfMap = {};
    this.ctx.positions.set(m, new Map());
    return m;
  }

  /** Sets a key so that iteration order follows the last definition (later duplicates win). */
  private setKey(map: ConfMap, key: string, value: ConfValue, pos: ConfPos): void {
    delete map[key];
    // defineProperty keeps a key such as "__proto__" an ordinary entry.
    Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
    this.ctx.positions.get(map)?.set(key, pos);
  }

  /** Parses entries until the map's `}` (openLine > 0) or end of file (top level). */
  private mapBody(map: ConfMap, openLine: number): void {
    for (;;) {
      this.skipBlankAndComments(true);
      const c = this.peek();
      if (c === "") {
        if (openLine > 0) this.fail(`map opened on line ${openLine} is missing its closing '}'`);
        return;
      }
      if (c === "}") {
        if (openLine === 0) this.fail("unexpected '}' without a matching '{'");
        this.advance();
        return;
      }
      const key = this.entry(map);
      this.valueEnd(key, openLine > 0);
    }
  }

  /** Parses one `key value` (or `include file`) entry and returns the key for error messages. */
  private entry(map: ConfMap): string {
    const keyPos = this.pos();
    const { key, quoted } = this.key();

    if (!quoted && key.toLowerCase() === "include" && isBlank(this.peek())) {
      this.skipSpaces();
      const next = this.peek();
      if (next !== ":" && next !== "=") {
        this.include(map, keyPos.line);
        return key;
      }
    }

    this.skipSpaces();
    let c = this.peek();
    if (c === ":" || c === "=") {
      this.advance();
      this.skipSpaces();
      c = this.peek();
    } else if (isNewline(c)) {
      // A map may open on the line after its key; anything else there would be a new key.
      const save = { i: this.i, line: this.line, lineStart: this.lineStart };
      this.skipBlankAndComments(false);
      if (this.peek() !== "{") {
        this.i = save.i;
        this.line = save.line;
        this.lineStart = save.lineStart;
      }
      c = this.peek();
    }
    if (c === "" || isNewline(c) || c === "," || c === ";" || c === "}" || c === "]" || this.atComment()) {
      this.fail(`key '${key}' has no value`, keyPos.line);
    }
    const { value, raw } = this.value(keyPos.line);
    this.setKey(map, key, value, raw === undefined ? keyPos : { ...keyPos, raw });
    return key;
  }

  private key(): { key: string; quoted: boolean } {
    const c = this.peek();
    if (c === '"' || c === "'") {
      const startLine = this.line;
      this.advance();
      let key = "";
      for (;;) {
        const d = this.peek();
        if (d === "" || isNewline(d)) this.fail(`quoted key is missing its closing ${c}`, startLine);
        this.advance();
        if (d === c) return { key, quoted: true };
        key += d;
      }
    }
    if (c === ":" || c === "=") this.fail(`expected a key but found the separator '${c}'`);
    if (c === "{" || c === "[" || c === "]") this.fail(`expected a key but found '${c}'`);
    let key = "";
    for (;;) {
      const d = this.peek();
      if (d === "" || isBlank(d) || isNewline(d) || d === ":" || d === "=" || d === "{") break;
      key += this.advance();
    }
    return { key, quoted: false };
  }

  /** After a map entry: only a new line, `,`, `;`, a comment, `}` or end of file may follow. */
  private valueEnd(key: string, nested: boolean): void {
    this.skipSpaces();
    const c = this.peek();
    if (this.atComment()) {
      this.skipComment();
      return;
    }
    if (isNewline(c) || c === "," || c === ";") {
      this.advance();
      return;
    }
    if (c === "") return;
    if (c === "}" && nested) return;
    this.fail(`expected a new line, ',' or ';' after the value of '${key}' but found ${describe(c)}`);
  }

  // ---- includes --------------------------------------------------------------------------

  private include(map: ConfMap, line: number): void {
    let name = "";
    const q = this.peek();
    if (q === '"' || q === "'") {
      this.advance();
      for (;;) {
        const d = this.peek();
        if (d === "" || isNewline(d)) this.fail(`include file name is missing its closing ${q}`, line);
        this.advance();
        if (d === q) break;
        name += d;
      }
    } else {
      while (!endsBare(this.peek())) name += this.advance();
    }
    if (name === "") this.fail("include needs a file name", line);

    const abs = resolve(this.ctx.dir, name);
    if (this.ctx.includeStack.includes(abs)) {
      this.fail(`include cycle: ${[...this.ctx.includeStack, abs].join(" -> ")}`, line);
    }
    let text: string;
    try {
      text = this.ctx.readFile(abs);
    } catch (err) {
      this.fail(`cannot read include file '${name}': ${errorText(err)}`, line);
    }
    // The included file shares positions (so its keys keep their own file/line) and may use
    // variables of the maps enclosing the include; its own keys shadow them.
    const sub = parseText(text, {
      ...this.ctx,
      file: abs,
      dir: dirname(abs),
      includeStack: [...this.ctx.includeStack, abs],
      outerScopes: [...this.ctx.outerScopes, ...this.scopes],
      depth: this.depth,
    });
    const subPositions = this.ctx.positions.get(sub.value);
    for (const [k, v] of Object.entries(sub.value)) {
      this.setKey(map, k, v, subPositions?.get(k) ?? { file: abs, line: 1, col: 1 });
    }
    this.ctx.positions.delete(sub.value);
  }

  // ---- values ----------------------------------------------------------------------------

  private value(keyLine: number): { value: ConfValue; raw?: string } {
    const c = this.peek();
    switch (c) {
      case "{": {
        const openLine = this.line;
        this.nest();
        this.advance();
        const m = this.newMap();
        this.scopes.push(m);
        this.mapBody(m, openLine);
        this.scopes.pop();
        this.depth--;
        return { value: m };
      }
      case "[": {
        this.nest();
        const arr = this.array();
        this.depth--;
        return { value: arr };
      }
      case '"':
        return { value: this.doubleQuoted() };
      case "'":
        return { value: this.singleQuoted() };
      case "(":
        return { value: this.block() };
    }
    const startLine = this.line;
    let token = "";
    while (!endsBare(this.peek())) token += this.advance();
    if (token === "") this.fail(`expected a value but found ${describe(this.peek())}`, keyLine);
    return this.bare(token, startLine);
  }

  private array(): ConfValue[] {
    const openLine = this.line;
    this.advance();
    const arr: ConfValue[] = [];
    const positions = new Map<string, ConfPos>();
    this.ctx.positions.set(arr, positions);
    for (;;) {
      this.skipBlankAndComments(false);
      const c = this.peek();
      if (c === "") this.fail(`array opened on line ${openLine} is missing its closing ']'`);
      if (c === "]") {
        this.advance();
        return arr;
      }
      if (c === "," || c === ";") this.fail(`unexpected '${c}' in array`);
      const elPos = this.pos();
      const { value, raw } = this.value(elPos.line);
      positions.set(String(arr.length), raw === undefined ? elPos : { ...elPos, raw });
      arr.push(value);

      this.skipSpaces();
      if (this.atComment()) this.skipComment();
      const d = this.peek();
      if (d === "," || isNewline(d)) {
        this.advance();
      } else if (d !== "]" && d !== "") {
        this.fail(`expected ',' or ']' after an array element but found ${describe(d)}`);
      }
    }
  }

  private doubleQuoted(): string {
    const startLine = this.line;
    this.advance();
    let out = "";
    // Consecutive \xHH escapes are collected as bytes so multi-byte UTF-8 sequences decode.
    let bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length > 0) {
        out += Buffer.from(bytes).toString("utf8");
        bytes = [];
      }
    };
    for (;;) {
      const c = this.peek();
      if (c === "") this.fail(`string starting on line ${startLine} is missing its closing '"'`, startLine);
      this.advance();
      if (c === '"') {
        flush();
        return out;
      }
      if (c !== "\\") {
        flush();
        out += c;
        continue;
      }
      const e = this.advance();
      if (e === "x") {
        const hex = this.peek() + this.peek(1);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
          this.fail(`expected two hexadecimal digits after '\\x' but found '${hex}'`);
        }
        this.advance();
        this.advance();
        bytes.push(parseInt(hex, 16));
        continue;
      }
      flush();
      const simple: Record<string, string> = { t: "\t", n: "\n", r: "\r", '"': '"', "\\": "\\" };
      const rep = simple[e];
      if (rep === undefined) {
        this.fail(
          `invalid escape '\\${e}' in string; only \\xHH, \\t, \\n, \\r, \\" and \\\\ are allowed`,
        );
      }
      out += rep;
    }
  }

  private singleQuoted(): string {
    const startLine = this.line;
    this.advance();
    let out = "";
    for (;;) {
      const c = this.peek();
      if (c === "") this.fail(`string starting on line ${startLine} is missing its closing "'"`, startLine);
      this.advance();
      if (c === "'") return out;
      out += c;
    }
  }

  /** `( ... )` block: everything up to the new line before a line holding only `)`. */
  private block(): string {
    const startLine = this.line;
    this.advance();
    const start = this.i;
    for (;;) {
      const c = this.peek();
      if (c === "") {
        this.fail(`block opened on line ${startLine} is missing a ')' alone on its own line`, startLine);
      }
      if (c === "\n") {
        const end = this.i;
        this.advance();
        let j = this.i;
        while (isBlank(this.src.charAt(j))) j++;
        if (this.src.charAt(j) === ")") {
          let k = j + 1;
          while (isBlank(this.src.charAt(k)) || this.src.charAt(k) === "\r") k++;
          const after = this.src.charAt(k);
          if (after === "\n" || after === "") {
            const content = this.src.slice(start, end).replace(/\r$/, "");
            while (this.i <= j) this.advance();
            return content;
          }
        }
        continue;
      }
      this.advance();
    }
  }

  /** Classifies an unquoted token: boolean, variable, number, datetime or plain string. */
  private bare(token: string, line: number): { value: ConfValue; raw?: string } {
    const b = BOOLEANS[token.toLowerCase()];
    if (b !== undefined) return { value: b };

    if (token.startsWith("$")) {
      if (BCRYPT_PREFIXES.some((p) => token.startsWith(p))) return { value: token };
      const name = token.slice(1);
      if (name === "") this.fail("'$' must be followed by a variable name", line);
      return { value: this.variable(name, line) };
    }

    if (/^-?\d/.test(token)) {
      const num = this.number(token, line);
      if (num !== undefined) return { value: num, raw: token };
      const date = ZULU.exec(token);
      if (date) return { value: this.date(token, date, line) };
    }
    // Anything else, including IP addresses and digit-led words like `5s` or `43a`, is text.
    return { value: token };
  }

  private number(token: string, line: number): number | undefined {
    if (/^-?\d+\.\d+$/.test(token)) return Number(token);
    const m = /^(-?\d+)([a-zA-Z]*)$/.exec(token);
    if (!m) return undefined;
    const digits = m[1] ?? "";
    const suffix = (m[2] ?? "").toLowerCase();
    const mult = suffix === "" ? 1n : SIZE_SUFFIXES.get(suffix);
    if (mult === undefined) return undefined;
    const big = BigInt(digits) * mult;
    if (big < INT64_MIN || big > INT64_MAX) this.fail(`integer '${token}' is out of range`, line);
    return Number(big);
  }

  private date(token: string, m: RegExpExecArray, line: number): Date {
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
    const valid =
      date.getUTCFullYear() === y &&
      date.getUTCMonth() === mo - 1 &&
      date.getUTCDate() === d &&
      date.getUTCHours() === h &&
      date.getUTCMinutes() === mi &&
      date.getUTCSeconds() === s;
    if (!valid) this.fail(`invalid datetime '${token}'`, line);
    return date;
  }

  // ---- variables -------------------------------------------------------------------------

  private variable(name: string, line: number): ConfValue {
    // Innermost map first; arrays are not scopes. The current map only holds keys defined so far.
    const scopes = [...this.ctx.outerScopes, ...this.scopes];
    for (let k = scopes.length - 1; k >= 0; k--) {
      const scope = scopes[k];
      if (scope && Object.hasOwn(scope, name)) return scope[name] as ConfValue;
    }
    const envValue = this.ctx.env[name];
    if (envValue !== undefined && !this.ctx.envInProgress.has(name)) {
      return this.envValue(name, envValue);
    }
    return this.fail(`variable reference for '${name}' on line ${line} can not be found`, line);
  }

  /**
   * An environment value is read as a config value (`8222` is a number, `[a, b]` a list).
   * If it does not parse, the raw text is used, since env values are often free text.
   */
  private envValue(name: string, text: string): ConfValue {
    const key = "__env_value__";
    const envInProgress = new Set(this.ctx.envInProgress).add(name);
    try {
      const sub = parseText(`${key}=${text}`, {
        ...this.ctx,
        file: `environment variable ${name}`,
        outerScopes: [],
        envInProgress,
      });
      const v = sub.value[key];
      this.ctx.positions.delete(sub.value);
      if (v !== undefined) return v;
    } catch (err) {
      if (!(err instanceof ConfParseError)) throw err;
    }
    return text;
  }
}
