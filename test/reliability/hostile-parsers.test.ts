/**
 * Property-based tests (fast-check, fixed seeds) over the config parser, the flags and the JWT
 * decoder and write-path checks: random, mutated, huge and deeply nested input only ever fails
 * with the module's own error type, and no mutation of a signed token changes what it says.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AccountRegistry } from "../../src/accounts.js";
import { ConfigError, configFromConf } from "../../src/config/schema.js";
import { ConfParseError, MAX_NESTING, parseConf } from "../../src/config/parser.js";
import { applyFlags, FlagError, parseFlags } from "../../src/config/flags.js";
import { defaultConfig } from "../../src/config/types.js";
import { isAccountServerError } from "../../src/errors.js";
import { decodeAccountJwt, decodeJwt, decodeOperatorJwt, extractJwt, peekClaims, Trust } from "../../src/jwt/index.js";
import { silentLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { accountJwt, createAccount, createOperator, createUser, makeOperator, newJti, nowSec, signJwt } from "../helpers/fixtures.js";
import { SEED_CONF } from "../helpers/seed.js";

/** Pinned seeds: a failure reproduces exactly; change them only together with the arbitraries. */
const RUNS = { seed: 0x1ce5eed, numRuns: 400 };


/** Random edits of a text: replace, insert, delete or duplicate a slice. */
function mutations(alphabet: fc.Arbitrary<string>): fc.Arbitrary<(s: string) => string> {
  const edit = fc.oneof(
    fc.tuple(fc.nat(), alphabet).map(([i, c]) => (s: string) => {
      const at = s.length === 0 ? 0 : i % s.length;
      return s.slice(0, at) + c + s.slice(at + 1);
    }),
    fc.tuple(fc.nat(), alphabet).map(([i, c]) => (s: string) => {
      const at = s.length === 0 ? 0 : i % (s.length + 1);
      return s.slice(0, at) + c + s.slice(at);
    }),
    fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([i, n]) => (s: string) => {
      const at = s.length === 0 ? 0 : i % s.length;
      return s.slice(0, at) + s.slice(at + n);
    }),
    fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([i, n]) => (s: string) => {
      const at = s.length === 0 ? 0 : i % s.length;
      return s.slice(0, at + n) + s.slice(at);
    }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => (s: string) => edits.reduce((acc, e) => e(acc), s));
}

const noIncludes = { env: {}, readFile: (): string => { throw new Error("includes are not read in this test"); } };

/** Parse and map a config text: only ConfParseError or ConfigError may come out. */
function loadConf(text: string): void {
  let parsed;
  try {
    parsed = parseConf(text, noIncludes);
  } catch (err) {
    if (err instanceof ConfParseError) return;
    throw err;
  }
  try {
    configFromConf(parsed);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
}

function onlyBadJwt(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isAccountServerError(err)) throw err;
  }
}

describe("reliability - hostile input: config parser and flags", () => {
  it("arbitrary text (any code points) fails only with ConfParseError/ConfigError", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 300 }), loadConf), RUNS);
  });

  it("mutations of the seed configuration fail only with ConfParseError/ConfigError", () => {
    const alphabet = fc.constantFrom(..."{}[]()=:,;#\"'\\$\n\r\t x0-.~/".split(""), "include ", "\u0000", "\uFFFD", "é");
    fc.assert(fc.property(mutations(alphabet), (mutate) => loadConf(mutate(SEED_CONF))), RUNS);
  });

  it("generated documents with known and unknown keys and values of every kind map or fail cleanly", () => {
    const key = fc.constantFrom(
      "operatorjwtpath", "systemaccountjwtpath", "http", "port", "host", "readtimeout", "maxbodybytes", "store",
      "dir", "shard", "readonly", "statedir", "cleanupinterval", "nats", "servers", "reconnectwait", "tls", "cert",
      "logging", "debug", "primary", "PORT", "Store", "x", "__proto__", "constructor",
    );
    const scalar = fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
      fc.boolean(),
      fc.constantFrom("5s", "1h30m", "-1", "1MB", "20k", "9999999999999999999999", "''", '""', "2019-05-31T18:00:26Z", "~/x"),
      fc.string({ unit: "grapheme-ascii", maxLength: 12 }).map((s) => JSON.stringify(s.replace(/[\\"]/g, ""))),
    );
    const doc = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("list"), tie("map")),
      list: fc.array(tie("value"), { maxLength: 4 }).map((xs) => `[${(xs as string[]).join(", ")}]`),
      map: fc.array(fc.tuple(key, tie("value")), { maxLength: 5 }).map(
        (kvs) => `{\n${(kvs as Array<[string, string]>).map(([k, v]) => `${k}: ${v}`).join("\n")}\n}`,
      ),
    }));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, doc.value), { maxLength: 6 }), (kvs) =>
        loadConf(kvs.map(([k, v]) => `${k}: ${String(v)}`).join("\n")),
      ),
      RUNS,
    );
  });

  it("deep nesting is a parse error, not a stack overflow", () => {
    for (const n of [MAX_NESTING + 1, 10_000, 200_000]) {
      assert.throws(() => parseConf("a { ".repeat(n) + "}".repeat(n), noIncludes), ConfParseError);
      assert.throws(() => parseConf("a = " + "[".repeat(n) + "]".repeat(n), noIncludes), ConfParseError);
      assert.throws(() => parseConf("a = " + "[{b: ".repeat(n) + "}]".repeat(n), noIncludes), ConfParseError);
    }
    assert.doesNotThrow(() => parseConf("a { ".repeat(MAX_NESTING) + "}".repeat(MAX_NESTING), noIncludes));
  });

  it("a huge document parses in bounded time", () => {
    const big = Array.from({ length: 20_000 }, (_, i) => `k${i}: "${"v".repeat(50)}"`).join("\n");
    const t0 = Date.now();
    loadConf(`x { ${big} }`);
    assert.ok(Date.now() - t0 < 10_000);
  });

  it("arbitrary command lines fail only with FlagError", () => {
    const arg = fc.oneof(
      fc.constantFrom("-c", "-dir", "-operator", "-nats", "-creds", "-primary", "-hp", "-nsc", "-ro", "-D", "-V", "-DV", "-dump",
        "-h", "--help", "-version", "--", "-", "=", "-hp=", "-hp=:0", "-hp=[::1]:80", "-ro=maybe", "-D=false", "-c="),
      fc.string({ unit: "binary", maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 8 }), (argv) => {
        try {
          applyFlags(defaultConfig(), parseFlags(argv));
        } catch (err) {
          if (!(err instanceof FlagError)) throw err;
        }
      }),
      RUNS,
    );
  });
});

describe("reliability - hostile input: JWT decoder and write-path checks", () => {
  const op = makeOperator();
  const signer = op.signer;
  const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString("base64url");
  const header = b64(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const acct = createAccount();
  const valid = accountJwt(acct, op.signer);

  it("arbitrary strings: decoding fails only with AccountServerError; peek and extract never throw", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), (s) => {
        onlyBadJwt(() => decodeJwt(s));
        peekClaims(s);
        extractJwt(s);
      }),
      RUNS,
    );
  });

  it("extractJwt finds what Go's armour regex finds, in linear time", () => {
    // Go's regex (RE2, linear); in a backtracking engine it is only safe on short input.
    const GO_ARMOUR = /-{3,}[^\n]*-{3,}\r?\n([\w\-.=]+)\r?\n-{3,}[^\n]*-{3,}(?:\r?\n|$)/;
    const text = fc
      .array(fc.constantFrom("-", "---", "------", "\n", "\r", "\r\n", " ", "a", "eyJ.x", "=", "BEGIN"), { maxLength: 24 })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(text, (t) => {
        assert.equal(extractJwt(t), GO_ARMOUR.exec(t)?.[1] ?? t.trim());
      }),
      { ...RUNS, numRuns: 2000 },
    );
    for (const hostile of ["-".repeat(200_000), "---a".repeat(50_000), `---x---\n${"a".repeat(200_000)}\n${"-".repeat(200_000)}`]) {
      const t0 = Date.now();
      extractJwt(hostile);
      assert.ok(Date.now() - t0 < 1000, "extractJwt must not backtrack");
    }
  });

  it("three segments of arbitrary JSON and bytes fail only with AccountServerError", () => {
    const seg = fc.oneof(
      fc.jsonValue({ maxDepth: 6 }).map((v) => b64(JSON.stringify(v) ?? "null")),
      fc.uint8Array({ maxLength: 120 }).map(b64),
      fc.constantFrom(header, "", "=", "AA", b64("{}"), b64('{"nats":{"type":"account","version":2}}')),
    );
    fc.assert(
      fc.property(seg, seg, seg, (a, b, c) => {
        const t = `${a}.${b}.${c}`;
        onlyBadJwt(() => decodeJwt(t));
        onlyBadJwt(() => decodeAccountJwt(t));
        peekClaims(t);
      }),
      RUNS,
    );
  });

  it("no mutation of a signed token yields a token that verifies with different content", () => {
    const original = decodeAccountJwt(valid).claims;
    const alphabet = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \n".split(""));
    fc.assert(
      fc.property(mutations(alphabet), (mutate) => {
        const t = mutate(valid);
        let d;
        try {
          d = decodeAccountJwt(t);
        } catch (err) {
          if (isAccountServerError(err)) return;
          throw err;
        }
        assert.deepEqual(d.claims, original, `mutated token ${t} verified with other claims`);
      }),
      RUNS,
    );
  });

  it("validly signed accounts with arbitrary claims are accepted or refused, never crash the write path", async () => {
    const reg = new AccountRegistry({ store: new MemoryStore(), trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log: silentLogger });
    const keys = [acct.getPublicKey(), createAccount().getPublicKey(), createOperator().getPublicKey(), createUser().getPublicKey()];
    const keyArb = fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 60 }));
    const subjectArb = fc.oneof(
      fc.constantFrom("a.b", "a.*", "a.>", ">", "*", "", " ", "a..b", "$SYS.>", "a.b.$1", "foo.{{wildcard(1)}}", "foo.{{partition(2,1)}}", "a.\u0000"),
      fc.string({ maxLength: 20 }),
    );
    const any = fc.jsonValue({ maxDepth: 4 });
    const importArb = fc.record(
      { name: fc.string(), subject: subjectArb, account: keyArb, token: fc.oneof(fc.string(), fc.constant(valid)), to: subjectArb,
        local_subject: subjectArb, type: fc.oneof(fc.constantFrom("stream", "service"), any), share: any, allow_trace: any },
      { requiredKeys: [] },
    );
    const exportArb = fc.record(
      { name: fc.string(), subject: subjectArb, type: fc.oneof(fc.constantFrom("stream", "service"), any), token_req: any,
        revocations: fc.oneof(any, fc.dictionary(keyArb, fc.integer())), response_type: fc.oneof(fc.constantFrom("Singleton", "Stream", "Chunked"), any),
        response_threshold: any, service_latency: fc.oneof(any, fc.record({ sampling: any, results: subjectArb }, { requiredKeys: [] })),
        account_token_position: any, advertise: any, allow_trace: any, description: any, info_url: any },
      { requiredKeys: [] },
    );
    const natsArb = fc.record(
      {
        imports: fc.oneof(any, fc.array(fc.oneof(importArb, any), { maxLength: 4 })),
        exports: fc.oneof(any, fc.array(fc.oneof(exportArb, any), { maxLength: 4 })),
        limits: fc.oneof(any, fc.dictionary(fc.constantFrom("subs", "data", "payload", "imports", "exports", "wildcards", "conn",
          "leaf", "mem_storage", "disk_storage", "streams", "consumer", "tiered_limits", "max_ack_pending", "disallow_bearer"), any)),
        signing_keys: fc.oneof(any, fc.array(fc.oneof(keyArb, fc.record({ kind: fc.constantFrom("user_scope", "x"), key: keyArb, role: any, template: any }, { requiredKeys: [] })))),
        revocations: fc.oneof(any, fc.dictionary(keyArb, fc.oneof(fc.integer(), any))),
        default_permissions: any,
        mappings: fc.oneof(any, fc.dictionary(subjectArb, fc.array(fc.record({ subject: subjectArb, weight: any, cluster: any }, { requiredKeys: [] })))),
        authorization: fc.oneof(any, fc.record({ auth_users: fc.array(keyArb), allowed_accounts: fc.array(keyArb), xkey: keyArb }, { requiredKeys: [] })),
        trace: fc.oneof(any, fc.record({ dest: subjectArb, sampling: any }, { requiredKeys: [] })),
        tags: any,
        description: any,
        type: fc.constantFrom("account", "account", "account", "user", "operator", "", "ACCOUNT"),
        version: fc.constantFrom(2, 2, 2, 1, 0, 3, -1),
      },
      { requiredKeys: [] },
    );
    const top = fc.record(
      { iat: fc.oneof(fc.constant(nowSec()), any), exp: fc.oneof(fc.constant(0), any), nbf: fc.oneof(fc.constant(0), any),
        name: any, aud: any, jti: fc.oneof(fc.constant(newJti()), any) },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(top, natsArb, fc.boolean(), async (t, nats, withType) => {
        const claims = { jti: newJti(), iat: nowSec(), ...t, iss: signer.getPublicKey(), sub: acct.getPublicKey(), nats: withType ? nats : { ...nats, type: "account", version: 2 } };
        const jwt = signJwt(claims, signer);
        try {
          await reg.accept(jwt, { source: "http", key: acct.getPublicKey() });
        } catch (err) {
          if (!isAccountServerError(err)) throw err;
        }
        reg.view(acct.getPublicKey());
      }),
      { ...RUNS, numRuns: 300 },
    );
  });

  it("huge and deeply nested payloads are refused or accepted without overflowing the stack", async () => {
    const reg = new AccountRegistry({ store: new MemoryStore(), trust: new Trust(decodeOperatorJwt(op.operatorJwt)), log: silentLogger });
    // Payload text is built by hand: JSON.stringify itself overflows on such depths.
    const signText = (payload: string): string => {
      const p = b64(payload);
      return `${header}.${p}.${b64(signer.sign(new TextEncoder().encode(`${header}.${p}`)))}`;
    };
    const other = createAccount().getPublicKey();
    const at = [
      (v: string) => `"imports":[{"subject":"a","account":"${other}","type":"stream","x":${v}}]`,
      (v: string) => `"imports":${v}`,
      (v: string) => `"exports":[{"subject":"a","type":"service","service_latency":${v}}]`,
      (v: string) => `"limits":{"tiered_limits":{"R1":${v}}}`,
      (v: string) => `"default_permissions":{"pub":{"allow":${v}}}`,
      (v: string) => `"mappings":{"a":${v}}`,
      (v: string) => `"authorization":{"auth_users":${v}}`,
      (v: string) => `"signing_keys":${v}`,
      (v: string) => `"revocations":${v}`,
      (v: string) => `"tags":${v}`,
      (v: string) => `"unknown":${v}`,
    ];
    for (const n of [1_000, 20_000]) {
      for (const value of ["[".repeat(n) + "1" + "]".repeat(n), '{"a":'.repeat(n) + "1" + "}".repeat(n)]) {
        for (const field of at) {
          const jwt = signText(
            `{"jti":"${newJti()}","iat":${nowSec()},"iss":"${signer.getPublicKey()}","sub":"${acct.getPublicKey()}",` +
              `"nats":{${field(value)},"type":"account","version":2}}`,
          );
          await reg.accept(jwt, { source: "http" }).catch((err: unknown) => {
            if (!isAccountServerError(err)) throw err;
          });
          reg.view(acct.getPublicKey());
        }
      }
    }
    const huge = signJwt({ jti: newJti(), iat: nowSec(), iss: signer.getPublicKey(), sub: acct.getPublicKey(), name: "x".repeat(2_000_000), nats: { type: "account", version: 2 } }, signer);
    await assert.rejects(reg.accept(huge, { source: "http" }), (e: unknown) => isAccountServerError(e) && e.code === "BAD_JWT");
  });
});
