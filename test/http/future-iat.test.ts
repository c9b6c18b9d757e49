/**
 * A JWT issued further ahead of our clock than the allowed skew is refused with the amount, on
 * HTTP and over NATS; an account pinned by one stored earlier is recovered by delete + upload.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { accountJwt, createAccount, makeOperator, nowSec, signJwt, newJti, type KeyPair } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/processes.js";
import { raw } from "../helpers/http.js";
import { startServer, type TestServer } from "../helpers/server.js";

const HOUR = 3600;

function deleteClaim(signer: KeyPair, accounts: string[]): string {
  const iss = signer.getPublicKey();
  return signJwt({ jti: newJti(), iat: nowSec(), iss, sub: iss, nats: { accounts, version: 2 } }, signer);
}

describe("http - iat ahead of our clock", () => {
  const op = makeOperator();
  let clockMs = Date.now();
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op, systemAccount: true, now: () => clockMs, store: { dir: join(tempDir(), "store") } });
  });
  after(() => t.stop());
  const nowS = (): number => Math.floor(clockMs / 1000);
  const post = (key: string, jwt: string) => raw(t.base, "POST", `/jwt/v1/accounts/${key}`, { "Content-Type": "application/jwt" }, jwt);

  it("one hour ahead: 400 saying by how much, nothing stored", async () => {
    const acct = createAccount();
    const key = acct.getPublicKey();
    const iat = nowS() + HOUR;
    const r = await post(key, accountJwt(acct, op.signer, { iat }));
    assert.equal(r.status, 400);
    assert.equal(
      r.body,
      `the JWT's issue time (iat ${new Date(iat * 1000).toISOString()}) is 1h0m0s ahead of this server's clock, ` +
        "more than the allowed clock skew of 5m0s: check the signer's clock\n",
    );
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}`)).status, 404);
  });

  it("within the skew (and exactly at it): accepted", async () => {
    for (const ahead of [60, 300]) {
      const acct = createAccount();
      const r = await post(acct.getPublicKey(), accountJwt(acct, op.signer, { iat: nowS() + ahead }));
      assert.equal(r.status, 200, r.body);
    }
    const acct = createAccount();
    assert.equal((await post(acct.getPublicKey(), accountJwt(acct, op.signer, { iat: nowS() + 301 }))).status, 400);
  });

  it("an account pinned by a JWT from the future is recovered by an operator-signed delete, then the upload", async () => {
    const acct = createAccount();
    const key = acct.getPublicKey();
    // Stored while our clock was ten years ahead (as an older server without the bound would have).
    const realMs = clockMs;
    clockMs = realMs + 10 * 365 * 24 * HOUR * 1000;
    assert.equal((await post(key, accountJwt(acct, op.signer, { iat: nowS() }))).status, 200);
    clockMs = realMs;
    const fix = accountJwt(acct, op.signer, { iat: nowS(), revocations: { [createAccount().getPublicKey()]: nowS() } });
    const refused = await post(key, fix);
    assert.equal(refused.status, 409);
    assert.equal(refused.body, "a newer JWT is already stored for this account\n");

    const d = await fetch(`${t.base}/jwt/v1/accounts`, { method: "DELETE", body: deleteClaim(op.signer, [key]) });
    assert.equal(d.status, 200, await d.text());
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}`)).status, 404);
    assert.equal((await post(key, fix)).status, 200);
    assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${key}`)).body, fix);
  });
});

describe("http - the allowed clock skew is configurable", () => {
  const op = makeOperator();
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op, config: { maxClockSkew: 2 * HOUR * 1000 } });
  });
  after(() => t.stop());

  it("maxclockskew: 2h accepts an iat one hour ahead and refuses three", async () => {
    const a = createAccount();
    const b = createAccount();
    const ok = await raw(t.base, "POST", `/jwt/v1/accounts/${a.getPublicKey()}`, {}, accountJwt(a, op.signer, { iat: nowSec() + HOUR }));
    assert.equal(ok.status, 200, ok.body);
    const no = await raw(t.base, "POST", `/jwt/v1/accounts/${b.getPublicKey()}`, {}, accountJwt(b, op.signer, { iat: nowSec() + 3 * HOUR }));
    assert.equal(no.status, 400);
    assert.match(no.body, /is 3h0m\ds ahead of this server's clock, more than the allowed clock skew of 2h0m0s/);
  });
});
