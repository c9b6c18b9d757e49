/**
 * Test identities: operators, signing keys, accounts, users and creds files, with full control
 * over every claim (iat, exp, nbf, jti) so ordering and expiry cases can be built exactly.
 */
import { randomBytes } from "node:crypto";
import { fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";

export { createAccount, createOperator, createUser, type KeyPair };

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

/** Sign arbitrary claims as a v2 JWT (header.payload signed) with `signer`. */
export function signJwt(claims: Record<string, unknown>, signer: KeyPair): string {
  const h = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const p = b64url(JSON.stringify(claims));
  const sig = signer.sign(new TextEncoder().encode(`${h}.${p}`));
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
  const sub = typeof account === "string" ? account : account.getPublicKey();
  const claims: Record<string, unknown> = {
    jti: o.jti ?? newJti(),
    iat: o.iat ?? nowSec(),
    iss: signer.getPublicKey(),
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
      iss: signer.getPublicKey(),
      name: "user",
      sub: user.getPublicKey(),
      nats: {
        pub: {},
        sub: {},
        subs: -1,
        data: -1,
        payload: -1,
        ...(o.signer ? { issuer_account: account.getPublicKey() } : {}),
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
  const op = operator.getPublicKey();
  const operatorJwt = signJwt(
    {
      jti: newJti(),
      iat: nowSec(),
      iss: op,
      name: "OP",
      sub: op,
      nats: {
        signing_keys: [signer.getPublicKey(), ...(o.extraSigningKeys ?? [])],
        system_account: sys.getPublicKey(),
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
