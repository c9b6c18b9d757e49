/**
 * Issuing JWTs: nkey seeds turned into node:crypto Ed25519 private keys, and v2 tokens signed
 * with them (`header.payload` signed), as Go's nats-io/jwt encodes them.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { base32Encode, crc16, encodePublicKey, type KeyKind } from "./nkey.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/** First 5 bits of a seed's first byte: 'S'. */
const SEED_PREFIX = 18 << 3;
const KIND_PREFIX: ReadonlyMap<number, KeyKind> = new Map<number, KeyKind>([
  [14 << 3, "operator"],
  [0 << 3, "account"],
  [20 << 3, "user"],
]);
/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

function base32Decode(s: string): Uint8Array | undefined {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

/** A private nkey ready to sign; the seed text itself is not kept. */
export interface SigningKey {
  readonly kind: KeyKind;
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

/**
 * Decode an nkey seed (`SO…`, `SA…`, `SU…`). Errors never contain the seed text, so they are safe
 * to log.
 */
export function parseSeed(seed: string): SigningKey {
  const raw = seed.length === 58 ? base32Decode(seed) : undefined;
  if (!raw || raw.length !== 36) throw new Error("not an nkey seed (58 base32 characters starting with S)");
  const b0 = raw[0]!;
  const b1 = raw[1]!;
  if ((b0 & 0xf8) !== SEED_PREFIX) throw new Error("not an nkey seed (it must start with S)");
  const kind = KIND_PREFIX.get(((b0 & 7) << 5) | ((b1 & 0xf8) >> 3));
  if (kind === undefined) throw new Error("not an operator, account or user seed");
  const crc = raw[34]! | (raw[35]! << 8);
  if (crc16(raw, 34) !== crc) throw new Error("the seed's checksum is wrong");
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, raw.subarray(2, 34)]),
    format: "der",
    type: "pkcs8",
  });
  const pub = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
  return { kind, publicKey: encodePublicKey(kind, pub), privateKey };
}

/**
 * The seed in a key file's text: a bare seed (nsc's `.nk` files), or the seed line of a creds-style
 * armoured file. Undefined when there is none.
 */
export function findSeed(text: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const s = line.trim();
    if (/^S[OAU][A-Z2-7]{56}$/.test(s)) return s;
  }
  return undefined;
}

/**
 * A unique `jti` for a claim set: base32 of SHA-512/256 over the payload without its `jti`, so
 * unlike Go's (standard claims only) two different JWTs of one second never share it.
 */
export function claimsId(claims: Record<string, unknown>): string {
  const h = createHash("sha512-256").update(JSON.stringify({ ...claims, jti: "" })).digest();
  return base32Encode(h);
}

/** Sign `claims` (which must carry `iss` = the key's public key) as a v2 JWT. */
export function encodeJwt(claims: Record<string, unknown>, key: SigningKey): string {
  if (claims["iss"] !== key.publicKey) throw new Error("the claims' iss is not the signing key");
  const h = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })).toString("base64url");
  const p = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const sig = sign(null, Buffer.from(`${h}.${p}`), key.privateKey);
  return `${h}.${p}.${sig.toString("base64url")}`;
}

/** The seed text (`S…`) for a 32-byte Ed25519 seed of `kind`, as in creds and `.nk` files. */
export function encodeSeed(kind: "operator" | "account" | "user", seed: Uint8Array): string {
  if (seed.length !== 32) throw new RangeError("an nkey seed holds 32 bytes");
  let prefix = 0;
  for (const [p, k] of KIND_PREFIX) if (k === kind) prefix = p;
  const raw = new Uint8Array(36);
  // 'S' in the first five bits, then the kind's prefix across the next two bytes.
  raw[0] = SEED_PREFIX | (prefix >> 5);
  raw[1] = (prefix & 31) << 3;
  raw.set(seed, 2);
  const crc = crc16(raw, 34);
  raw[34] = crc & 0xff;
  raw[35] = crc >> 8;
  return base32Encode(raw);
}

/** A fresh key pair, with its seed text (for the throwaway identities of `demo`). */
export function mintKey(kind: "operator" | "account" | "user"): SigningKey & { readonly seed: string } {
  const { privateKey } = generateKeyPairSync("ed25519");
  // The raw 32-byte seed ends the PKCS#8 encoding.
  const seed = encodeSeed(kind, privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32));
  return { ...parseSeed(seed), seed };
}

/** Sign `claims` with `key` as issuer at `iat`, with a jti of their own. */
export function signClaims(claims: Record<string, unknown>, key: SigningKey, iat: number): string {
  const body = { ...claims, iat, iss: key.publicKey };
  return encodeJwt({ jti: claimsId(body), ...body }, key);
}

/** The `.creds` text nats clients read: a user JWT and its seed. */
export function formatCreds(userJwt: string, userSeed: string): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    userJwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    userSeed,
    "------END USER NKEY SEED------",
    "",
    "*************************************************************",
    "",
  ].join("\n");
}
