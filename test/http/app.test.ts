/**
 * HTTP API against an in-process server: status codes, headers and bodies of every endpoint,
 * including the legacy phrases, conditional requests, HEAD, CORS and router habits.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { accountJwt, createAccount, createOperator, makeOperator, nowSec } from "../helpers/fixtures.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { etagOf, raw } from "../helpers/http.js";


describe("http - accounts API", () => {
  const op = makeOperator();
  const acct = createAccount();
  const key = acct.getPublicKey();
  let clock = Date.now();
  let t: TestServer;
  let stored: string;
  let etag: string;

  before(async () => {
    t = await startServer({ operator: op, systemAccount: true, now: () => clock });
    stored = accountJwt(acct, op.signer);
    etag = etagOf(stored);
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${key}`, { "Content-Type": "application/jwt" }, stored);
    assert.equal(r.status, 200, r.body);
  });
  after(() => t.stop());

  it("probe - both paths answer 200 with no-cache headers and an empty body", async () => {
    for (const p of ["/jwt/v1/accounts", "/jwt/v1/accounts/"]) {
      const r = await raw(t.base, "GET", p);
      assert.equal(r.status, 200);
      assert.equal(r.body, "");
      assert.equal(r.headers["cache-control"], "no-cache, no-store, must-revalidate");
      assert.equal(r.headers["pragma"], "no-cache");
      assert.equal(r.headers["expires"], "0");
      assert.equal(r.headers["content-type"], undefined);
    }
  });

  it("get - a stored account: 200 application/jwt, ETag, Cache-Control, exact body", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, stored);
    assert.equal(r.headers["content-type"], "application/jwt");
    assert.equal(r.headers["etag"], etag);
    assert.equal(r.headers["cache-control"], "no-cache");
    assert.equal(r.headers["content-length"], String(stored.length));
  });

  it("get - HEAD mirrors GET without a body", async () => {
    const r = await raw(t.base, "HEAD", `/jwt/v1/accounts/${key}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, "");
    assert.equal(r.headers["etag"], etag);
    assert.equal(r.headers["content-length"], String(stored.length));
  });

  it("get - unknown and invalid keys answer 404 with the legacy phrase", async () => {
    for (const k of [createAccount().getPublicKey(), "NOTAKEY", "..%2F..%2Fetc%2Fpasswd"]) {
      const r = await raw(t.base, "GET", `/jwt/v1/accounts/${k}`);
      assert.equal(r.status, 404);
      assert.equal(r.body, "no matching account JWT\n");
      assert.equal(r.headers["content-type"], "text/plain");
    }
  });

  it("get - the configured system account is served when the store lacks it", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${op.sys.getPublicKey()}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, op.sysJwt);
  });

  it("get - If-None-Match: exact, list, weak and * answer 304 with ETag and Cache-Control", async () => {
    for (const inm of [etag, `"x", ${etag}`, `W/${etag}`, "*"]) {
      const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { "If-None-Match": inm });
      assert.equal(r.status, 304, inm);
      assert.equal(r.body, "");
      assert.equal(r.headers["etag"], etag);
      assert.ok(r.headers["cache-control"]);
    }
    const miss = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { "If-None-Match": `${etag.slice(0, -1)}x"` });
    assert.equal(miss.status, 200);
  });

  it("get - text=true serves the raw JWT as text/plain; jti answers 501", async () => {
    const r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?text=TRUE`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/plain");
    assert.equal(r.body, stored);
    const off = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?text=1`);
    assert.equal(off.headers["content-type"], "application/jwt");
    const j = await raw(t.base, "GET", `/jwt/v1/accounts/${key}?jti=abc`);
    assert.equal(j.status, 501);
    assert.equal(j.body, "lookup by jti is no longer supported\n");
  });

  it("get - Cache-Control counts down to exp, never below 0; check=true hides expired JWTs", async () => {
    const other = createAccount();
    const exp = Math.floor(clock / 1000) + 100;
    const jwt = accountJwt(other, op.signer, { exp });
    assert.equal((await raw(t.base, "POST", `/jwt/v1/accounts/${other.getPublicKey()}`, {}, jwt)).status, 200);
    let r = await raw(t.base, "GET", `/jwt/v1/accounts/${other.getPublicKey()}`);
    const age = Number(/max-age=(\d+),/.exec(String(r.headers["cache-control"]))![1]);
    assert.ok(age > 95 && age <= 100, String(age));
    assert.match(String(r.headers["cache-control"]), /stale-while-revalidate=3600, stale-if-error=3600/);
    const saved = clock;
    clock += 200_000;
    try {
      r = await raw(t.base, "GET", `/jwt/v1/accounts/${other.getPublicKey()}`);
      assert.equal(r.status, 200);
      assert.match(String(r.headers["cache-control"]), /^max-age=0,/);
      r = await raw(t.base, "GET", `/jwt/v1/accounts/${other.getPublicKey()}?check=true`);
      assert.equal(r.status, 404);
      assert.equal(r.body, "");
    } finally {
      clock = saved;
    }
  });

  it("post - every refusal answers its status and phrase and stores nothing", async () => {
    const fresh = createAccount();
    const fk = fresh.getPublicKey();
    const now = Math.floor(clock / 1000);
    const cases: Array<[string, string, string, number, string | RegExp]> = [
      ["empty body", fk, "", 400, "bad JWT in request\n"],
      ["garbage", fk, "a.b.c", 400, "bad JWT in request\n"],
      ["wrong key", key, accountJwt(fresh, op.signer), 400, "pub keys don't match\n"],
      ["user key in path", createAccount().getPublicKey(), accountJwt(fresh, op.signer), 400, "pub keys don't match\n"],
      ["foreign operator", fk, accountJwt(fresh, createOperator()), 400, "untrusted issuer in request\n"],
      ["self-signed", fk, accountJwt(fresh, fresh), 400, "Signing service not enabled\n"],
      ["signed by another account", fk, accountJwt(fresh, createAccount()), 400, "Bad JWT Issuer in request\n"],
      ["expired", fk, accountJwt(fresh, op.signer, { exp: now - 5 }), 400, /\n\t - .*expired/],
      ["not yet valid", fk, accountJwt(fresh, op.signer, { nbf: now + 600 }), 400, /\n\t - .*not yet valid/],
    ];
    for (const [name, path, body, status, phrase] of cases) {
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${path}`, { "Content-Type": "application/jwt" }, body);
      assert.equal(r.status, status, `${name}: ${r.body}`);
      if (typeof phrase === "string") assert.equal(r.body, phrase, name);
      else assert.match(r.body, phrase, name);
    }
    const v = await raw(t.base, "POST", `/jwt/v1/accounts/${fk}`, {}, accountJwt(fresh, op.signer, { exp: now - 5 }));
    assert.equal(v.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(v.headers["x-content-type-options"], "nosniff");
    assert.match(v.body, /^the account JWT could not be updated because of validation issues:\n/);
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${fk}`)).status, 404);
  });

  it("post - iat ordering: older 409, equal iat replaces whatever the jti, identical bytes are a no-op", async () => {
    const x = createAccount();
    const xk = x.getPublicKey();
    const iat = nowSec();
    const v1 = accountJwt(x, op.signer, { iat, name: "v1" });
    const jtiOf = (jwt: string): string => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()).jti;
    // The same jti, as Go's jwt library gives two same-second edits: still a change.
    const v2 = accountJwt(x, op.signer, { iat, name: "v1", jti: jtiOf(v1), limits: { conn: 7 } });
    const old = accountJwt(x, op.signer, { iat: iat - 10, name: "old" });
    const oldSameJti = accountJwt(x, op.signer, { iat: iat - 20, jti: jtiOf(v2) });
    assert.equal((await raw(t.base, "POST", `/jwt/v1/accounts/${xk}`, {}, v1)).status, 200);
    assert.equal((await raw(t.base, "POST", `/jwt/v1/accounts/${xk}`, {}, v2)).status, 200);
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${xk}`)).body, v2);
    for (const older of [old, oldSameJti]) {
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${xk}`, {}, older);
      assert.equal(r.status, 409);
      assert.equal(r.body, "a newer JWT is already stored for this account\n");
    }
    assert.equal((await raw(t.base, "POST", `/jwt/v1/accounts/${xk}`, {}, v2)).status, 200);
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${xk}`)).body, v2);
  });

  it("post - the operator identity key is trusted as well as its signing keys", async () => {
    const y = createAccount();
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${y.getPublicKey()}`, {}, accountJwt(y, op.operator));
    assert.equal(r.status, 200, r.body);
  });

  it("post - a body over the limit answers 413", async () => {
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, "x".repeat(1024 * 1024 + 1));
    assert.equal(r.status, 413);
    assert.equal(r.body, "request body too large\n");
  });

  it("router - 404 page, 405 with Allow, plain OPTIONS", async () => {
    let r = await raw(t.base, "GET", "/nope");
    assert.equal(r.status, 404);
    assert.equal(r.body, "404 page not found\n");
    r = await raw(t.base, "PUT", `/jwt/v1/accounts/${key}`);
    assert.equal(r.status, 405);
    assert.equal(r.headers["allow"], "GET, HEAD, OPTIONS, POST");
    assert.equal(r.body, "Method Not Allowed\n");
    r = await raw(t.base, "POST", "/jwt/v1/accounts/");
    assert.equal(r.status, 405);
    assert.equal(r.headers["allow"], "DELETE, GET, HEAD, OPTIONS");
    r = await raw(t.base, "OPTIONS", `/jwt/v1/accounts/${key}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["allow"], "GET, HEAD, OPTIONS, POST");
  });

  it("router - CONNECT is answered 405 with a status line, not a closed socket", async () => {
    for (const target of ["example.com:443", `/jwt/v1/accounts/${key}`]) {
      const answer = await new Promise<string>((resolve, reject) => {
        const c = connect(t.server.port, "127.0.0.1");
        let got = "";
        c.on("data", (b: Buffer) => (got += b.toString()));
        c.on("end", () => resolve(got));
        c.on("error", reject);
        c.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      });
      assert.match(answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
      assert.ok(answer.endsWith("\r\n\r\nMethod Not Allowed\n"), answer);
    }
    // The server goes on answering.
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}`)).status, 200);
  });

  it("router - trailing slash, case and unclean paths redirect (301 GET, 307 otherwise)", async () => {
    let r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}/?text=true`);
    assert.equal(r.status, 301);
    assert.equal(r.headers["location"], `/jwt/v1/accounts/${key}?text=true`);
    r = await raw(t.base, "POST", `/jwt/v1/accounts/${key}/`);
    assert.equal(r.status, 307);
    assert.equal(r.headers["location"], `/jwt/v1/accounts/${key}`);
    r = await raw(t.base, "GET", "/JWT/v1/Help");
    assert.equal(r.status, 301);
    assert.equal(r.headers["location"], "/jwt/v1/help");
    r = await raw(t.base, "GET", "/jwt//v1/./help");
    assert.equal(r.status, 301);
    assert.equal(r.headers["location"], "/jwt/v1/help");
    assert.equal((await raw(t.base, "GET", "/")).status, 404);
  });

  it("cors - origin echoed on GET, preflight answered 204 on any path", async () => {
    let r = await raw(t.base, "GET", `/jwt/v1/accounts/${key}`, { Origin: "https://console.example" });
    assert.equal(r.headers["access-control-allow-origin"], "https://console.example");
    assert.equal(r.headers["vary"], "Origin");
    r = await raw(t.base, "OPTIONS", "/anything", {
      Origin: "https://console.example",
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type",
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers["access-control-allow-methods"], "POST");
    assert.equal(r.headers["access-control-allow-headers"], "content-type");
    assert.equal(r.headers["access-control-allow-origin"], "https://console.example");
  });

  it("operator, help and healthz", async () => {
    let r = await raw(t.base, "GET", "/jwt/v1/operator");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/jwt");
    assert.equal(r.body, op.operatorJwt);
    r = await raw(t.base, "GET", "/jwt/v1/help");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/plain");
    assert.match(r.body, /POST \/jwt\/v1\/accounts\/<account public key>/);
    r = await raw(t.base, "GET", "/healthz");
    assert.equal(r.status, 200);
    const h = JSON.parse(r.body);
    assert.equal(h.status, "ok");
    assert.equal(h.store.type, "memory");
    assert.equal(h.nats.configured, false);
  });
});

describe("http - without an operator", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: null });
  });
  after(() => t.stop());

  it("no operator endpoint, every upload is untrusted", async () => {
    assert.equal((await raw(t.base, "GET", "/jwt/v1/operator")).status, 404);
    const x = createAccount();
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${x.getPublicKey()}`, {}, accountJwt(x, createOperator()));
    assert.equal(r.status, 400);
    assert.equal(r.body, "untrusted issuer in request\n");
  });
});

describe("http - strict signing key usage", () => {
  const op = makeOperator({ strict: true });
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op });
  });
  after(() => t.stop());

  it("the operator identity key is not trusted, its signing keys are", async () => {
    const x = createAccount();
    let r = await raw(t.base, "POST", `/jwt/v1/accounts/${x.getPublicKey()}`, {}, accountJwt(x, op.operator));
    assert.equal(r.status, 400);
    assert.equal(r.body, "untrusted issuer in request\n");
    r = await raw(t.base, "POST", `/jwt/v1/accounts/${x.getPublicKey()}`, {}, accountJwt(x, op.signer));
    assert.equal(r.status, 200);
  });
});
