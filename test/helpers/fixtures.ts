/**
 * Test identities: operators, signing keys, accounts, users and creds files, with full control
 * over every claim (iat, exp, nbf, jti) so ordering and expiry cases can be built exactly.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { encodePublicKey, type KeyKind } from "../../src/jwt/index.js";
import { base32Encode } from "../../src/jwt/nkey.js";
import { fmtCreds } from "@nats-io/jwt";
import * as nkeys from "@nats-io/nkeys";
import type { KeyPair } from "@nats-io/nkeys";

export type { KeyPair };

/**
 * nkeys derives the public key with pure-JS curve math on every getPublicKey() (~10 ms): derive it
 * once with node:crypto, and keep the node:crypto private key for signing.
 */
function fast(kp: KeyPair, kind: KeyKind): KeyPair {
  const priv = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, rawSeed(new TextDecoder().decode(kp.getSeed()))]),
    format: "der",
    type: "pkcs8",
  });
  nodeKeys.set(kp, priv);
  const k = encodePublicKey(kind, createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(-32));
  kp.getPublicKey = () => k;
  return kp;
}

export const createAccount = (): KeyPair => fast(nkeys.createAccount(), "account");
export const createOperator = (): KeyPair => fast(nkeys.createOperator(), "operator");
export const createUser = (): KeyPair => fast(nkeys.createUser(), "user");

export const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};

const b64url = (s: string | Uint8Array): string => Buffer.from(s).toString("base64url");

let jtiCounter = 0;
/** A unique jti in the Go library's base32 style. */
export function newJti(): string {
  jtiCounter++;
  return (randomBytes(26).toString("hex").toUpperCase() + jtiCounter).slice(0, 52);
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The 32 raw bytes of an encoded nkey seed (`S…`): base32, 2 prefix bytes, seed, 2 CRC bytes. */
function rawSeed(seed: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of seed) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new Error("not a seed");
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out.slice(2, 34));
}

// PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const nodeKeys = new WeakMap<KeyPair, KeyObject>();
const publicKeys = new WeakMap<KeyPair, string>();

/** nkeys derives the public key with pure-JS curve math on every call; derive it once. */
export function pub(kp: KeyPair): string {
  let k = publicKeys.get(kp);
  if (k === undefined) {
    k = kp.getPublicKey();
    publicKeys.set(kp, k);
  }
  return k;
}

/**
 * Sign with node:crypto instead of the pure-JS nkeys signer (tens of ms per signature), so tests
 * that mint hundreds of JWTs stay fast. Key pairs without a private key sign themselves.
 */
export function signWith(signer: KeyPair, data: Uint8Array): Uint8Array {
  let key = nodeKeys.get(signer);
  if (!key) {
    let seed: Uint8Array;
    try {
      seed = rawSeed(new TextDecoder().decode(signer.getSeed()));
    } catch {
      return signer.sign(data);
    }
    key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
    nodeKeys.set(signer, key);
  }
  return sign(null, data, key);
}

/** Sign arbitrary claims as a v2 JWT (header.payload signed) with `signer`. */
export function signJwt(claims: Record<string, unknown>, signer: KeyPair): string {
  const h = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const p = b64url(JSON.stringify(claims));
  const sig = signWith(signer, new TextEncoder().encode(`${h}.${p}`));
  return `${h}.${p}.${b64url(sig)}`;
}

export interface AccountOptions {
  readonly name?: string;
  readonly iat?: number;
  readonly exp?: number;
  readonly nbf?: number;
  readonly jti?: string;
  readonly limits?: Record<string, unknown>;
  readonly revocations?: Record<string, number>;
  /** Extra fields merged into `nats`. */
  readonly nats?: Record<string, unknown>;
}

export function accountJwt(account: KeyPair | string, signer: KeyPair, o: AccountOptions = {}): string {
  const sub = typeof account === "string" ? account : pub(account);
  const claims: Record<string, unknown> = {
    jti: o.jti ?? newJti(),
    iat: o.iat ?? nowSec(),
    iss: pub(signer),
    name: o.name ?? "ACCOUNT",
    sub,
    nats: {
      limits: { ...UNLIMITED, ...(o.limits ?? {}) },
      default_permissions: { pub: {}, sub: {} },
      ...(o.revocations ? { revocations: o.revocations } : {}),
      ...(o.nats ?? {}),
      type: "account",
      version: 2,
    },
  };
  if (o.exp !== undefined) claims["exp"] = o.exp;
  if (o.nbf !== undefined) claims["nbf"] = o.nbf;
  return signJwt(claims, signer);
}

export function userJwt(user: KeyPair, account: KeyPair, o: { iat?: number; signer?: KeyPair } = {}): string {
  const signer = o.signer ?? account;
  return signJwt(
    {
      jti: newJti(),
      iat: o.iat ?? nowSec(),
      iss: pub(signer),
      name: "user",
      sub: pub(user),
      nats: {
        pub: {},
        sub: {},
        subs: -1,
        data: -1,
        payload: -1,
        ...(o.signer ? { issuer_account: pub(account) } : {}),
        type: "user",
        version: 2,
      },
    },
    signer,
  );
}

/** A creds file body for a fresh user of `account`. */
export function userCreds(account: KeyPair, o: { user?: KeyPair; iat?: number } = {}): { creds: string; user: KeyPair } {
  const user = o.user ?? createUser();
  const jwt = userJwt(user, account, o.iat !== undefined ? { iat: o.iat } : {});
  return { creds: new TextDecoder().decode(fmtCreds(jwt, user)), user };
}

export interface OperatorSetup {
  readonly operator: KeyPair;
  readonly signer: KeyPair;
  readonly operatorJwt: string;
  readonly sys: KeyPair;
  readonly sysJwt: string;
}

/** An operator with one signing key and a system account signed by that key. */
export function makeOperator(o: { strict?: boolean; accountServerUrl?: string; extraSigningKeys?: string[] } = {}): OperatorSetup {
  const operator = createOperator();
  const signer = createOperator();
  const sys = createAccount();
  const op = pub(operator);
  const operatorJwt = signJwt(
    {
      jti: newJti(),
      iat: nowSec(),
      iss: op,
      name: "OP",
      sub: op,
      nats: {
        signing_keys: [pub(signer), ...(o.extraSigningKeys ?? [])],
        system_account: pub(sys),
        ...(o.accountServerUrl ? { account_server_url: o.accountServerUrl } : {}),
        ...(o.strict ? { strict_signing_key_usage: true } : {}),
        type: "operator",
        version: 2,
      },
    },
    operator,
  );
  const sysJwt = accountJwt(sys, signer, { name: "SYS" });
  return { operator, signer, operatorJwt, sys, sysJwt };
}

/*
 * Go-shaped JWTs: what nsc and every Go tool send. Go's jwt library (jwt/v2 claims.go) marshals
 * struct fields in declaration order, omits zero values, escapes <, > and & in strings, sorts map
 * keys, and sets `jti` to base32(SHA-512/256) of the standard claims alone (jti emptied): two edits
 * issued in one second share `iat` and `jti` whatever their `nats` section says.
 */

/** Go's encoding/json string escaping on top of JSON.stringify. */
function goJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** An object without the keys whose value Go's `omitempty` drops (0, "", false, empty list/map). */
function omitEmpty(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === 0 || v === "" || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}

/** Keys sorted, as Go marshals a map. */
function sortedMap<T>(m: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface StandardClaims {
  readonly aud?: string;
  readonly exp?: number;
  readonly iat: number;
  readonly iss: string;
  readonly name?: string;
  readonly nbf?: number;
  readonly sub: string;
}

/** ClaimsData in Go's field order (aud, exp, jti, iat, iss, name, nbf, sub), zero values omitted. */
function goClaimsData(c: StandardClaims, jti: string): Record<string, unknown> {
  return omitEmpty({ aud: c.aud, exp: c.exp, jti, iat: c.iat, iss: c.iss, name: c.name, nbf: c.nbf, sub: c.sub });
}

/** The `jti` Go's jwt library gives these standard claims (the `nats` section plays no part). */
export function goJti(c: StandardClaims): string {
  return base32Encode(createHash("sha512-256").update(goJson(goClaimsData(c, ""))).digest());
}

/** nsc's defaults for a new account (jwt.NewAccountClaims): no limits, JetStream disabled (0). */
export const GO_DEFAULT_LIMITS: Readonly<Record<string, number | boolean>> = UNLIMITED;

// OperatorLimits (NatsLimits, AccountLimits, JetStreamLimits, tiered) in Go's field order.
const GO_LIMIT_ORDER = [
  "subs", "data", "payload",
  "imports", "exports", "wildcards", "disallow_bearer", "conn", "leaf",
  "mem_storage", "disk_storage", "streams", "consumer", "max_ack_pending",
  "mem_max_stream_bytes", "disk_max_stream_bytes", "max_bytes_required",
  "tiered_limits",
];

export interface GoAccountOptions {
  readonly name?: string;
  readonly iat?: number;
  readonly exp?: number;
  readonly nbf?: number;
  /** Merged over GO_DEFAULT_LIMITS; a 0 or false drops the key, as Go does. */
  readonly limits?: Record<string, unknown>;
  readonly imports?: readonly Record<string, unknown>[];
  readonly exports?: readonly Record<string, unknown>[];
  readonly signingKeys?: readonly string[];
  readonly revocations?: Record<string, number>;
  readonly mappings?: Record<string, unknown>;
  readonly description?: string;
  readonly tags?: readonly string[];
}

/** An account JWT byte for byte as nsc (Go jwt/v2) would encode it. */
export function goAccountJwt(account: KeyPair | string, signer: KeyPair, o: GoAccountOptions = {}): string {
  const std: StandardClaims = {
    ...(o.exp !== undefined ? { exp: o.exp } : {}),
    iat: o.iat ?? nowSec(),
    iss: pub(signer),
    name: o.name ?? "ACCOUNT",
    ...(o.nbf !== undefined ? { nbf: o.nbf } : {}),
    sub: typeof account === "string" ? account : pub(account),
  };
  const merged: Record<string, unknown> = { ...GO_DEFAULT_LIMITS, ...(o.limits ?? {}) };
  const limits = omitEmpty(Object.fromEntries(GO_LIMIT_ORDER.map((k) => [k, merged[k]])));
  const nats = omitEmpty({
    imports: o.imports,
    exports: o.exports,
    limits,
    signing_keys: o.signingKeys,
    revocations: o.revocations && Object.keys(o.revocations).length > 0 ? sortedMap(o.revocations) : undefined,
    default_permissions: { pub: {}, sub: {} },
    mappings: o.mappings && Object.keys(o.mappings).length > 0 ? sortedMap(o.mappings) : undefined,
    description: o.description,
    tags: o.tags,
    type: "account",
    version: 2,
  });
  const h = b64url(goJson({ typ: "JWT", alg: "ed25519-nkey" }));
  const p = b64url(goJson({ ...goClaimsData(std, goJti(std)), nats }));
  const sig = signWith(signer, new TextEncoder().encode(`${h}.${p}`));
  return `${h}.${p}.${b64url(sig)}`;
}
