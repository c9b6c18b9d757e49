/**
 * Benchmark identities and JWTs signed with node:crypto Ed25519: fast enough to sign 100,000
 * account JWTs in a few seconds, where the pure-JS nkeys signer would take minutes.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { base32Encode, crc16 } from "../../src/jwt/nkey.js";

/** nkey prefix bytes (the first byte of a decoded public key). */
const PREFIX = { operator: 14 << 3, account: 0, user: 20 << 3 } as const;
const SEED_PREFIX = 18 << 3;

export type Kind = keyof typeof PREFIX;

export interface Identity {
  readonly kind: Kind;
  /** Public nkey (O…, A…, U…). */
  readonly pub: string;
  /** Encoded nkey seed (SO…, SA…, SU…), as written in creds files. */
  readonly seed: string;
  readonly key: KeyObject;
}

function withCrc(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 2);
  out.set(body);
  const c = crc16(body);
  out[body.length] = c & 0xff;
  out[body.length + 1] = c >> 8;
  return out;
}

/** Encode 32 raw Ed25519 public key bytes as a public nkey of `kind`. */
export function encodePublic(kind: Kind, raw: Uint8Array): string {
  const body = new Uint8Array(33);
  body[0] = PREFIX[kind];
  body.set(raw, 1);
  return base32Encode(withCrc(body));
}

function encodeSeed(kind: Kind, raw: Uint8Array): string {
  const p = PREFIX[kind];
  const body = new Uint8Array(34);
  body[0] = SEED_PREFIX | (p >> 5);
  body[1] = (p & 31) << 3;
  body.set(raw, 2);
  return base32Encode(withCrc(body));
}

const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** The identity of `kind` whose Ed25519 private key is the 32 bytes `seed`. */
export function identityFromSeed(kind: Kind, seed: Uint8Array): Identity {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const jwk = key.export({ format: "jwk" });
  const raw = Buffer.from(jwk.x ?? "", "base64url");
  return { kind, pub: encodePublic(kind, raw), seed: encodeSeed(kind, seed), key };
}

export function newIdentity(kind: Kind): Identity {
  return identityFromSeed(kind, randomBytes(32));
}

/** The 32 seed bytes of `id`, hex (for a file that must restore the same identity later). */
export function rawSeedHex(id: Identity): string {
  return Buffer.from(id.key.export({ format: "jwk" }).d ?? "", "base64url").toString("hex");
}

/** A valid account public key nobody holds the seed of (stored accounts never sign anything). */
export function randomAccountKey(): string {
  return encodePublic("account", randomBytes(32));
}

let jtiCounter = 0;
export function newJti(): string {
  jtiCounter++;
  return base32Encode(randomBytes(30)).slice(0, 44) + String(jtiCounter).padStart(8, "0");
}

const HEADER = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })).toString("base64url");

export function signJwt(claims: Record<string, unknown>, signer: Identity): string {
  const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${body}.${sign(null, Buffer.from(body), signer.key).toString("base64url")}`;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface AccountJwtOptions {
  readonly name?: string;
  readonly iat?: number;
  readonly limits?: Record<string, unknown>;
  readonly revocations?: Record<string, number>;
}

export function accountJwt(sub: string, signer: Identity, o: AccountJwtOptions = {}): string {
  return signJwt(
    {
      jti: newJti(),
      iat: o.iat ?? nowSec(),
      iss: signer.pub,
      name: o.name ?? sub.slice(0, 8),
      sub,
      nats: {
        limits: { ...UNLIMITED, ...(o.limits ?? {}) },
        default_permissions: { pub: {}, sub: {} },
        ...(o.revocations ? { revocations: o.revocations } : {}),
        type: "account",
        version: 2,
      },
    },
    signer,
  );
}

export interface OperatorSet {
  readonly operator: Identity;
  readonly signer: Identity;
  readonly operatorJwt: string;
  readonly sys: Identity;
  readonly sysJwt: string;
}

/** Operator with one signing key and a system account, as nsc sets them up. */
export function makeOperator(): OperatorSet {
  const operator = newIdentity("operator");
  const signer = newIdentity("operator");
  const sys = newIdentity("account");
  const operatorJwt = signJwt(
    {
      jti: newJti(),
      iat: nowSec(),
      iss: operator.pub,
      name: "BENCH",
      sub: operator.pub,
      nats: { signing_keys: [signer.pub], system_account: sys.pub, type: "operator", version: 2 },
    },
    operator,
  );
  return { operator, signer, operatorJwt, sys, sysJwt: accountJwt(sys.pub, signer, { name: "SYS" }) };
}

/** The operator set as JSON (raw seeds in hex), for a store kept across runs. */
export function operatorToJson(op: OperatorSet): string {
  return JSON.stringify({
    operator: rawSeedHex(op.operator),
    signer: rawSeedHex(op.signer),
    sys: rawSeedHex(op.sys),
    operatorJwt: op.operatorJwt,
    sysJwt: op.sysJwt,
  });
}

export function operatorFromJson(text: string): OperatorSet {
  const j = JSON.parse(text) as Record<"operator" | "signer" | "sys" | "operatorJwt" | "sysJwt", string>;
  const id = (kind: Kind, hex: string): Identity => identityFromSeed(kind, Buffer.from(hex, "hex"));
  return {
    operator: id("operator", j.operator),
    signer: id("operator", j.signer),
    sys: id("account", j.sys),
    operatorJwt: j.operatorJwt,
    sysJwt: j.sysJwt,
  };
}

/** A creds file for a new user of `account` (which must hold its seed). */
export function userCreds(account: Identity, iat = nowSec()): { creds: string; user: Identity } {
  const user = newIdentity("user");
  const jwt = signJwt(
    {
      jti: newJti(),
      iat,
      iss: account.pub,
      name: "bench-user",
      sub: user.pub,
      nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: "user", version: 2 },
    },
    account,
  );
  const creds =
    `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${user.seed}\n------END USER NKEY SEED------\n`;
  return { creds, user };
}
