/**
 * Public nkeys (operator/account/user/... identities) checked and turned into node:crypto
 * Ed25519 keys, so verification never goes through the slow pure-JS tweetnacl.
 */
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { AccountServerError } from "../errors.js";

export type KeyKind = "operator" | "account" | "user" | "server" | "cluster" | "curve";

/** A public nkey is 1 prefix byte + 32 key bytes + 2 CRC bytes = 35 bytes = 56 base32 chars. */
const PUBLIC_KEY_CHARS = 56;
const RAW_LEN = 35;

/** Prefix byte → kind; every other first byte (seeds 'S', private 'P', junk) is refused. */
const KIND_BY_PREFIX: ReadonlyMap<number, KeyKind> = new Map<number, KeyKind>([
  [14 << 3, "operator"],
  [0 << 3, "account"],
  [20 << 3, "user"],
  [13 << 3, "server"],
  [2 << 3, "cluster"],
  [23 << 3, "curve"],
]);

/** RFC 4648 base32 alphabet (upper case only, as nkeys are written) → value, -1 otherwise. */
const B32: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

/** CRC-16/XMODEM (poly 0x1021, init 0), the checksum nkeys append. */
const CRC_TABLE: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/XMODEM of `data[0..end)`. */
export function crc16(data: Uint8Array, end: number = data.length): number {
  let crc = 0;
  for (let i = 0; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ (CRC_TABLE[((crc >> 8) ^ (data[i] as number)) & 0xff] as number);
  }
  return crc;
}

/**
 * Decodes and checks a public key; returns the 35 raw bytes or undefined.
 * Written as a plain loop because it runs on every HTTP request path parameter.
 */
function decodePublic(key: string): Uint8Array | undefined {
  if (typeof key !== "string" || key.length !== PUBLIC_KEY_CHARS) return undefined;
  const out = new Uint8Array(RAW_LEN);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < PUBLIC_KEY_CHARS; i++) {
    const c = key.charCodeAt(i);
    const v = c < 128 ? (B32[c] as number) : -1;
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (!KIND_BY_PREFIX.has(out[0] as number)) return undefined;
  const expected = (out[RAW_LEN - 2] as number) | ((out[RAW_LEN - 1] as number) << 8);
  if (crc16(out, RAW_LEN - 2) !== expected) return undefined;
  return out;
}

/** The kind of a public nkey, or undefined if it is not one (any defect at all). */
export function publicKeyKind(key: string): KeyKind | undefined {
  // Issuers are checked several times per JWT (decoder, addressing, validation): known ones are not decoded again.
  const hit = keyCache.get(key);
  if (hit) return hit.kind;
  const raw = decodePublic(key);
  return raw ? KIND_BY_PREFIX.get(raw[0] as number) : undefined;
}

/** True for a valid public nkey, optionally of the given kind. */
export function isPublicKey(key: string, kind?: KeyKind): boolean {
  const k = publicKeyKind(key);
  return k !== undefined && (kind === undefined || k === kind);
}

/** The public nkey text for 32 raw key bytes of `kind` (e.g. a per-process server id). */
export function encodePublicKey(kind: KeyKind, key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError("an nkey holds 32 key bytes");
  let prefix = 0;
  for (const [p, k] of KIND_BY_PREFIX) if (k === kind) prefix = p;
  const raw = new Uint8Array(RAW_LEN);
  raw[0] = prefix;
  raw.set(key, 1);
  const crc = crc16(raw, RAW_LEN - 2);
  raw[RAW_LEN - 2] = crc & 0xff;
  raw[RAW_LEN - 1] = crc >> 8;
  return base32Encode(raw);
}

/** RFC 4648 base32 without padding, as nkeys, Go's jti and activation hashes are written. */
export function base32Encode(data: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of data) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

/** Fixed DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Issuers repeat (a few operator keys sign everything), so key objects are reused. */
const KEY_CACHE_MAX = 10_000;
const keyCache = new Map<string, { readonly obj: KeyObject; readonly kind: KeyKind }>();

/**
 * The node:crypto Ed25519 public key for a public nkey of any kind (Go verifies with
 * whatever public key `iss` holds, so curve keys are not special-cased here).
 * Throws BAD_JWT when the string is not a public nkey.
 */
export function publicKeyObject(key: string): KeyObject {
  const hit = keyCache.get(key);
  if (hit) return hit.obj;
  const raw = decodePublic(key);
  if (!raw) throw new AccountServerError("BAD_JWT", { reason: `invalid public nkey ${JSON.stringify(key)}` });
  const der = Buffer.concat([SPKI_PREFIX, raw.subarray(1, 33)]);
  const obj = createPublicKey({ key: der, format: "der", type: "spki" });
  if (keyCache.size >= KEY_CACHE_MAX) {
    // Oldest insertion goes first; a map in insertion order makes that free.
    const oldest = keyCache.keys().next();
    if (!oldest.done) keyCache.delete(oldest.value);
  }
  keyCache.set(key, { obj, kind: KIND_BY_PREFIX.get(raw[0] as number)! });
  return obj;
}

/** Ed25519 check of `sig` over `data` by the public nkey `key`; false on any defect. */
export function verifySignature(key: string, data: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64) return false;
  let obj = keyCache.get(key)?.obj;
  if (!obj) {
    if (decodePublic(key) === undefined) return false;
    obj = publicKeyObject(key);
  }
  try {
    return cryptoVerify(null, data, obj, sig);
  } catch {
    return false;
  }
}
