/**
 * The signing-service branch of POST (legacy §2.5 step 6) against a real nats-server: every row,
 * with a scripted responder on the sign subject standing in for the service's possible answers.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { accountJwt, createAccount, createOperator, makeOperator, nowSec, pub, type KeyPair } from "../helpers/fixtures.js";
import { raw } from "../helpers/http.js";
import { freePort, startNatsServer, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { until } from "./kit.js";

const SUBJECT = "test.sign.account";

describe("signing branch - POST of JWTs not signed by a trusted key", () => {
  const op = makeOperator();
  let ns: NatsServer;
  let t: TestServer;
  let nc: NatsConnection;
  /** What the stand-in service does with each request; undefined: no answer (timeout). */
  let answer: ((m: Msg) => void) | undefined;
  const requests: string[] = [];
  const announced: string[] = [];

  before(async () => {
    ns = await startNatsServer("");
    nc = await connect({ servers: ns.url });
    nc.subscribe(SUBJECT, {
      callback: (_e, m) => {
        requests.push(m.string());
        answer?.(m);
      },
    });
    nc.subscribe("$SYS.ACCOUNT.*.CLAIMS.UPDATE", {
      callback: (_e, m) => {
        announced.push(m.subject.split(".")[2]!);
      },
    });
    await nc.flush();
    t = await startServer({
      operator: op,
      nats: { servers: [ns.url], reconnectWait: 100, syncInterval: 0 },
      sign: { subject: SUBJECT, timeoutMs: 300 },
    });
    await until("our server to connect to NATS", () => t.logs.some((l) => /answering account lookups/.test(l)));
  });

  after(async () => {
    await t.stop();
    await nc.close();
    await ns.stop();
  });

  beforeEach(() => {
    answer = undefined;
    requests.length = 0;
  });

  const post = (key: string, body: string) => raw(t.base, "POST", `/jwt/v1/accounts/${key}`, {}, body);
  const get = (key: string) => raw(t.base, "GET", `/jwt/v1/accounts/${key}`);

  /** Wait until `key` was announced `n` times, then prove no extra announcement follows. */
  async function announcements(key: string): Promise<number> {
    await until(`announcement of ${key}`, () => announced.includes(key));
    // Announcements are published in order: once a later marker change is seen, none is pending.
    const marker = createAccount();
    assert.equal((await post(pub(marker), accountJwt(marker, op.signer))).status, 200);
    await until("marker announcement", () => announced.includes(pub(marker)));
    return announced.filter((k) => k === key).length;
  }

  it("a self-signed new account comes back signed: 200, GET serves the service's bytes, one announcement", async () => {
    const a = createAccount();
    const request = accountJwt(a, a, { name: "tenant" });
    const signed = accountJwt(a, op.signer, { name: "tenant", limits: { conn: 5 } });
    answer = (m) => m.respond(signed);
    const r = await post(pub(a), request);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, "");
    assert.deepEqual(requests, [request], "the uploaded bytes are forwarded as they are");
    assert.equal((await get(pub(a))).body, signed);
    assert.equal(await announcements(pub(a)), 1);
  });

  it("a self-signed update of a stored account is forwarded too", async () => {
    const a = createAccount();
    assert.equal((await post(pub(a), accountJwt(a, op.signer, { iat: nowSec() - 10 }))).status, 200);
    const signed = accountJwt(a, op.signer, { name: "v2" });
    answer = (m) => m.respond(signed);
    const request = accountJwt(a, a, { name: "v2" });
    assert.equal((await post(pub(a), request)).status, 200);
    assert.deepEqual(requests, [request]);
    assert.equal((await get(pub(a))).body, signed);
  });

  it("a reply that is not a JWT answers 202 with the reply text verbatim and stores nothing", async () => {
    const a = createAccount();
    const text = "queued for approval as request 7QX2 \u2014 ask your operator\n  (twice)";
    answer = (m) => m.respond(text);
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 202);
    assert.equal(r.body, text);
    assert.match(r.headers["content-type"] ?? "", /^text\/plain/);
    assert.equal((await get(pub(a))).status, 404);
  });

  it("an empty reply is a 202 with an empty body", async () => {
    const a = createAccount();
    answer = (m) => m.respond("");
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 202);
    assert.equal(r.body, "");
  });

  it("a reply with the service error headers is a refusal: 400 with its text, nothing stored", async () => {
    const a = createAccount();
    const h = headers();
    h.set("Nats-Service-Error", "policy");
    h.set("Nats-Service-Error-Code", "400");
    answer = (m) => m.respond("refused: exports are not allowed", { headers: h });
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 400);
    assert.equal(r.body, "refused: exports are not allowed\n");
    assert.equal((await get(pub(a))).status, 404);
  });

  it("no answer within signrequesttimeout: 500 signing service unavailable", async () => {
    const a = createAccount();
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 500);
    assert.equal(r.body, "Failure during signature request. signing service unavailable.\n");
    assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    assert.equal(requests.length, 1);
  });

  it("a returned JWT for another account is refused and nothing is stored", async () => {
    const a = createAccount();
    const other = createAccount();
    answer = (m) => m.respond(accountJwt(other, op.signer));
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 400);
    assert.equal(r.body, "pub keys don't match\n");
    assert.equal((await get(pub(a))).status, 404);
    assert.equal((await get(pub(other))).status, 404);
    assert.ok(t.logs.some((l) => /signing service returned a JWT for .* that is refused/.test(l)));
  });

  it("a returned JWT signed by an untrusted key is refused and nothing is stored", async () => {
    const a = createAccount();
    const stranger: KeyPair = createOperator();
    answer = (m) => m.respond(accountJwt(a, stranger));
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 400);
    assert.equal(r.body, "untrusted issuer in request\n");
    assert.equal((await get(pub(a))).status, 404);
    // The service echoing the self-signed request back signs nothing either.
    answer = (m) => m.respond(m.data);
    assert.equal((await post(pub(a), accountJwt(a, a))).status, 400);
    assert.equal((await get(pub(a))).status, 404);
  });

  it("a returned JWT that fails validation is refused with the validation body", async () => {
    const a = createAccount();
    answer = (m) => m.respond(accountJwt(a, op.signer, { exp: nowSec() - 60 }));
    const r = await post(pub(a), accountJwt(a, a));
    assert.equal(r.status, 400);
    assert.match(r.body, /validation issues:\n\t - claim is expired/);
    assert.equal((await get(pub(a))).status, 404);
  });

  it("an update self-signed by another account is refused with the legacy text, without asking", async () => {
    const a = createAccount();
    const b = createAccount();
    assert.equal((await post(pub(a), accountJwt(a, op.signer))).status, 200);
    const r = await post(pub(a), accountJwt(a, b));
    assert.equal(r.status, 400);
    assert.equal(r.body, "bad JWT issuer is not trusted\n");
    const c = createAccount();
    const r2 = await post(pub(c), accountJwt(c, b));
    assert.equal(r2.status, 400);
    assert.equal(r2.body, "bad JWT Issuer/Subject pair in request\n");
    assert.equal(requests.length, 0);
  });

  it("checks before the branch keep their order: bad JWT, key mismatch", async () => {
    const a = createAccount();
    assert.equal((await post(pub(a), "garbage")).body, "bad JWT in request\n");
    assert.equal((await post(pub(createAccount()), accountJwt(a, a))).body, "pub keys don't match\n");
    assert.equal(requests.length, 0);
  });

  it("a self-signed JWT pushed on $SYS.REQ.CLAIMS.UPDATE is refused with a pointer to HTTP, not forwarded", async () => {
    const a = createAccount();
    const m = await nc.request("$SYS.REQ.CLAIMS.UPDATE", accountJwt(a, a), { timeout: 2000 });
    const r = m.json<{ error?: { description: string } }>();
    assert.match(r.error?.description ?? "", /go to the signing service only when uploaded over HTTP/);
    assert.equal(requests.length, 0);
    assert.equal((await get(pub(a))).status, 404);
  });

  it("JWTs signed by a trusted key never reach the service", async () => {
    const a = createAccount();
    assert.equal((await post(pub(a), accountJwt(a, op.signer))).status, 200);
    assert.equal(requests.length, 0);
  });
});

describe("signing branch - NATS failures", () => {
  const op = makeOperator();

  it("no responders: 500 with Go's error text", async () => {
    const ns = await startNatsServer("");
    const t = await startServer({ operator: op, nats: { servers: [ns.url], reconnectWait: 100, syncInterval: 0 }, sign: { subject: SUBJECT } });
    try {
      await until("our server to connect to NATS", () => t.logs.some((l) => /answering account lookups/.test(l)));
      const a = createAccount();
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${pub(a)}`, {}, accountJwt(a, a));
      assert.equal(r.status, 500);
      assert.equal(
        r.body,
        "Failure during signature request. Try again at a later time. Error: nats: no responders available for request\n",
      );
    } finally {
      await t.stop();
      await ns.stop();
    }
  });

  it("NATS not connected: 500 nats-server unavailable", async () => {
    const port = await freePort();
    const t = await startServer({
      operator: op,
      nats: { servers: [`nats://127.0.0.1:${port}`], reconnectWait: 60_000, syncInterval: 0 },
      sign: { subject: SUBJECT },
    });
    try {
      const a = createAccount();
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${pub(a)}`, {}, accountJwt(a, a));
      assert.equal(r.status, 500);
      assert.equal(r.body, "Failure during signature request. nats-server unavailable.\n");
      assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
    } finally {
      await t.stop();
    }
  });

  it("without signrequestsubject a self-signed upload is still 'Signing service not enabled'", async () => {
    const t = await startServer({ operator: op });
    try {
      const a = createAccount();
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${pub(a)}`, {}, accountJwt(a, a));
      assert.equal(r.status, 400);
      assert.equal(r.body, "Signing service not enabled\n");
    } finally {
      await t.stop();
    }
  });
});
