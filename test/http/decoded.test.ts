/**
 * The `decode=true` view over HTTP: readable header and claims, dates, inline activation tokens,
 * markers instead of errors for malformed stored files, and the flags it ignores.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodedView, utcDate } from "../../src/http/decoded.js";
import {
  accountJwt,
  createAccount,
  makeOperator,
  newJti,
  nowSec,
  signJwt,
  type KeyPair,
} from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { etagOf, raw } from "../helpers/http.js";



const b64 = (v: unknown): string => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const HEADER = b64({ typ: "JWT", alg: "ed25519-nkey" });

function activation(exporter: KeyPair, importer: string, subject: string, kind = "stream", extra: Record<string, unknown> = {}): string {
  return signJwt(
    {
      jti: newJti(),
      iat: nowSec(),
      iss: exporter.getPublicKey(),
      sub: importer,
      name: subject,
      ...extra,
      nats: { subject, kind, type: "activation", version: 2 },
    },
    exporter,
  );
}

describe("http - decoded view", () => {
  const op = makeOperator();
  const exporter = createAccount();
  const acct = createAccount();
  const key = acct.getPublicKey();
  const iat = 1559336426; // 2019-05-31
  const exp = 4102444800; // 2100-01-01
  let clock = iat * 1000 + 1000;
  let t: TestServer;
  let stored: string;
  let jti: string;
  const bad: Record<string, string> = {};
  let dir: string;

  before(async () => {
    dir = tempDir("nas-decoded-");
    const store = join(dir, "store");
    mkdirSync(store);
    // Malformed files a directory store can hold (written by hand, by another tool, or torn).
    const files: Record<string, string> = {
      garbage: "garbage",
      empty: "",
      fourParts: `${HEADER}.${b64({ sub: "x" })}.c2ln.extra`,
      badBase64: `${HEADER}.!!!notbase64!!!.c2ln`,
      notJson: `${HEADER}.${b64("{not json")}.c2ln`,
      array: `${HEADER}.${b64([1, 2, 3])}.c2ln`,
      noSignature: `${HEADER}.${b64({ sub: "x", iat })}`,
      oddTimes: `${HEADER}.${b64({ iat: "yesterday", exp: 1e300, nbf: -5, sub: "x" })}.c2ln`,
      deep: `${HEADER}.${b64(`{"a":${"[".repeat(20000)}${"]".repeat(20000)}}`)}.c2ln`,
      badTokens: accountJwt(createAccount(), op.signer, {
        nats: {
          imports: [
            { type: "stream", subject: "a.b", account: exporter.getPublicKey(), token: "not-a-jwt" },
            {
              type: "stream",
              subject: "c.d",
              account: exporter.getPublicKey(),
              token: activation(exporter, key, "c.d").slice(0, -4) + "AAAA",
            },
          ],
        },
      }),
    };
    for (const [name, content] of Object.entries(files)) {
      const k = createAccount().getPublicKey();
      bad[name] = k;
      writeFileSync(join(store, `${k}.jwt`), content);
    }
    t = await startServer({ operator: op, systemAccount: true, dir, store: { dir: store }, now: () => clock });
    jti = newJti();
    const token = activation(exporter, key, "times.*");
    stored = accountJwt(acct, op.signer, {
      jti,
      iat,
      exp,
      name: "decoded <&> account",
      nats: { imports: [{ name: "t", type: "stream", subject: "times.*", account: exporter.getPublicKey(), token }] },
    });
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, stored);
    assert.equal(r.status, 200, r.body);
  });
  after(() => t.stop());

  it("decode - 200 text/plain: header, claims with dates and the signature, separated by CRLF", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?decode=true`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/plain");
    assert.equal(r.headers["etag"], undefined);
    assert.equal(r.headers["cache-control"], undefined);
    const parts = r.body.split("\r\n");
    assert.equal(parts.length, 3);
    assert.equal(parts[0], '{\n    "typ": "JWT",\n    "alg": "ed25519-nkey"\n}\n');
    assert.equal(parts[2], stored.split(".")[2]);
    const claims = parts[1]!;
    assert.match(claims, /^\{\n {4}"exp": 4102444800 \(2100-01-01\),\n {4}"iat": 1559336426 \(2019-05-31\),\n/);
    assert.ok(claims.includes(`    "jti": "${jti}",\n`));
    // Not HTML-escaped, keys sorted at every level.
    assert.ok(claims.includes('"name": "decoded <&> account"'));
    assert.ok(claims.includes('"subject": "times.*"'));
    const keys = [...claims.matchAll(/^ {4}"(\w+)":/gm)].map((m) => m[1]);
    assert.deepEqual(keys, [...keys].sort());
    assert.deepEqual(keys, ["exp", "iat", "iss", "jti", "name", "nats", "sub"]);
    const limits = /"limits": \{\n([\s\S]*?)\n {8}\}/.exec(claims)![1]!;
    const limitKeys = [...limits.matchAll(/"(\w+)":/g)].map((m) => m[1]);
    assert.deepEqual(limitKeys, [...limitKeys].sort());
  });

  it("decode - an import's activation token is decoded in place", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?decode=true`);
    const token = /"token": (\{[\s\S]*?\n {16}\})/.exec(r.body);
    assert.ok(token, r.body);
    assert.ok(token[1]!.includes(`"iss": "${exporter.getPublicKey()}"`));
    assert.ok(token[1]!.includes(`"sub": "${key}"`));
    assert.ok(token[1]!.includes('"kind": "stream"'));
    assert.ok(token[1]!.includes('"subject": "times.*"'));
    assert.match(token[1]!, /"iat": \d+ \(\d{4}-\d\d-\d\d\)/);
    assert.ok(!r.body.includes("eyJ0eXAiOiJKV1Qi"), "the raw token is not repeated");
  });

  it("decode - text wins over decode", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?decode=true&text=true`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/plain");
    assert.equal(r.body, stored);
  });

  it("decode and text ignore If-None-Match, check and notify", async () => {
    const saved = clock;
    clock = (exp + 10) * 1000; // expired now
    try {
      for (const flag of ["decode", "text"]) {
        const from = t.logs.length;
        const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?${flag}=true&check=true&notify=true`, {
          "If-None-Match": etagOf(stored),
        });
        assert.equal(r.status, 200, flag);
        assert.equal(r.headers["content-type"], "text/plain");
        assert.ok(r.body.length > 0);
        assert.ok(!t.logs.slice(from).some((l) => l.includes("notification")), `${flag} did not notify`);
      }
      // Without them the same request is answered by check (404) ...
      assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}?check=true`)).status, 404);
    } finally {
      clock = saved;
    }
    // ... or by If-None-Match (304), and notify is honoured.
    const cond = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { "If-None-Match": etagOf(stored) });
    assert.equal(cond.status, 304);
    const from = t.logs.length;
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}?notify=true`)).status, 200);
    assert.ok(t.logs.slice(from).some((l) => l.includes(`skipping notification for ${key.slice(0, 12)}`)));
  });

  it("decode - HEAD mirrors GET without a body", async () => {
    const g = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?decode=true`);
    const h = await raw(t.base, "HEAD", `/jwt/v1/accounts/${key}?decode=true`);
    assert.equal(h.status, 200);
    assert.equal(h.body, "");
    assert.equal(h.headers["content-type"], "text/plain");
    assert.equal(h.headers["content-length"], String(Buffer.byteLength(g.body)));
  });

  it("decode - an unknown account is still 404 with the legacy phrase", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${createAccount().getPublicKey()}?decode=true`);
    assert.equal(r.status, 404);
    assert.equal(r.body, "no matching account JWT\n");
  });

  it("decode - the system account fallback is decoded too", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${op.sys.getPublicKey()}?decode=true`);
    assert.equal(r.status, 200);
    assert.ok(r.body.includes('"name": "SYS"'));
  });

  it("decode - malformed stored files answer 200 with markers, never an error", async () => {
    const expect: Record<string, RegExp[]> = {
      garbage: [/^<bad header - invalid JSON: /, /<bad claims - missing, the JWT has no second part>/, /<bad signature - missing/],
      empty: [/^<bad header - empty>/, /<bad claims - missing/],
      fourParts: [/"sub": "x"/, /\r\nc2ln\n\r\n<bad JWT - 1 extra part\(s\) after the signature>$/],
      badBase64: [/"alg": "ed25519-nkey"/, /<bad claims - illegal base64 data at input byte 0>/, /\r\nc2ln$/],
      notJson: [/<bad claims - invalid JSON: /],
      array: [/<bad claims - not a JSON object but an array>/],
      noSignature: [/"iat": 1559336426 \(2019-05-31\)/, /<bad signature - missing, the JWT has no third part>$/],
      oddTimes: [/"iat": "yesterday"/, /"exp": 1e\+300,/, /"nbf": -5,/],
      deep: [/<nested too deeply to display>/],
      badTokens: [
        /"token": <bad token - expected 3 chunks, got 1>,/,
        /"token": <bad token - claim failed V2 signature verification> \{\n\s+"iat": \d+ \(\d{4}-\d\d-\d\d\),[\s\S]*"subject": "c\.d"/,
      ],
    };
    for (const [name, res] of Object.entries(expect)) {
      const r = await raw(t.base, "GET", `/jwt/v1/accounts/${bad[name]}?decode=true`);
      assert.equal(r.status, 200, name);
      assert.equal(r.headers["content-type"], "text/plain", name);
      for (const re of res) assert.match(r.body, re, `${name}:\n${r.body.slice(0, 2000)}`);
    }
    // The same files without decode: text serves them, the default view refuses them.
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${bad["garbage"]}?text=true`)).body, "garbage");
    const plain = await raw(t.base, "GET", `/jwt/v1/accounts/${bad["garbage"]}`);
    assert.equal(plain.status, 500);
    assert.equal(plain.body, "error loading JWT\n");
  });

  it("decode - the operator JWT: decode, text wins, default application/jwt", async () => {
    const d = await raw(t.base, "GET", "/jwt/v1/operator?decode=true");
    assert.equal(d.status, 200);
    assert.equal(d.headers["content-type"], "text/plain");
    assert.ok(d.body.includes('"alg": "ed25519-nkey"'));
    assert.ok(d.body.includes(`"system_account": "${op.sys.getPublicKey()}"`));
    assert.ok(d.body.includes(`"${op.signer.getPublicKey()}"`));
    assert.ok(d.body.endsWith(op.operatorJwt.split(".")[2]!));
    const tx = await raw(t.base, "GET", "/jwt/v1/operator?decode=true&text=true");
    assert.equal(tx.headers["content-type"], "text/plain");
    assert.equal(tx.body, op.operatorJwt);
    const j = await raw(t.base, "GET", "/jwt/v1/operator?decode=false");
    assert.equal(j.headers["content-type"], "application/jwt");
    assert.equal(j.body, op.operatorJwt);
    const h = await raw(t.base, "HEAD", "/jwt/v1/operator?decode=true");
    assert.equal(h.status, 200);
    assert.equal(h.headers["content-length"], String(Buffer.byteLength(d.body)));
  });
});

describe("decoded view - unit", () => {
  it("utcDate - dates in UTC, nothing for implausible values", () => {
    assert.equal(utcDate(1559336426), "2019-05-31");
    assert.equal(utcDate(0), undefined);
    assert.equal(utcDate(-1), undefined);
    assert.equal(utcDate(1.5), undefined);
    assert.equal(utcDate(1e15), undefined);
  });

  it("v1 tokens (alg ed25519) and CR/LF inside chunks are shown", () => {
    const h = b64({ typ: "jwt", alg: "ed25519" });
    const p = b64({ type: "account", sub: "A", iat: 1559336426 });
    const view = decodedView(`${h}.${p.slice(0, 5)}\r\n${p.slice(5)}.c2ln\n`);
    assert.ok(view.includes('"alg": "ed25519"'));
    assert.ok(view.includes('"type": "account"'));
    assert.ok(view.endsWith("\r\nc2ln"));
  });

  it("never throws, whatever the input", () => {
    const samples = ["", ".", "..", "...", "a.b.c", "\u0000.\uffff.\ud800", `${HEADER}.${b64("null")}.x`, `${b64("[]")}.${b64("{}")}.`];
    for (const s of samples) assert.equal(typeof decodedView(s), "string", JSON.stringify(s));
  });
});
