/**
 * Tests for public nkey parsing and node:crypto signature checks, cross-checked against
 * the reference nkeys.js implementation on valid keys and corrupted variants of them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  createAccount,
  createCluster,
  createCurve,
  createOperator,
  createServer,
  createUser,
  fromPublic,
} from "@nats-io/nkeys";
import type { KeyPair } from "@nats-io/nkeys";
import { isPublicKey, publicKeyKind, publicKeyObject, verifySignature } from "../../src/jwt/nkey.js";
import type { KeyKind } from "../../src/jwt/nkey.js";
import { AccountServerError } from "../../src/errors.js";

const makers: ReadonlyArray<[KeyKind, () => KeyPair, string]> = [
  ["operator", createOperator, "O"],
  ["account", createAccount, "A"],
  ["user", createUser, "U"],
  ["server", createServer, "N"],
  ["cluster", createCluster, "C"],
  ["curve", createCurve, "X"],
];

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function nkeysAccepts(key: string): boolean {
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

describe("nkey - publicKeyKind / isPublicKey", () => {
  for (const [kind, make, letter] of makers) {
    it(`recognises ${kind} keys`, () => {
      const pub = make().getPublicKey();
      assert.equal(pub[0], letter);
      assert.equal(publicKeyKind(pub), kind);
      assert.equal(isPublicKey(pub), true);
      assert.equal(isPublicKey(pub, kind), true);
      for (const [other] of makers) {
        if (other !== kind) assert.equal(isPublicKey(pub, other), false, `${kind} key is not ${other}`);
      }
    });
  }

  it("refuses seeds, wrong lengths, lower case, padding and junk", () => {
    const kp = createAccount();
    const pub = kp.getPublicKey();
    const seed = new TextDecoder().decode(kp.getSeed());
    const bad = [
      "",
      seed,
      pub.slice(0, 55),
      pub + "A",
      pub.toLowerCase(),
      pub.slice(0, 54) + "==",
      pub.slice(0, 55) + "1",
      pub.slice(0, 55) + "é",
      ` ${pub.slice(1)}`,
      "A".repeat(55) + "B",
    ];
    for (const key of bad) {
      assert.equal(publicKeyKind(key), undefined, JSON.stringify(key));
      assert.equal(isPublicKey(key), false);
    }
    assert.equal(publicKeyKind(undefined as unknown as string), undefined);
    assert.equal(publicKeyKind(42 as unknown as string), undefined);
  });

  it("accepts the all-zero account key, whose CRC is zero too (so do Go and nkeys.js)", () => {
    const zero = "A".repeat(56);
    assert.equal(publicKeyKind(zero), "account");
    assert.equal(nkeysAccepts(zero), true);
  });

  it("agrees with nkeys.js on every single-character corruption", () => {
    for (const [, make] of makers) {
      const pub = make().getPublicKey();
      for (let i = 0; i < pub.length; i++) {
        for (const c of BASE32) {
          const mutated = pub.slice(0, i) + c + pub.slice(i + 1);
          if (mutated === pub) continue;
          assert.equal(publicKeyKind(mutated) !== undefined, nkeysAccepts(mutated), mutated);
        }
      }
    }
  });

  it("is cheap enough for the request path", () => {
    const pub = createAccount().getPublicKey();
    const start = performance.now();
    let n = 0;
    for (let i = 0; i < 100_000; i++) if (isPublicKey(pub, "account")) n++;
    assert.equal(n, 100_000);
    assert.ok(performance.now() - start < 2_000, "100k checks should take well under 2 s");
  });
});

describe("nkey - publicKeyObject / verifySignature", () => {
  const kp = createOperator();
  const pub = kp.getPublicKey();
  const data = Buffer.from("header.payload");
  const sig = Buffer.from(kp.sign(data));

  it("builds an Ed25519 KeyObject, cached per key", () => {
    const k = publicKeyObject(pub);
    assert.equal(k.type, "public");
    assert.equal(k.asymmetricKeyType, "ed25519");
    assert.equal(publicKeyObject(pub), k);
  });

  it("throws BAD_JWT for something that is not a public key", () => {
    assert.throws(
      () => publicKeyObject("OABC"),
      (e: unknown) => e instanceof AccountServerError && e.code === "BAD_JWT",
    );
  });

  it("verifies nkeys signatures", () => {
    assert.equal(verifySignature(pub, data, sig), true);
  });

  it("refuses tampered data, other keys and malformed input without throwing", () => {
    const tampered = Buffer.from("header.pAyload");
    assert.equal(verifySignature(pub, tampered, sig), false);
    assert.equal(verifySignature(createOperator().getPublicKey(), data, sig), false);
    const flipped = Buffer.from(sig);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    assert.equal(verifySignature(pub, data, flipped), false);
    assert.equal(verifySignature(pub, data, sig.subarray(0, 63)), false);
    assert.equal(verifySignature(pub, data, Buffer.alloc(0)), false);
    assert.equal(verifySignature("not-a-key", data, sig), false);
    assert.equal(verifySignature(pub.slice(0, 55) + (pub[55] === "A" ? "B" : "A"), data, sig), false);
  });

  it("verifies with keys of every kind (Go does not restrict the verifying key)", () => {
    for (const [kind, make] of makers) {
      if (kind === "curve") continue; // curve key pairs cannot sign
      const k = make();
      assert.equal(verifySignature(k.getPublicKey(), data, Buffer.from(k.sign(data))), true, kind);
    }
  });
});
