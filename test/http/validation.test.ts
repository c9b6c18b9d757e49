/**
 * Claim validation at the HTTP level: a table of invalid account JWTs, each refused with 400 and
 * its reason line, and a table of valid v1 and v2 JWTs accepted and served byte for byte.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCurve } from "@nats-io/nkeys";
import {
  UNLIMITED,
  accountJwt,
  createAccount,
  createOperator,
  createUser,
  makeOperator,
  newJti,
  nowSec,
  signJwt,
  signWith,
  type KeyPair,
} from "../helpers/fixtures.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { raw } from "../helpers/http.js";



const PHRASE = "the account JWT could not be updated because of validation issues:\n";
const HOUR = 3600;
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A v1 token: top-level `type`, header alg `ed25519`, signature over the payload chunk only. */
function signV1(claims: Record<string, unknown>, signer: KeyPair): string {
  const h = b64({ typ: "JWT", alg: "ed25519" });
  const p = b64(claims);
  return `${h}.${p}.${Buffer.from(signWith(signer, new TextEncoder().encode(p))).toString("base64url")}`;
}

interface TokenOptions {
  readonly kind?: string;
  readonly exp?: number;
  readonly nbf?: number;
  readonly issuerAccount?: string;
}

/** v2 activation token: `signer` lets `sub` import `subject`. */
function token(signer: KeyPair, sub: string, subject: string, o: TokenOptions = {}): string {
  return signJwt(
    {
      jti: newJti(),
      iat: nowSec(),
      iss: signer.getPublicKey(),
      sub,
      name: subject,
      ...(o.exp !== undefined ? { exp: o.exp } : {}),
      ...(o.nbf !== undefined ? { nbf: o.nbf } : {}),
      nats: {
        subject,
        kind: o.kind ?? "stream",
        ...(o.issuerAccount ? { issuer_account: o.issuerAccount } : {}),
        type: "activation",
        version: 2,
      },
    },
    signer,
  );
}

describe("http - account validation", () => {
  const op = makeOperator();
  const exporter = createAccount();
  const stranger = createAccount();
  const ex = exporter.getPublicKey();
  const now = nowSec();
  let t: TestServer;

  before(async () => {
    t = await startServer({ operator: op });
  });
  after(() => t.stop());

  /** Builds the JWT for account `me` (a fresh key per case). */
  type Build = (me: KeyPair) => string;
  const withNats = (nats: Record<string, unknown>, o: { exp?: number; nbf?: number; limits?: Record<string, unknown> } = {}): Build =>
    (me) => accountJwt(me, op.signer, { nats, ...o });
  const imp = (subject: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: subject,
    type: "stream",
    subject,
    account: ex,
    ...extra,
  });

  const invalid: Array<[string, Build, string[]]> = [
    [
      "import token with a bad signature",
      (me) => withNats({ imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x").slice(0, -4) + "AAAA" })] })(me),
      ['import "p.x" contains an invalid activation token'],
    ],
    [
      "import token that is not a JWT",
      withNats({ imports: [imp("p.x", { token: "not-a-token" })] }),
      ['import "p.x" contains an invalid activation token'],
    ],
    [
      "import token issued by another account",
      (me) => withNats({ imports: [imp("p.x", { token: token(stranger, me.getPublicKey(), "p.x") })] })(me),
      ['activation token doesn\'t match account for import "p.x"'],
    ],
    [
      "import token issued for another account",
      withNats({ imports: [imp("p.x", { token: token(exporter, stranger.getPublicKey(), "p.x") })] }),
      ['activation token doesn\'t match account it is being included in, "p.x"'],
    ],
    [
      "import token kind differs from the import type",
      (me) => withNats({ imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x", { kind: "service" }) })] })(me),
      ["mismatch between token import type service and type of import stream"],
    ],
    [
      "import subject not contained in the token subject",
      (me) => withNats({ imports: [imp("p.>", { token: token(exporter, me.getPublicKey(), "p.x") })] })(me),
      ['activation token import subject "p.x" doesn\'t match import "p.>"'],
    ],
    [
      "more imports than the limit",
      withNats({ imports: [imp("a.x"), imp("b.x")] }, { limits: { imports: 1 } }),
      ["the account contains more imports than allowed by the operator"],
    ],
    [
      "more exports than the limit",
      withNats(
        { exports: [{ type: "stream", subject: "a.x" }, { type: "stream", subject: "b.x" }] },
        { limits: { exports: 1 } },
      ),
      ["the account contains more exports than allowed by the operator"],
    ],
    [
      "absent limits with an import",
      (me) =>
        signJwt(
          {
            jti: newJti(),
            iat: nowSec(),
            iss: op.signer.getPublicKey(),
            name: "no limits",
            sub: me.getPublicKey(),
            nats: { imports: [imp("a.x")], type: "account", version: 2 },
          },
          op.signer,
        ),
      ["the account contains more imports than allowed by the operator"],
    ],
    [
      "wildcard export while wildcards are not allowed",
      withNats({ exports: [{ type: "stream", subject: "w.*" }] }, { limits: { exports: 5, wildcards: false } }),
      ["the account contains wildcard exports that are not allowed by the operator"],
    ],
    [
      "signing key that is not an account key",
      withNats({ signing_keys: [op.operator.getPublicKey()] }),
      [`"${op.operator.getPublicKey()}" is not a valid account signing key`],
    ],
    [
      "scoped signing key that is not an account key",
      withNats({ signing_keys: [{ kind: "user_scope", key: "XYZ", role: "r", template: {} }] }),
      ["XYZ is not an account public key"],
    ],
    [
      "mapping weights above 100%",
      withNats({ mappings: { "m.a": [{ subject: "m.b", weight: 60 }, { subject: "m.c", weight: 60 }] } }),
      ['Mapping "m.a" exceeds 100% among all of it\'s weighted to mappings'],
    ],
    [
      "mapping weight above 100",
      withNats({ mappings: { "m.a": [{ subject: "m.b", weight: 150 }] } }),
      ['Mapping "m.a" has a weight 150 that exceeds 100'],
    ],
    [
      "invalid import and export subjects",
      withNats({ imports: [imp("a..b")], exports: [{ type: "stream", subject: "bad subject" }] }),
      ["subject \"a..b\" cannot contain consecutive `.`", 'subject "bad subject" cannot have spaces'],
    ],
    ["empty import subject", withNats({ imports: [imp("")] }), ["subject cannot be empty"]],
    [
      "auth callout with a key that is not a user key",
      withNats({ authorization: { auth_users: [ex] } }),
      [`AuthUser "${ex}" is not a valid user public key`],
    ],
    [
      "auth callout with accounts but no users",
      withNats({ authorization: { allowed_accounts: [ex] } }),
      ["External authorization cannot have accounts without users specified"],
    ],
    [
      "auth callout with a bad xkey",
      withNats({ authorization: { auth_users: [createUser().getPublicKey()], xkey: "XBAD" } }),
      ['XKey "XBAD" is not a valid public xkey'],
    ],
    ["null import", withNats({ imports: [null] }), ["null import is not allowed"]],
    [
      "allow_trace on a service import",
      withNats({ imports: [imp("s.x", { type: "service", allow_trace: true })] }),
      ["AllowTrace only valid for stream import"],
    ],
    ["import without an account", withNats({ imports: [imp("a.x", { account: "" })] }), ["account to import from is not specified"]],
    [
      "overlapping service imports from one account",
      withNats({ imports: [imp("s.>", { type: "service" }), imp("s.a", { type: "service" })] }),
      ['overlapping subject namespace for "s.a" and "s.>" in same account "' + ex + '"'],
    ],
    [
      "latency tracking on a stream export",
      withNats({ exports: [{ type: "stream", subject: "l.x", service_latency: { sampling: 50, results: "lat.r" } }] }),
      ["latency tracking only permitted for services"],
    ],
    ["unknown cluster traffic option", withNats({ cluster_traffic: "everyone" }), ['unknown cluster traffic option: "everyone"']],
    [
      "trace destination with a wildcard",
      withNats({ trace: { dest: "tr.*", sampling: 50 } }),
      ['the account Trace.Destination subject "tr.*" is not a valid publish subject'],
    ],
    ["expired account", withNats({}, { exp: now - HOUR }), ["claim is expired"]],
    ["account not yet valid", withNats({}, { nbf: now + HOUR }), ["claim is not yet valid"]],
    [
      "an expired import token is listed (as a warning) when something else blocks",
      (me) =>
        withNats({
          cluster_traffic: "bogus",
          imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x", { exp: now - HOUR }) })],
        })(me),
      ['unknown cluster traffic option: "bogus"', 'activation token for import "p.x" is expired'],
    ],
    [
      "a not-yet-valid import token and a deprecated `to` are listed when something else blocks",
      (me) =>
        withNats({
          imports: [
            imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x", { nbf: now + HOUR }) }),
            imp("q.x", { to: "local.q" }),
            null,
          ],
        })(me),
      [
        "null import is not allowed",
        'activation token for import "p.x" is not yet valid',
        "the field to has been deprecated (use LocalSubject instead)",
      ],
    ],
  ];

  it("invalid - each refused with 400 (charset, nosniff), the phrase and its reason line; nothing stored", async () => {
    for (const [name, build, reasons] of invalid) {
      const me = createAccount();
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${me.getPublicKey()}`, {}, build(me));
      assert.equal(r.status, 400, `${name}: ${r.body}`);
      assert.equal(r.headers["content-type"], "text/plain; charset=utf-8", name);
      assert.equal(r.headers["x-content-type-options"], "nosniff", name);
      assert.ok(r.body.startsWith(PHRASE), `${name}: ${r.body}`);
      assert.ok(r.body.endsWith("\n"), name);
      for (const reason of reasons) assert.ok(r.body.includes(`\n\t - ${reason}\n`), `${name}: missing "${reason}" in\n${r.body}`);
      const lines = r.body.slice(PHRASE.length).split("\n").slice(0, -1);
      assert.ok(lines.every((l) => l.startsWith("\t - ")), `${name}: ${r.body}`);
      assert.equal((await raw(t.base, "GET", `/jwt/v1/accounts/${me.getPublicKey()}`)).status, 404, name);
    }
  });

  const sk = createAccount();
  const valid: Array<[string, Build]> = [
    ["plain v2 account", withNats({})],
    ["signed by the operator identity key", (me) => accountJwt(me, op.operator)],
    ["stream import with a matching token", (me) => withNats({ imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.*") })] })(me)],
    [
      "service import with a token from an exporter signing key",
      (me) =>
        withNats({
          imports: [imp("svc.a", { type: "service", token: token(sk, me.getPublicKey(), "svc.>", { kind: "service", issuerAccount: ex }) })],
        })(me),
    ],
    [
      "an expired import token alone is only a warning",
      (me) => withNats({ imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x", { exp: now - HOUR }) })] })(me),
    ],
    [
      "a not-yet-valid import token alone is only a warning",
      (me) => withNats({ imports: [imp("p.x", { token: token(exporter, me.getPublicKey(), "p.x", { nbf: now + HOUR }) })] })(me),
    ],
    ["a deprecated `to` alone is only a warning", withNats({ imports: [imp("q.x", { to: "local.q" })] })],
    ["wildcard exports with wildcards allowed", withNats({ exports: [{ type: "stream", subject: "w.>" }, { type: "service", subject: "s.*" }] })],
    ["mappings that add up to 100", withNats({ mappings: { "m.a": [{ subject: "m.b", weight: 40 }, { subject: "m.c", weight: 60 }] } })],
    [
      "plain and scoped signing keys",
      withNats({ signing_keys: [createAccount().getPublicKey(), { kind: "user_scope", key: createAccount().getPublicKey(), role: "r", template: {} }] }),
    ],
    [
      "auth callout with user, account and xkey",
      withNats({ authorization: { auth_users: [createUser().getPublicKey()], allowed_accounts: ["*"], xkey: createCurve().getPublicKey() } }),
    ],
    ["bare account without limits, imports or exports", (me) => signJwt({ jti: newJti(), iat: nowSec(), iss: op.signer.getPublicKey(), sub: me.getPublicKey(), name: "bare", nats: { type: "account", version: 2 } }, op.signer)],
    [
      "v1 account",
      (me) =>
        signV1({ jti: newJti(), iat: nowSec(), iss: op.signer.getPublicKey(), sub: me.getPublicKey(), name: "v1", type: "account", nats: { limits: UNLIMITED } }, op.signer),
    ],
    [
      "v1 account without limits or imports",
      (me) => signV1({ jti: newJti(), iat: nowSec(), iss: op.signer.getPublicKey(), sub: me.getPublicKey(), name: "v1", type: "account", nats: {} }, op.signer),
    ],
    [
      "v1 account with an import carrying a v1 activation token",
      (me) =>
        signV1(
          {
            jti: newJti(),
            iat: nowSec(),
            iss: op.signer.getPublicKey(),
            sub: me.getPublicKey(),
            name: "v1 importer",
            type: "account",
            nats: {
              limits: UNLIMITED,
              imports: [
                imp("v1.x", {
                  token: signV1(
                    { jti: newJti(), iat: nowSec(), iss: ex, sub: me.getPublicKey(), name: "v1 token", type: "activation", nats: { subject: "v1.>", type: "stream" } },
                    exporter,
                  ),
                }),
              ],
            },
          },
          op.signer,
        ),
    ],
  ];

  it("valid - each accepted with 200 and served exactly as uploaded", async () => {
    for (const [name, build] of valid) {
      const me = createAccount();
      const jwt = build(me);
      const r = await raw(t.base, "POST", `/jwt/v1/accounts/${me.getPublicKey()}`, {}, jwt);
      assert.equal(r.status, 200, `${name}: ${r.body}`);
      assert.equal(r.body, "", name);
      const g = await raw(t.base, "GET", `/jwt/v1/accounts/${me.getPublicKey()}`);
      assert.equal(g.status, 200, name);
      assert.equal(g.body, jwt, name);
    }
  });

  it("the operator key of another operator is still refused before validation", async () => {
    const me = createAccount();
    const r = await raw(t.base, "POST", `/jwt/v1/accounts/${me.getPublicKey()}`, {}, accountJwt(me, createOperator(), { exp: now - HOUR }));
    assert.equal(r.status, 400);
    assert.equal(r.body, "untrusted issuer in request\n");
  });
});
