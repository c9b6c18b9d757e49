/**
 * The Go-shaped fixtures are what nsc sends: field order, omitted zero values, escaped `>`, and a
 * `jti` over the standard claims alone. Our decoder and validator take them as nats-server does.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeAccountJwt } from "../../src/jwt/decode.js";
import { validateAccountClaims } from "../../src/jwt/validate.js";
import { createAccount, goAccountJwt, goJti, makeOperator, nowSec } from "../helpers/fixtures.js";

const payload = (jwt: string): string => Buffer.from(jwt.split(".")[1]!, "base64url").toString();

describe("jwt - Go-shaped account JWTs (nsc)", () => {
  const op = makeOperator();
  const a = createAccount();
  const iat = nowSec();

  it("jti hashes only the standard claims: edits within a second share it", () => {
    const v1 = goAccountJwt(a, op.signer, { iat, limits: { conn: 1 } });
    const v2 = goAccountJwt(a, op.signer, { iat, revocations: { [createAccount().getPublicKey()]: iat } });
    const later = goAccountJwt(a, op.signer, { iat: iat + 1, limits: { conn: 1 } });
    const [d1, d2, d3] = [v1, v2, later].map(decodeAccountJwt);
    assert.equal(d1!.jti, d2!.jti);
    assert.notEqual(d1!.jti, d3!.jti);
    assert.equal(d1!.jti, goJti({ iat, iss: op.signer.getPublicKey(), name: "ACCOUNT", sub: a.getPublicKey() }));
    assert.match(d1!.jti, /^[A-Z2-7]{52}$/);
  });

  it("Go's encoding: field order, zero values omitted, <, > and & escaped", () => {
    const jwt = goAccountJwt(a, op.signer, {
      iat,
      limits: { conn: 0, mem_storage: 1024, disk_storage: 0 },
      exports: [{ name: "s", subject: "s.>", type: "stream" }],
    });
    const text = payload(jwt);
    assert.ok(text.startsWith(`{"jti":"`), text);
    assert.match(text, /"iat":\d+,"iss":"O[A-Z2-7]+","name":"ACCOUNT","sub":"A[A-Z2-7]+","nats":\{"exports":/);
    assert.ok(text.includes(`"subject":"s.\\u003e"`), text);
    assert.ok(text.includes(`"limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"leaf":-1,"mem_storage":1024}`), text);
    assert.ok(text.endsWith(`"default_permissions":{"pub":{},"sub":{}},"type":"account","version":2}}`), text);
    const d = decodeAccountJwt(jwt);
    assert.equal(d.claims.nats?.exports?.[0]?.subject, "s.>");
    assert.deepEqual(validateAccountClaims(d, iat).filter((i) => i.blocking), []);
  });
});
