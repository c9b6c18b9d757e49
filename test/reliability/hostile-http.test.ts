/**
 * Hostile HTTP clients against a real listener: random and malformed requests (fast-check, fixed
 * seed), path traversal, giant headers, oversized bodies, slow and idle connections. No client
 * error becomes a 5xx, nothing is stored, and slow or idle connections are cut on time.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { accountJwt, createAccount, createOperator, makeOperator, newJti, nowSec, signJwt } from "../helpers/fixtures.js";
import { filesBelow, httpCall, rawExchange } from "../helpers/reliability.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { tempDir } from "../helpers/processes.js";

const RUNS = { seed: 0x7e57ed, numRuns: 300 };
const READ_TIMEOUT = 500;
const MAX_BODY = 8192;

describe("reliability - hostile HTTP clients", () => {
  const op = makeOperator();
  const foreign = makeOperator();
  const acct = createAccount();
  const key = acct.getPublicKey();
  const stored = accountJwt(acct, op.signer);
  let t: TestServer;
  let storeDir: string;
  let filesBefore: string[];

  before(async () => {
    const dir = tempDir();
    storeDir = join(dir, "store");
    t = await startServer({
      operator: op,
      systemAccount: true,
      dir,
      store: { dir: storeDir },
      http: { readTimeout: READ_TIMEOUT, writeTimeout: READ_TIMEOUT, maxBodyBytes: MAX_BODY },
    });
    assert.equal((await httpCall(t.server.port, "POST", `/jwt/v1/accounts/${key}`, { body: stored })).status, 200);
    filesBefore = ownFiles();
  });

  after(async () => {
    await t?.stop();
  });

  /** Files of the test dir and store (the state dir and the store's journal are bookkeeping kept in the background). */
  function ownFiles(): string[] {
    return filesBelow(join(storeDir, ".."))
      .filter((f) => !f.startsWith(`${storeDir}.state`) && !/[/\\]\.journal\.\d+$/.test(f))
      .sort();
  }

  /** The server is up, holds exactly what it held, and never logged an internal error. */
  async function unharmed(): Promise<void> {
    assert.equal((await httpCall(t.server.port, "GET", "/healthz")).status, 200);
    assert.equal((await httpCall(t.server.port, "GET", `/jwt/v1/accounts/${key}`)).body, stored);
    assert.equal(t.server.registry.store.size, 1);
    assert.deepEqual(ownFiles(), filesBefore);
    assert.equal(readFileSync(join(storeDir, `${key}.jwt`), "utf8"), stored);
    const internal = t.logs.filter((l) => /internal server error|\n\s+at /.test(l));
    assert.deepEqual(internal, []);
  }

  function request(method: string, path: string, headers: string[], body: Buffer): Buffer {
    const head = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", ...headers, `Content-Length: ${body.length}`, "Connection: close"];
    return Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), body]);
  }

  /** A client error may be answered with any 1xx-4xx or by closing; only `?jti=` may say 501. */
  function assertNoServerError(status: number, path: string, text: string): void {
    if (status === 501 && /[?&]jti=/.test(path)) return;
    assert.ok(status < 500, `${status} for ${JSON.stringify(path.slice(0, 200))}: ${text.slice(0, 300)}`);
  }

  it("random requests never get a 5xx and change nothing", async () => {
    const untrusted = accountJwt(acct, foreign.signer);
    const segment = fc.oneof(
      fc.constantFrom("jwt", "v1", "accounts", "activations", "operator", "pack", "help", "healthz", key,
        createAccount().getPublicKey(), "..", ".", "%2e%2e", "%2F", "..%2F..%2Fetc%2Fpasswd", "%00", "%ff", "%", "%%",
        "~", "A".repeat(400), "é", "%C3%A9", "\u00ff", "*", "", "JWT", "Accounts"),
      fc.string({ unit: "grapheme-ascii", maxLength: 12 }).map((s) => s.replace(/[\s?#]/g, "")),
    );
    const path = fc.tuple(fc.array(segment, { maxLength: 6 }), fc.array(fc.oneof(
      fc.constantFrom("text=true", "decode=true", "check=true", "notify=true", "jti=x", "max=-1", "max=abc",
        "max=99999999999999999999", "text=TRUE", "=", "&&", "a=%zz"),
      fc.string({ unit: "grapheme-ascii", maxLength: 10 }).map((s) => s.replace(/[\s#]/g, "")),
    ), { maxLength: 3 })).map(([segs, q]) => "/" + segs.join("/") + (q.length > 0 ? "?" + q.join("&") : ""));
    const method = fc.oneof(
      fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }).map((s) => s.replace(/[\s]/g, "X")),
    );
    const header = fc.oneof(
      fc.constantFrom("Content-Type: application/jwt", "Content-Type: text/plain; charset=latin1", "If-None-Match: *",
        'If-None-Match: W/"x", "y"', "Origin: http://evil.example", "Access-Control-Request-Method: POST",
        "Access-Control-Request-Headers: x-a", "Accept-Encoding: gzip", "Expect: 100-continue", "Transfer-Encoding: gzip",
        `X-Big: ${"b".repeat(8000)}`),
      fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.string({ unit: "grapheme-ascii", maxLength: 40 }))
        .map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, "")}`),
    );
    const body = fc.oneof(
      fc.constant(Buffer.alloc(0)),
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
      fc.constant(Buffer.from(untrusted)),
      fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([i, b]) => {
        const buf = Buffer.from(untrusted);
        buf.set(b, i % (buf.length - 4));
        return buf;
      }),
      fc.constant(Buffer.from("[".repeat(MAX_BODY - 10) + "]".repeat(5))),
      fc.constant(Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1])),
      fc.constant(Buffer.from(signJwt({ jti: newJti(), iat: nowSec(), iss: foreign.operator.getPublicKey(), sub: foreign.operator.getPublicKey(), nats: { accounts: [key], type: "generic", version: 2 } }, foreign.operator))),
    );
    await fc.assert(
      fc.asyncProperty(method, path, fc.array(header, { maxLength: 4 }), body, async (m, p, hs, b) => {
        const r = await rawExchange(t.server.port, [request(m, p, hs, b)], { timeoutMs: 5000 });
        assert.ok(r.closed, "the server must answer (or close) a complete request");
        assertNoServerError(r.status, p, r.text);
      }),
      RUNS,
    );
    await unharmed();
  });

  it("path traversal in keys (../, encoded forms, NUL) reaches nothing outside the store", async () => {
    const evil = ["..", "../..", "..%2F..%2Fop.jwt", "%2e%2e%2f%2e%2e%2fop.jwt", "..%5c..%5cop.jwt", `${key}%00`, `${key}%00.jwt`,
      "%00", `..%2F${key}`, `${key}%2F..%2F..%2Fop`, `.${key}`, `${key}.jwt`, "%2E%2E", "....//....//op.jwt", `${key}/..`];
    const trusted = accountJwt(createAccount(), op.signer);
    for (const k of evil) {
      for (const method of ["GET", "POST", "DELETE"]) {
        const path = `/jwt/v1/accounts/${k}`;
        const r = await rawExchange(t.server.port, [request(method, path, [], Buffer.from(method === "GET" ? "" : trusted))]);
        assertNoServerError(r.status, path, r.text);
        assert.notEqual(r.status, 200, `${method} ${path} answered 200`);
        assert.ok(!r.text.includes(op.operatorJwt), `${method} ${path} leaked a file`);
      }
    }
    await unharmed();
  });

  it("giant headers and URLs are refused with 4xx", async () => {
    const huge = [
      request("GET", "/healthz", [`X-Huge: ${"h".repeat(100_000)}`], Buffer.alloc(0)),
      request("GET", "/healthz", Array.from({ length: 3000 }, (_, i) => `X-${i}: v`), Buffer.alloc(0)),
      request("GET", `/jwt/v1/accounts/${"A".repeat(100_000)}`, [], Buffer.alloc(0)),
      request("POST", `/jwt/v1/accounts/${key}`, [`Content-Type: ${"x".repeat(70_000)}`], Buffer.from(stored)),
    ];
    for (const req of huge) {
      const r = await rawExchange(t.server.port, [req]);
      assert.ok(r.closed);
      assert.ok(r.status === 0 || (r.status >= 400 && r.status < 500), `got ${r.status}`);
    }
    await unharmed();
  });

  it("an oversized body is refused with 413 before it is read whole", async () => {
    // Declared too large: refused on the headers alone; we never send the rest.
    const declared = await rawExchange(t.server.port, [
      `POST /jwt/v1/accounts/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`,
      "x".repeat(1024),
    ]);
    assert.equal(declared.status, 413);
    assert.ok(declared.closed);
    // Chunked: refused once the limit is passed, while the client still has most of it to send.
    const chunk = `${(4096).toString(16)}\r\n${"y".repeat(4096)}\r\n`;
    const chunked = await rawExchange(t.server.port, [
      `POST /jwt/v1/accounts/${key} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
      chunk.repeat(Math.ceil(MAX_BODY / 4096) + 1),
    ]);
    assert.equal(chunked.status, 413);
    assert.ok(chunked.closed);
    // Just under the limit is read and judged on its content (not a size refusal).
    const under = await httpCall(t.server.port, "POST", `/jwt/v1/accounts/${key}`, { body: "z".repeat(MAX_BODY) });
    assert.equal(under.status, 400);
    await unharmed();
  });

  it("idle and slow connections are cut once the read timeout passes, even while bytes trickle in", async () => {
    const limit = READ_TIMEOUT * 2 + 1500;
    const [idle, slowHeaders, slowBody, keepAlive] = await Promise.all([
      rawExchange(t.server.port, [], { timeoutMs: 10_000 }),
      rawExchange(t.server.port, ["GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", ...Array.from({ length: 100 }, () => "s")], { gapMs: 50, timeoutMs: 10_000 }),
      rawExchange(
        t.server.port,
        [`POST /jwt/v1/accounts/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`, ...Array.from({ length: 100 }, () => "b")],
        { gapMs: 50, timeoutMs: 10_000 },
      ),
      rawExchange(t.server.port, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], { timeoutMs: 10_000 }),
    ]);
    for (const [name, r] of Object.entries({ idle, slowHeaders, slowBody, keepAlive })) {
      assert.ok(r.closed, `${name} connection was never closed`);
      assert.ok(r.closedAfterMs < limit, `${name} connection lived ${r.closedAfterMs} ms`);
      assertNoServerError(r.status, name, r.text);
    }
    assert.equal(slowHeaders.status, 408);
    assert.equal(slowBody.status, 408);
    assert.equal(keepAlive.status, 200);
    await unharmed();
  });

  it("a forged operator key in a delete request is refused like any untrusted upload", async () => {
    const claim = signJwt({ jti: newJti(), iat: nowSec(), iss: createOperator().getPublicKey(), sub: key, nats: { accounts: [key], type: "generic", version: 2 } }, createOperator());
    const r = await httpCall(t.server.port, "DELETE", `/jwt/v1/accounts`, { body: claim });
    assertNoServerError(r.status, "/jwt/v1/accounts", r.body);
    assert.notEqual(r.status, 200);
    await unharmed();
  });
});
