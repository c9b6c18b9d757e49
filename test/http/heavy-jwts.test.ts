/**
 * The heaviest account JWTs over HTTP: each shape gets the verdict and text of the inline check,
 * and GETs sent while it is validated keep being answered (their worst latency is printed).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { AccountServerError } from "../../src/errors.js";
import { checkAccountJwt } from "../../src/jwt/check.js";
import { createAccount, makeOperator, nowSec, pub, signJwt, UNLIMITED } from "../helpers/fixtures.js";
import { heavyShapes } from "../helpers/heavy-jwts.js";
import { startServer, type TestServer } from "../helpers/server.js";

const op = makeOperator();

/** What the inline check answers: 200 and the JWT, or the refusal's status and body. */
function expected(jwt: string): { status: number; body: string } {
  try {
    checkAccountJwt({ jwt, trusted: new Set([pub(op.signer)]), nowMs: Date.now(), maxClockSkewMs: 300_000 });
    return { status: 200, body: "" };
  } catch (err) {
    assert.ok(err instanceof AccountServerError);
    return { status: err.status, body: err.body() };
  }
}

function send(base: string, method: string, path: string, agent: Agent, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("http - heavy JWTs", () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ operator: op, systemAccount: true });
  });
  after(() => t.stop());

  /** POST `jwt` (none: wait 300 ms) while GETs of the system account go back to back; the worst GET latency. */
  async function upload(key: string, jwt?: string): Promise<{ status: number; body: string; gets: number; worst: number }> {
    const getAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    const postAgent = new Agent({ keepAlive: false });
    let running = true;
    let gets = 0;
    let worst = 0;
    const probe = (async () => {
      while (running) {
        const t0 = performance.now();
        assert.equal((await send(t.base, "GET", `/jwt/v1/accounts/${pub(op.sys)}`, getAgent)).status, 200);
        worst = Math.max(worst, performance.now() - t0);
        gets++;
      }
    })();
    try {
      const r =
        jwt === undefined
          ? await new Promise<{ status: number; body: string }>((res) => setTimeout(() => res({ status: 0, body: "" }), 300))
          : await send(t.base, "POST", `/jwt/v1/accounts/${key}`, postAgent, jwt);
      return { ...r, gets, worst };
    } finally {
      running = false;
      await probe;
      getAgent.destroy();
    }
  }

  for (const [limit, only] of [
    [128 * 1024, undefined],
    // Just under the body limit: the two shapes that cost most.
    [1024 * 1024, ["exports {a,*}^k lattice", "stream exports s.<i>.>"]],
  ] as const) {
    it(`every shape of ${limit / 1024} KiB${only ? ` (${only.join(", ")})` : ""}: the inline verdict and text; GETs answered meanwhile`, async (ctx) => {
      // The same GETs with no upload: what this machine gives right now (client and server share this process).
      const idle = await upload("");
      ctx.diagnostic(`no upload: ${idle.gets} GETs in 300 ms, worst ${idle.worst.toFixed(1)} ms`);
      for (const shape of heavyShapes(limit, (nats) => ({ jti: "J", iat: nowSec(), iss: pub(op.signer), name: "H", sub: "A".repeat(56), nats: { limits: UNLIMITED, ...nats, type: "account", version: 2 } }), only)) {
        const acct = createAccount();
        const claims = { jti: `J${Math.random()}`, iat: nowSec(), iss: pub(op.signer), name: "H", sub: pub(acct), nats: { limits: UNLIMITED, ...shape.nats, type: "account", version: 2 } };
        const jwt = signJwt(claims, op.signer);
        const want = expected(jwt);
        const r = await upload(pub(acct), jwt);
        assert.equal(r.status, want.status, `${shape.name}: ${r.body.slice(0, 300)}`);
        if (want.status !== 200) assert.equal(r.body, want.body, shape.name);
        assert.equal(r.status === 200, shape.accepted, shape.name);
        ctx.diagnostic(`${shape.name}: ${jwt.length} bytes, ${r.status}; ${r.gets} GETs meanwhile, worst ${r.worst.toFixed(1)} ms`);
      }
    });
  }
});
