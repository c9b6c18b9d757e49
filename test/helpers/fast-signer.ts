/**
 * An operator signing key backed by node:crypto Ed25519, for tests that sign many JWTs: the
 * pure-JS nkeys signer needs tens of milliseconds per signature.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { encodePublicKey } from "../../src/jwt/nkey.js";
import type { KeyPair } from "./fixtures.js";

/** Only getPublicKey and sign are implemented: all that signJwt/accountJwt use. */
export function fastSigner(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pub = encodePublicKey("operator", publicKey.export({ format: "der", type: "spki" }).subarray(-32));
  return { getPublicKey: () => pub, sign: (d: Uint8Array) => new Uint8Array(sign(null, d, privateKey)) } as unknown as KeyPair;
}
