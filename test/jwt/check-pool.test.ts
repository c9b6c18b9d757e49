/**
 * The validation pool: large JWTs are checked on worker threads with exactly the inline verdict
 * and texts, the event loop keeps turning meanwhile, and closing finishes pending checks inline.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AccountServerError } from "../../src/errors.js";
import { checkAccountJwt, type CheckInput } from "../../src/jwt/check.js";
import { CheckPool, INLINE_LIMIT } from "../../src/jwt/check-pool.js";
import { accountJwt, createAccount, makeOperator, nowSec, pub, signJwt, UNLIMITED } from "../helpers/fixtures.js";
import { heavyShapes } from "../helpers/heavy-jwts.js";

const op = makeOperator();
const NOW_MS = Date.now();
const acct = createAccount();
const claims = (nats: Record<string, unknown>): Record<string, unknown> => ({
  jti: "J",
  iat: nowSec(),
  iss: pub(op.signer),
  name: "HEAVY",
  sub: pub(acct),
  nats: { limits: UNLIMITED, ...nats, type: "account", version: 2 },
});
const input = (jwt: string, o: Partial<CheckInput> = {}): CheckInput => ({
  jwt,
  trusted: new Set([pub(op.signer)]),
  nowMs: NOW_MS,
  maxClockSkewMs: 300_000,
  ...o,
});

/** The verdict as comparable data: the checked fields, or the refusal's code and body. */
async function verdict(f: () => unknown): Promise<unknown> {
  try {
    return await f();
  } catch (err) {
    assert.ok(err instanceof AccountServerError, String(err));
    return { code: err.code, body: err.body() };
  }
}

describe("check pool", () => {
  const pool = new CheckPool({ size: 2 });
  after(() => pool.close());

  it("every heavy shape of 256 KiB: the same verdict and texts as the inline check", async () => {
    for (const s of heavyShapes(256 * 1024, claims)) {
      const jwt = signJwt(claims(s.nats), op.signer);
      assert.ok(jwt.length > INLINE_LIMIT);
      const inline = await verdict(() => checkAccountJwt(input(jwt)));
      assert.deepEqual(await verdict(() => pool.check(input(jwt))), inline, s.name);
      assert.equal("code" in (inline as object), !s.accepted, s.name);
    }
    assert.ok(pool.workers >= 1);
  });

  it("refusals before validation (key mismatch, untrusted, future iat) come back alike", async () => {
    const jwt = accountJwt(acct, op.signer, { iat: Math.floor(NOW_MS / 1000) + 7200, revocations: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`U${i}`, i])) });
    assert.ok(jwt.length > INLINE_LIMIT);
    for (const o of [{ key: pub(createAccount()) }, { trusted: new Set<string>() }, {}]) {
      assert.deepEqual(await verdict(() => pool.check(input(jwt, o))), await verdict(() => checkAccountJwt(input(jwt, o))));
    }
  });

  it("the event loop keeps turning while a JWT of a megabyte is checked", async (t) => {
    const [lattice] = heavyShapes(1024 * 1024, claims, ["exports {a,*}^k lattice"]);
    const jwt = signJwt(claims(lattice!.nats), op.signer);
    let turns = 0;
    let worst = 0;
    let last = performance.now();
    let done = false;
    const spin = (): void => {
      const t = performance.now();
      worst = Math.max(worst, t - last);
      last = t;
      turns++;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    const t0 = performance.now();
    const v = (await verdict(() => pool.check(input(jwt)))) as { code: string };
    done = true;
    assert.equal(v.code, "VALIDATION_FAILED");
    // Checked inline, the check would have run before the first turn.
    assert.ok(turns > 1, `${turns} turns`);
    t.diagnostic(`1 MiB lattice checked in ${(performance.now() - t0).toFixed(0)} ms; ${turns} event-loop turns meanwhile, longest gap ${worst.toFixed(1)} ms`);
  });

  it("closing finishes queued checks inline; later checks run inline", async () => {
    const p = new CheckPool({ size: 1 });
    const jwt = accountJwt(acct, op.signer, { revocations: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`U${i}`, i])) });
    const pending = [p.check(input(jwt)), p.check(input(jwt)), p.check(input(jwt))];
    assert.ok(pending.every((c) => c instanceof Promise));
    await p.close();
    for (const r of await Promise.all(pending)) assert.equal(r.sub, pub(acct));
    assert.equal((await p.check(input(jwt))).token, jwt);
    assert.equal(p.workers, 0);
  });
});
