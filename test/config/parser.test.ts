/**
 * Tests for the NATS conf parser: one table of accepted syntax with expected values, one table
 * of rejected input checking that every error names its line, plus includes and variables.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfParseError, parseConf, parseConfFile } from "../../src/config/parser.js";
import type { ConfMap } from "../../src/config/parser.js";
import { SEED_CONF } from "../helpers/seed.js";


const KI = 1024;

const VALID: ReadonlyArray<{ name: string; text: string; want: ConfMap }> = [
  { name: "empty document", text: "", want: {} },
  { name: "only comments", text: "# one\n// two\n   # three", want: {} },
  { name: "colon separator", text: "a: 1", want: { a: 1 } },
  { name: "equals separator", text: "a = 1", want: { a: 1 } },
  { name: "whitespace separator", text: "a 1\nb\t2", want: { a: 1, b: 2 } },
  { name: "no space around separator", text: "a:1\nb=2", want: { a: 1, b: 2 } },
  { name: "hash comment after value", text: "a: 1 # note\nb: 2", want: { a: 1, b: 2 } },
  { name: "slash comment after value", text: "a: x // note\nb: 2", want: { a: "x", b: 2 } },
  { name: "comma and semicolon end values", text: "a: 1, b: 2; c: 3", want: { a: 1, b: 2, c: 3 } },
  { name: "trailing separators", text: "a: 1,\nb: 2;\n", want: { a: 1, b: 2 } },
  { name: "CRLF line ends", text: "a: 1\r\nb: two\r\n", want: { a: 1, b: "two" } },
  { name: "map after key without separator", text: "http { port: 1 }", want: { http: { port: 1 } } },
  { name: "map glued to key", text: "http{port:1}", want: { http: { port: 1 } } },
  { name: "map with separator", text: "http: { port = 1 }", want: { http: { port: 1 } } },
  { name: "map opened on the next line", text: "http\n{\n  port: 1\n}", want: { http: { port: 1 } } },
  {
    name: "nested maps over lines",
    text: "a {\n  b {\n    c: 1\n  }\n  d: 2\n}\n",
    want: { a: { b: { c: 1 }, d: 2 } },
  },
  { name: "map entries separated by commas", text: "m { a: 1, b: 2, }", want: { m: { a: 1, b: 2 } } },
  {
    name: "top level braces (JSON)",
    text: '{\n  "a": 1,\n  "b": {"c": [1, 2], "d": "x"},\n  "e": true\n}\n',
    want: { a: 1, b: { c: [1, 2], d: "x" }, e: true },
  },
  { name: "double-quoted key", text: '"a key": 1', want: { "a key": 1 } },
  { name: "single-quoted key", text: "'k:x' = 2", want: { "k:x": 2 } },
  { name: "keys keep their case", text: "OperatorJWTPath: x", want: { OperatorJWTPath: "x" } },
  { name: "array with commas", text: "a: [1, 2, 3]", want: { a: [1, 2, 3] } },
  { name: "array with new lines", text: "a: [\n  1\n  2\n]", want: { a: [1, 2] } },
  { name: "array trailing comma", text: "a: [1, 2,]", want: { a: [1, 2] } },
  { name: "array with comments", text: "a: [\n 1 # one\n // skip\n 2\n]", want: { a: [1, 2] } },
  { name: "empty array", text: "a: []", want: { a: [] } },
  { name: "nested arrays and maps", text: "a: [[1], {b: 2}, x]", want: { a: [[1], { b: 2 }, "x"] } },
  { name: "unquoted URL in array", text: "s: [nats://localhost:4222]", want: { s: ["nats://localhost:4222"] } },
  {
    name: "unquoted URLs",
    text: "u: nats://127.0.0.1:4222\nv: http://h/p?q=1",
    want: { u: "nats://127.0.0.1:4222", v: "http://h/p?q=1" },
  },
  { name: "unquoted string ends at '}'", text: "m {a: b}", want: { m: { a: "b" } } },
  { name: "unquoted path", text: "dir: ./store/x", want: { dir: "./store/x" } },
  {
    name: "double-quoted escapes",
    text: String.raw`s: "t\tn\nr\rq\"b\\x\x41"`,
    want: { s: 't\tn\nr\rq"b\\xA' },
  },
  { name: "hex escapes form UTF-8", text: String.raw`s: "caf\xc3\xa9"`, want: { s: "café" } },
  { name: "double-quoted keeps '#' and '//'", text: 's: "a # b // c"', want: { s: "a # b // c" } },
  { name: "single-quoted is raw", text: String.raw`s: 'a\tb\q'`, want: { s: String.raw`a\tb\q` } },
  { name: "quoted true is a string", text: 's: "true"', want: { s: "true" } },
  { name: "quoted number is a string", text: 's: "42"', want: { s: "42" } },
  {
    name: "block string",
    text: "b (\n  line one\n  line two\n)\nnext: 1",
    want: { b: "\n  line one\n  line two", next: 1 },
  },
  { name: "block keeps inner parentheses", text: "b (\nf(x)\n)", want: { b: "\nf(x)" } },
  {
    name: "booleans",
    text: "a: true\nb: FALSE\nc: yes\nd: No\ne: on\nf: OFF",
    want: { a: true, b: false, c: true, d: false, e: true, f: false },
  },
  { name: "integers", text: "a: 0\nb: 42\nc: 007", want: { a: 0, b: 42, c: 7 } },
  { name: "negative numbers", text: "a: -1\nb: -2.5\nc: -2k", want: { a: -1, b: -2.5, c: -2000 } },
  { name: "floats", text: "a: 3.14\nb: 0.5", want: { a: 3.14, b: 0.5 } },
  {
    name: "decimal size suffixes",
    text: "k: 1k\nK: 2K\nm: 1m\ng: 1G\nt: 1t\np: 1p\ne: 1e",
    want: { k: 1000, K: 2000, m: 1e6, g: 1e9, t: 1e12, p: 1e15, e: 1e18 },
  },
  {
    name: "binary size suffixes",
    text: "a: 1kb\nb: 1Ki\nc: 2KiB\nd: 1mb\ne: 1MI\nf: 1MiB\ng: 1gb\nh: 1tb\ni: 1pb\nj: 1eb",
    want: {
      a: KI,
      b: KI,
      c: 2 * KI,
      d: KI ** 2,
      e: KI ** 2,
      f: KI ** 2,
      g: KI ** 3,
      h: KI ** 4,
      i: KI ** 5,
      j: KI ** 6,
    },
  },
  {
    name: "IPv4-looking values are strings",
    text: "a: 127.0.0.1\nb: 10.0.0.1:4222",
    want: { a: "127.0.0.1", b: "10.0.0.1:4222" },
  },
  {
    name: "digit-led words are strings",
    text: "a: 43a\nb: 5s\nc: 500ms\nd: 1.5s\ne: 1h30m",
    want: { a: "43a", b: "5s", c: "500ms", d: "1.5s", e: "1h30m" },
  },
  {
    name: "Zulu datetime",
    text: "d: 2019-05-31T16:47:50Z",
    want: { d: new Date(Date.UTC(2019, 4, 31, 16, 47, 50)) },
  },
  {
    name: "bcrypt hash is not a variable",
    text: "p: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG",
    want: { p: "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG" },
  },
  { name: "later duplicate key wins", text: "a: 1\nb: 2\na: 3", want: { b: 2, a: 3 } },
  { name: "key named include with separator", text: "include: 5", want: { include: 5 } },
  {
    name: "user's document",
    text: SEED_CONF,
    want: {
      operatorjwtpath: "/users/synadia/.nsc/nats/AAA/AAA.jwt",
      systemaccountjwtpath: "/users/synadia/.nsc/nats/AAA/accounts/SYS/SYS.jwt",
      http: { port: 9090 },
      store: { dir: "/tmp/as_store", readonly: false, shard: true },
      nats: {
        servers: ["nats://localhost:4222"],
        usercredentials: "/Users/synadia/.nkeys/AAA/accounts/SYS/users/sys.creds",
      },
    },
  },
];

const INVALID: ReadonlyArray<{ name: string; text: string; line: number; contains: string }> = [
  { name: "unknown escape", text: 'a: 1\nb: "x\\qy"', line: 2, contains: "invalid escape" },
  { name: "bad hex escape", text: 'a: 1\n\nb: "\\xZZ"', line: 3, contains: "hexadecimal" },
  { name: "unterminated double quote", text: 'a: 1\nb: "abc\nc: 2', line: 2, contains: "missing its closing" },
  { name: "unterminated single quote", text: "a: 'abc", line: 1, contains: "missing its closing" },
  { name: "unclosed map", text: "a {\n  b: 1\n", line: 3, contains: "line 1 is missing its closing '}'" },
  { name: "unclosed array", text: "a: [1,\n2\n", line: 3, contains: "missing its closing ']'" },
  { name: "stray closing brace", text: "a: 1\n}\n", line: 2, contains: "unexpected '}'" },
  { name: "key without value", text: "a: 1\nb:\nc: 2", line: 2, contains: "key 'b' has no value" },
  { name: "key alone on a line", text: "a: 1\nlonely\nc: 2", line: 2, contains: "key 'lonely' has no value" },
  { name: "key at end of file", text: "a: 1\nb", line: 2, contains: "key 'b' has no value" },
  { name: "two values", text: "a: 1\nb: foo bar", line: 2, contains: "after the value of 'b'" },
  { name: "double comma in array", text: "a: [\n1,,2]", line: 2, contains: "unexpected ','" },
  { name: "missing array separator", text: "a: [1 2]", line: 1, contains: "expected ',' or ']'" },
  { name: "separator without key", text: "a: 1\n: 2", line: 2, contains: "separator" },
  { name: "integer out of range", text: "\na: 99999999999999999999", line: 2, contains: "out of range" },
  { name: "size out of range", text: "a: 9000000e", line: 1, contains: "out of range" },
  { name: "impossible date", text: "a: 1\nd: 2019-02-30T00:00:00Z", line: 2, contains: "invalid datetime" },
  { name: "unterminated block", text: "a: 1\nb (\ntext\n )x\n", line: 2, contains: "block opened on line 2" },
  {
    name: "undefined variable",
    text: "a: 1\n\nb: $NOPE_NOT_DEFINED_X",
    line: 3,
    contains: "variable reference for 'NOPE_NOT_DEFINED_X' on line 3 can not be found",
  },
  { name: "bare dollar", text: "a: $", line: 1, contains: "variable name" },
  { name: "garbage after top-level braces", text: "{ a: 1 }\nb: 2", line: 2, contains: "after the closing '}'" },
  { name: "include without a name", text: "a: 1\ninclude  \n", line: 2, contains: "include needs a file name" },
  { name: "missing include file", text: "include ./no/such/file.conf", line: 1, contains: "cannot read include file" },
];

describe("parseConf: accepted syntax", () => {
  for (const tc of VALID) {
    it(tc.name, () => {
      assert.deepStrictEqual(parseConf(tc.text, { env: {} }).value, tc.want);
    });
  }
});

describe("parseConf: rejected input names the line", () => {
  for (const tc of INVALID) {
    it(tc.name, () => {
      assert.throws(
        () => parseConf(tc.text, { file: "/cfg/test.conf", env: {} }),
        (err: unknown) => {
          assert.ok(err instanceof ConfParseError, `not a ConfParseError: ${String(err)}`);
          assert.equal(err.line, tc.line, err.message);
          assert.equal(err.file, "/cfg/test.conf");
          assert.ok(err.message.startsWith(`/cfg/test.conf:${tc.line}: `), err.message);
          assert.ok(err.message.includes(tc.contains), err.message);
          return true;
        },
      );
    });
  }
});

describe("parseConf: positions", () => {
  it("records file, line and column of every key, and of array elements", () => {
    const { value, positions } = parseConf("a: 1\nhttp {\n  port: 9090\n}\nlist: [x,\n  y]\n", {
      file: "/cfg/p.conf",
      env: {},
    });
    assert.deepStrictEqual(positions.get(value)?.get("a"), { file: "/cfg/p.conf", line: 1, col: 1, raw: "1" });
    assert.deepStrictEqual(positions.get(value)?.get("http"), { file: "/cfg/p.conf", line: 2, col: 1 });
    const http = value.http as ConfMap;
    assert.deepStrictEqual(positions.get(http)?.get("port"), {
      file: "/cfg/p.conf",
      line: 3,
      col: 3,
      raw: "9090",
    });
    const list = value.list as unknown[];
    assert.equal(positions.get(list)?.get("1")?.line, 6);
  });

  it("uses a placeholder file name for plain text", () => {
    assert.throws(() => parseConf("a: 'x"), /^ConfParseError: <string>:1: /);
    assert.throws(() => parseConf("a: 'x"), (e: unknown) => e instanceof ConfParseError && e.file === "<string>");
  });
});

describe("parseConf: variables", () => {
  it("resolves from earlier keys of the same map", () => {
    assert.deepStrictEqual(parseConf("p: 4222\nport: $p", { env: {} }).value, { p: 4222, port: 4222 });
  });

  it("resolves from enclosing maps, innermost first", () => {
    const text = "v: outer\nw: top\nm {\n  v: inner\n  n { a: $v, b: $w }\n}\n";
    const got = parseConf(text, { env: {} }).value;
    assert.deepStrictEqual((got.m as ConfMap).n, { a: "inner", b: "top" });
  });

  it("does not see keys defined later", () => {
    assert.throws(() => parseConf("a: $b\nb: 1", { env: {} }), /variable reference for 'b' on line 1 can not be found/);
  });

  it("does not see keys of sibling maps", () => {
    assert.throws(() => parseConf("x { v: 1 }\ny { w: $v }", { env: {} }), /'v' on line 2/);
  });

  it("works inside arrays and keeps map values", () => {
    const got = parseConf("t { a: 1 }\nl: [$t, 2]", { env: {} }).value;
    assert.deepStrictEqual(got.l, [{ a: 1 }, 2]);
  });

  it("falls back to the environment, parsing the value", () => {
    const env = { PORT: "8222", LIST: "[a, b]", FLAG: "yes", SIZE: "2k", TEXT: "hello world" };
    const got = parseConf("a: $PORT\nb: $LIST\nc: $FLAG\nd: $SIZE\ne: $TEXT", { env }).value;
    assert.deepStrictEqual(got, { a: 8222, b: ["a", "b"], c: true, d: 2000, e: "hello world" });
  });

  it("prefers config keys over the environment", () => {
    assert.deepStrictEqual(parseConf("X: 1\na: $X", { env: { X: "2" } }).value, { X: 1, a: 1 });
  });

  it("does not loop on self-referencing environment values", () => {
    assert.deepStrictEqual(parseConf("a: $LOOP", { env: { LOOP: "$LOOP" } }).value, { a: "$LOOP" });
  });

  it("does not expand variables inside quotes", () => {
    assert.deepStrictEqual(parseConf('a: 1\nb: "$a"', { env: {} }).value, { a: 1, b: "$a" });
  });
});

describe("parseConf: include", () => {
  const dir = mkdtempSync(join(tmpdir(), "conf-include-"));
  writeFileSync(join(dir, "main.conf"), "a: 1\ninclude ./sub/inc.conf\nafter: $fromInc\n");
  mkdirSync(join(dir, "sub"));
  writeFileSync(join(dir, "sub", "inc.conf"), "# included\nfromInc: 7\nhttp { port: 1 }\nuseOuter: $a\ninclude 'deeper.conf'\n");
  writeFileSync(join(dir, "sub", "deeper.conf"), "deep: yes\n");
  writeFileSync(join(dir, "nested.conf"), 'http {\n  include "sub/port.conf"\n  host: h\n}\n');
  writeFileSync(join(dir, "sub", "port.conf"), "port: 8080\n");
  writeFileSync(join(dir, "cycle1.conf"), "include cycle2.conf\n");
  writeFileSync(join(dir, "cycle2.conf"), "x: 1\ninclude cycle1.conf\n");
  writeFileSync(join(dir, "bad.conf"), "ok: 1\ninclude bad-inc.conf\n");
  writeFileSync(join(dir, "bad-inc.conf"), "a: 1\nb: \"\\q\"\n");

  it("merges top-level keys, relative to the including file's directory", () => {
    const { value, positions } = parseConfFile(join(dir, "main.conf"), { env: {} });
    assert.deepStrictEqual(value, {
      a: 1,
      fromInc: 7,
      http: { port: 1 },
      useOuter: 1,
      deep: true,
      after: 7,
    });
    assert.deepStrictEqual(positions.get(value)?.get("fromInc"), {
      file: join(dir, "sub", "inc.conf"),
      line: 2,
      col: 1,
      raw: "7",
    });
    assert.equal(positions.get(value)?.get("deep")?.file, join(dir, "sub", "deeper.conf"));
  });

  it("works inside a map", () => {
    assert.deepStrictEqual(parseConfFile(join(dir, "nested.conf"), { env: {} }).value, {
      http: { port: 8080, host: "h" },
    });
  });

  it("detects cycles", () => {
    assert.throws(
      () => parseConfFile(join(dir, "cycle1.conf"), { env: {} }),
      (e: unknown) => e instanceof ConfParseError && /include cycle/.test(e.message) && e.line === 2,
    );
  });

  it("reports errors with the included file and its line", () => {
    assert.throws(
      () => parseConfFile(join(dir, "bad.conf"), { env: {} }),
      (e: unknown) => e instanceof ConfParseError && e.file === join(dir, "bad-inc.conf") && e.line === 2,
    );
  });

  it("uses the injected reader", () => {
    const files: Record<string, string> = { "/virt/a.conf": "include b.conf\nx: $y", "/virt/b.conf": "y: 5" };
    const readFile = (p: string): string => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT ${p}`);
      return t;
    };
    assert.deepStrictEqual(parseConfFile("/virt/a.conf", { env: {}, readFile }).value, { y: 5, x: 5 });
  });

  it("reports an unreadable main file", () => {
    assert.throws(() => parseConfFile(join(dir, "missing.conf")), /cannot read configuration file/);
  });
});
