/**
 * Tests for Go-compatible JWT decoding: fixtures minted with @nats-io/jwt (v2) or signed by
 * hand (v1, malformed variants), checked for the accepted shapes and the exact refusal reasons.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import {
  Algorithms,
  createAccount,
  createOperator,
  createServer,
  createUser,
  encodeAccount,
  encodeActivation,
  encodeGeneric,
  encodeOperator,
  encodeUser,
} from "@nats-io/jwt";
import type { KeyPair } from "@nats-io/jwt";
import {
  decodeAccountJwt,
  decodeActivationJwt,
  decodeGenericJwt,
  decodeJwt,
  decodeOperatorJwt,
  peekClaims,
} from "../../src/jwt/decode.js";
import { extractJwt } from "../../src/jwt/armour.js";
import { AccountServerError } from "../../src/errors.js";
import { UNLIMITED } from "../helpers/fixtures.js";


const V2_HEADER = { typ: "JWT", alg: "ed25519-nkey" };
const V1_HEADER = { typ: "JWT", alg: "ed25519" };

function b64(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return Buffer.from(text, "utf8").toString("base64url");
}

/** Signs like Go: v2 over `header.payload`, v1 over the payload chunk alone. */
function sign(kp: KeyPair, header: unknown, payload: unknown, input: "v1" | "v2" = "v2"): string {
  const h = b64(header);
  const p = b64(payload);
  const signed = input === "v2" ? `${h}.${p}` : p;
  const sig = Buffer.from(kp.sign(Buffer.from(signed))).toString("base64url");
  return `${h}.${p}.${sig}`;
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

function expectBadJwt(fn: () => unknown, reason: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AccountServerError, `expected AccountServerError, got ${String(e)}`);
    assert.equal(e.code, "BAD_JWT");
    if (typeof reason === "string") assert.equal(e.reason, reason);
    else assert.match(e.reason ?? "", reason);
    return true;
  });
}

describe("decode - accepted tokens", () => {
  const operator = createOperator();
  const account = createAccount();
  let v2Account = "";

  before(async () => {
    v2Account = await encodeAccount("team", account, { limits: UNLIMITED }, { signer: operator });
  });

  it("decodes a v2 account signed by an operator", () => {
    const d = decodeAccountJwt(v2Account);
    assert.equal(d.token, v2Account);
    assert.deepEqual(d.header, { typ: "JWT", alg: "ed25519-nkey" });
    assert.equal(d.kind, "account");
    assert.equal(d.version, 2);
    assert.equal(d.iss, operator.getPublicKey());
    assert.equal(d.sub, account.getPublicKey());
    assert.equal(d.exp, 0);
    assert.equal(d.nbf, 0);
    assert.ok(d.iat > 0);
    assert.ok(d.jti.length > 0);
    assert.equal(d.claims.name, "team");
    assert.equal(d.claims.nats?.limits?.imports, -1);
  });

  it("decodes a hand-made v1 account (signature over the payload only)", () => {
    const token = sign(
      operator,
      V1_HEADER,
      {
        jti: "V1JTI",
        iat: now(),
        iss: operator.getPublicKey(),
        sub: account.getPublicKey(),
        name: "old",
        type: "account",
        nats: { limits: UNLIMITED },
      },
      "v1",
    );
    const d = decodeAccountJwt(token);
    assert.equal(d.version, 1);
    assert.equal(d.kind, "account");
    assert.equal(d.jti, "V1JTI");
    assert.equal(d.header.alg, "ed25519");
  });

  it("decodes a v1 account minted by jwt.js", async () => {
    const token = await encodeAccount("v1", account, {}, { signer: operator, algorithm: Algorithms.v1 });
    assert.equal(decodeAccountJwt(token).version, 1);
  });

  it("keeps a trailing newline in the token (Go skips CR/LF inside base64)", () => {
    const d = decodeAccountJwt(`${v2Account}\n`);
    assert.equal(d.token, `${v2Account}\n`);
    assert.equal(d.sub, account.getPublicKey());
    const crlf = `${v2Account.slice(0, -10)}\r\n${v2Account.slice(-10)}\r\n`;
    assert.equal(decodeAccountJwt(crlf).token, crlf);
  });

  it("decodes the payload as UTF-8", () => {
    // jwt.js cannot encode non-Latin-1 text (btoa), so this one is signed by hand.
    const name = "Zürich – 東京 🚀";
    const token = sign(operator, V2_HEADER, {
      iss: operator.getPublicKey(),
      sub: account.getPublicKey(),
      name,
      nats: { type: "account", version: 2, description: "ünïcödé" },
    });
    const d = decodeAccountJwt(token);
    assert.equal(d.claims.name, name);
    assert.equal(d.claims.nats?.description, "ünïcödé");
  });

  it("accepts header typ/alg in any case", () => {
    const payload = {
      iss: operator.getPublicKey(),
      sub: account.getPublicKey(),
      nats: { type: "account", version: 2 },
    };
    const token = sign(operator, { typ: "jwt", alg: "ED25519-NKEY" }, payload);
    assert.equal(decodeAccountJwt(token).header.alg, "ED25519-NKEY");
  });

  it("picks the signing input by claim version, not by header alg", () => {
    // v1 header but v2 claims: Go's Decode verifies header.payload.
    const payload = { iss: operator.getPublicKey(), sub: account.getPublicKey(), nats: { type: "account", version: 2 } };
    const token = sign(operator, V1_HEADER, payload, "v2");
    assert.equal(decodeAccountJwt(token).version, 2);
    const mismatched = sign(operator, V1_HEADER, payload, "v1");
    expectBadJwt(() => decodeAccountJwt(mismatched), "claim failed V2 signature verification");
    // ...while the store's generic decoder goes by the header and accepts it.
    assert.equal(decodeGenericJwt(mismatched).kind, "account");
  });

  it("decodes operator JWTs, bare or decorated", async () => {
    const signingKey = createOperator().getPublicKey();
    const token = await encodeOperator("op", operator, {
      signing_keys: [signingKey],
      system_account: account.getPublicKey(),
    });
    const decorated = [
      "-----BEGIN NATS OPERATOR JWT-----",
      token,
      "------END NATS OPERATOR JWT------",
      "",
      "************************* IMPORTANT *************************",
      "NKEY Seed printed below can be used to sign and prove identity.",
      "",
    ].join("\n");
    assert.equal(extractJwt(decorated), token);
    assert.equal(extractJwt(decorated.replaceAll("\n", "\r\n")), token);
    assert.equal(extractJwt(`\n  ${token}\n\n`), token);
    const d = decodeOperatorJwt(extractJwt(decorated));
    assert.equal(d.kind, "operator");
    assert.equal(d.iss, operator.getPublicKey());
    assert.deepEqual(d.claims.nats?.signing_keys, [signingKey]);
    assert.equal(d.claims.nats?.system_account, account.getPublicKey());
  });

  it("decodes activations, users and generic claims", async () => {
    const exporter = createAccount();
    const act = await encodeActivation("act", account, exporter, "service", { subject: "svc.>" });
    const a = decodeActivationJwt(act);
    assert.equal(a.kind, "activation");
    assert.equal(a.iss, exporter.getPublicKey());

    const user = await encodeUser("u", createUser(), account);
    assert.equal(decodeJwt(user).kind, "user");

    // jwt.js generic (nats.type "generic") and nsc's DELETE request (no type at all).
    const generic = await encodeGeneric("del", operator, "generic", { accounts: [account.getPublicKey()] });
    assert.equal(decodeJwt(generic).kind, "generic");
    const nscDelete = sign(operator, V2_HEADER, {
      jti: "J",
      iat: now(),
      iss: operator.getPublicKey(),
      sub: operator.getPublicKey(),
      nats: { accounts: [account.getPublicKey()], version: 2 },
    });
    const d = decodeJwt(nscDelete);
    assert.equal(d.kind, "generic");
    assert.equal(d.version, 2);
  });
});

describe("decode - refused tokens", () => {
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const accountPayload = () => ({
    jti: "JTI",
    iat: now(),
    iss: operator.getPublicKey(),
    sub: account.getPublicKey(),
    name: "a",
    nats: { limits: UNLIMITED, type: "account", version: 2 },
  });
  let good = "";
  let userJwt = "";
  let operatorJwt = "";

  before(async () => {
    good = sign(operator, V2_HEADER, accountPayload());
    userJwt = await encodeUser("u", user, account);
    operatorJwt = await encodeOperator("op", operator);
  });

  const cases: ReadonlyArray<[string, () => string, string | RegExp, ((t: string) => unknown)?]> = [
    ["2 chunks", () => good.split(".").slice(0, 2).join("."), "expected 3 chunks, got 2"],
    ["4 chunks", () => `${good}.x`, "expected 3 chunks, got 4"],
    ["empty string", () => "", "expected 3 chunks, got 1"],
    [
      "padded base64 in the header",
      () => {
        const [h, p, s] = good.split(".");
        return `${h}==.${p}.${s}`;
      },
      /^header: illegal base64 data at input byte \d+$/,
    ],
    [
      "padded base64 in the signature",
      () => `${good}==`,
      /^signature: illegal base64 data at input byte \d+$/,
    ],
    [
      "standard base64 alphabet",
      () => {
        const [h, p, s] = good.split(".");
        return `${h}.${p}+.${s}`;
      },
      /^payload: illegal base64 data/,
    ],
    ["space inside", () => `${good.slice(0, 20)} ${good.slice(20)}`, /^header: illegal base64 data at input byte 20$/],
    ["tab at the end", () => `${good}\t`, /^signature: illegal base64 data/],
    ["bad header typ", () => sign(operator, { typ: "JWS", alg: "ed25519-nkey" }, accountPayload()), 'not supported type "JWS"'],
    ["missing header typ", () => sign(operator, { alg: "ed25519-nkey" }, accountPayload()), 'not supported type ""'],
    ["unknown alg", () => sign(operator, { typ: "JWT", alg: "HS256" }, accountPayload()), 'unexpected "HS256" algorithm'],
    ["alg with a suffix", () => sign(operator, { typ: "JWT", alg: "ed25519-nkeyx" }, accountPayload()), 'unexpected "ed25519-nkeyx" algorithm'],
    ["header not JSON", () => sign(operator, "{typ", accountPayload()), /^header: invalid JSON/],
    ["bad JSON payload", () => sign(operator, V2_HEADER, '{"iss": '), /^payload: invalid JSON/],
    ["payload is an array", () => sign(operator, V2_HEADER, "[1,2]"), /cannot unmarshal array/],
    [
      "tampered payload",
      () => {
        const [h, , s] = good.split(".");
        return `${h}.${b64({ ...accountPayload(), name: "evil" })}.${s}`;
      },
      "claim failed V2 signature verification",
    ],
    [
      "signature by another key",
      () => sign(createOperator(), V2_HEADER, accountPayload()),
      "claim failed V2 signature verification",
    ],
    [
      "v1 claims signed over header.payload",
      () => sign(operator, V1_HEADER, { ...accountPayload(), nats: { limits: UNLIMITED }, type: "account" }, "v2"),
      "claim failed V1 signature verification",
    ],
    [
      "empty signature",
      () => good.slice(0, good.lastIndexOf(".") + 1),
      "claim failed V2 signature verification",
    ],
    [
      "version 3",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "account", version: 3 } }),
      "JWT was generated by a newer version",
    ],
    [
      "account version 0",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "account", limits: UNLIMITED } }),
      "library supports version 2 or less - received 0",
    ],
    [
      "account version -1",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "account", version: -1 } }),
      "library supports version 2 or less - received -1",
    ],
    ["user JWT submitted as account", () => userJwt, "not account claim", decodeAccountJwt],
    ["operator JWT submitted as account", () => operatorJwt, "not account claim", decodeAccountJwt],
    ["account JWT submitted as operator", () => good, "not operator claim", decodeOperatorJwt],
    ["account JWT submitted as activation", () => good, "not activation claim", decodeActivationJwt],
    [
      "cluster kind",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "cluster", version: 2 } }),
      "ClusterClaims are not supported",
    ],
    [
      "server kind (v1 style)",
      () => sign(operator, V1_HEADER, { ...accountPayload(), type: "server" }, "v1"),
      "ServerClaims are not supported",
    ],
    [
      "issuer a user key",
      () => sign(user, V2_HEADER, { ...accountPayload(), iss: user.getPublicKey() }),
      "unable to validate expected prefixes - [account operator]",
    ],
    [
      "operator claims issued by an account",
      () => sign(account, V2_HEADER, { iss: account.getPublicKey(), sub: account.getPublicKey(), nats: { type: "operator", version: 2 } }),
      "unable to validate expected prefixes - [operator]",
    ],
    [
      "user claims issued by a server key",
      () => {
        const server = createServer();
        return sign(server, V2_HEADER, { iss: server.getPublicKey(), sub: user.getPublicKey(), nats: { type: "user", version: 2 } });
      },
      "unable to validate expected prefixes - [account]",
    ],
    [
      "iss that is not a key",
      () => sign(operator, V2_HEADER, { ...accountPayload(), iss: "nobody" }),
      "claim failed V2 signature verification",
    ],
    [
      "iat as a string",
      () => sign(operator, V2_HEADER, { ...accountPayload(), iat: "yesterday" }),
      /^json: cannot unmarshal string into Go struct field iat of type int64$/,
    ],
    [
      "fractional exp",
      () => sign(operator, V2_HEADER, { ...accountPayload(), exp: 1.5 }),
      /cannot unmarshal number 1\.5 into Go struct field exp/,
    ],
    [
      "nats.version as a string",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "account", version: "2" } }),
      /cannot unmarshal string into Go struct field identifier\.nats\.version/,
    ],
    [
      "imports as an object",
      () => sign(operator, V2_HEADER, { ...accountPayload(), nats: { type: "account", version: 2, imports: {} } }),
      /cannot unmarshal object into Go struct field nats\.imports of type array/,
    ],
    [
      "unknown import type",
      () =>
        sign(operator, V2_HEADER, {
          ...accountPayload(),
          nats: { type: "account", version: 2, imports: [{ type: "Stream", subject: "a", account: account.getPublicKey() }] },
        }),
      'unknown export type "Stream"',
    ],
    [
      "unknown signing key scope",
      () =>
        sign(operator, V2_HEADER, {
          ...accountPayload(),
          nats: { type: "account", version: 2, signing_keys: [{ kind: "admin_scope", key: account.getPublicKey() }] },
        }),
      /^unknown signing key scope/,
    ],
    [
      "v1 account with a scoped signing key",
      () =>
        sign(
          operator,
          V1_HEADER,
          { ...accountPayload(), type: "account", nats: { signing_keys: [{ kind: "user_scope", key: "A" }] } },
          "v1",
        ),
      /cannot unmarshal object into Go struct field nats\.signing_keys\[0\] of type string/,
    ],
    [
      "mapping weight above uint8",
      () =>
        sign(operator, V2_HEADER, {
          ...accountPayload(),
          nats: { type: "account", version: 2, mappings: { a: [{ subject: "b", weight: 300 }] } },
        }),
      /of type uint8$/,
    ],
    ["token over 1 MiB", () => `${good.split(".")[0]}.${"A".repeat(1024 * 1024)}.x`, /token too large$/],
  ];

  for (const [name, make, reason, decoder] of cases) {
    it(name, () => {
      const token = make();
      expectBadJwt(() => (decoder ?? decodeJwt)(token), reason);
    });
  }

  it("accepts the untouched baseline token", () => {
    assert.equal(decodeAccountJwt(good).sub, account.getPublicKey());
  });
});

describe("decode - peekClaims", () => {
  it("reads ordering fields without verifying", async () => {
    const operator = createOperator();
    const account = createAccount();
    const token = await encodeAccount("a", account, {}, { signer: operator, exp: 4_000_000_000 });
    const [h, p] = token.split(".");
    const forged = `${h}.${p}.bm90LWEtc2ln`;
    const peeked = peekClaims(forged);
    const decoded = decodeAccountJwt(token);
    assert.deepEqual(peeked, {
      iat: decoded.iat,
      exp: 4_000_000_000,
      jti: decoded.jti,
      sub: account.getPublicKey(),
      iss: operator.getPublicKey(),
    });
    assert.deepEqual(peekClaims(`${token}\n`), peeked);
  });

  it("returns undefined instead of throwing", () => {
    for (const t of ["", "a.b", "a.b.c.d", "a.!!!.c", `x.${b64("[1]")}.y`, `x.${b64("{")}.y`]) {
      assert.equal(peekClaims(t), undefined, t);
    }
    assert.deepEqual(peekClaims(`x.${b64({ iat: "1" })}.y`), { iat: 0, exp: 0, jti: "", sub: "", iss: "" });
  });
});
