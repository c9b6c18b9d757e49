/**
 * NATS JWT decoding with the acceptance rules of Go's nats-io/jwt v2 `Decode` (legacy §3.1):
 * same chunk/base64/header/version/kind checks, Ed25519 verified through node:crypto.
 */
import { AccountServerError } from "../errors.js";
import { publicKeyKind, verifySignature } from "./nkey.js";
import type { KeyKind } from "./nkey.js";

export interface JwtHeader {
  typ: string;
  alg: string;
}

export interface DecodedJwt<C = Record<string, unknown>> {
  /** Exactly as given (a trailing newline Go tolerates is kept). */
  readonly token: string;
  readonly header: JwtHeader;
  /** The parsed payload JSON, untouched (v1 tokens are not migrated here). */
  readonly claims: C;
  /** 1 when the top-level `type` is set, else `nats.version` (0 when absent). */
  readonly version: number;
  /** Claim type; unknown or missing types are reported as "generic". */
  readonly kind: string;
  readonly iss: string;
  readonly sub: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly nbf: number;
}

// ---------------------------------------------------------------------------
// Claim shapes: only the fields this server reads; everything is optional because the
// payload is passed through as parsed.

export type ExportType = "stream" | "service";

export interface ClaimsData {
  aud?: string;
  exp?: number;
  jti?: string;
  iat?: number;
  iss?: string;
  name?: string;
  nbf?: number;
  sub?: string;
}

export interface ImportClaim {
  name?: string;
  subject?: string;
  account?: string;
  token?: string;
  /** Deprecated by Go in favour of `local_subject`. */
  to?: string;
  local_subject?: string;
  type?: ExportType;
  share?: boolean;
  allow_trace?: boolean;
}

export interface ServiceLatency {
  /** 1..100, or "headers" (= 0). */
  sampling?: number | string;
  results?: string;
}

export interface ExportClaim {
  name?: string;
  subject?: string;
  type?: ExportType;
  token_req?: boolean;
  revocations?: Record<string, number> | null;
  response_type?: string;
  /** Nanoseconds. */
  response_threshold?: number;
  service_latency?: ServiceLatency | null;
  account_token_position?: number;
  advertise?: boolean;
  allow_trace?: boolean;
  description?: string;
  info_url?: string;
}

export interface JetStreamLimits {
  mem_storage?: number;
  disk_storage?: number;
  streams?: number;
  consumer?: number;
  max_ack_pending?: number;
  mem_max_stream_bytes?: number;
  disk_max_stream_bytes?: number;
  max_bytes_required?: boolean;
}

/** `-1` = unlimited; a missing field means 0 (Go zero value). */
export interface OperatorLimits extends JetStreamLimits {
  subs?: number;
  data?: number;
  payload?: number;
  imports?: number;
  exports?: number;
  wildcards?: boolean;
  disallow_bearer?: boolean;
  conn?: number;
  leaf?: number;
  tiered_limits?: Record<string, JetStreamLimits | null> | null;
}

export interface Permission {
  allow?: string[] | null;
  deny?: string[] | null;
}

export interface Permissions {
  pub?: Permission | null;
  sub?: Permission | null;
  resp?: { max?: number; ttl?: number } | null;
}

export interface UserScope {
  kind: "user_scope";
  key: string;
  role?: string;
  template?: Record<string, unknown> | null;
  description?: string;
}

export type SigningKeyClaim = string | UserScope;

export interface WeightedMapping {
  subject?: string;
  /** 1..100; 0 or absent means 100. */
  weight?: number;
  cluster?: string;
}

export interface ExternalAuthorization {
  auth_users?: string[] | null;
  allowed_accounts?: string[] | null;
  xkey?: string;
}

export interface AccountNats {
  imports?: (ImportClaim | null)[] | null;
  exports?: (ExportClaim | null)[] | null;
  limits?: OperatorLimits | null;
  signing_keys?: (SigningKeyClaim | null)[] | null;
  revocations?: Record<string, number> | null;
  default_permissions?: Permissions | null;
  mappings?: Record<string, (WeightedMapping | null)[] | null> | null;
  authorization?: ExternalAuthorization | null;
  trace?: { dest?: string; sampling?: number } | null;
  cluster_traffic?: string;
  description?: string;
  info_url?: string;
  tags?: string[] | null;
  type?: string;
  version?: number;
}

export interface AccountClaims extends ClaimsData {
  nats?: AccountNats | null;
  /** v1 tokens only: the claim type lives at the top level. */
  type?: string;
  tags?: string[] | null;
}

export interface OperatorNats {
  signing_keys?: string[] | null;
  account_server_url?: string;
  operator_service_urls?: string[] | null;
  system_account?: string;
  assert_server_version?: string;
  strict_signing_key_usage?: boolean;
  tags?: string[] | null;
  type?: string;
  version?: number;
}

export interface OperatorClaims extends ClaimsData {
  nats?: OperatorNats | null;
  type?: string;
  tags?: string[] | null;
}

export interface ActivationClaims extends ClaimsData {
  nats?: {
    subject?: string;
    /** v2: import type. */
    kind?: ExportType;
    /** v2: claim type ("activation"); v1: the import type. */
    type?: string;
    issuer_account?: string;
    version?: number;
  } | null;
  type?: string;
  /** v1 tokens keep it at the top level. */
  issuer_account?: string;
}

// ---------------------------------------------------------------------------
// Go's json.Unmarshal refuses a value of the wrong JSON type for a typed field, which
// makes the whole Decode fail. These shapes reproduce that for the structs Go decodes into.
// Unknown fields are ignored, null is accepted (Go leaves the zero value).

type Shape =
  | "string"
  | "int"
  | "uint"
  | "uint8"
  | "bool"
  | "any"
  | { readonly arr: Shape }
  | { readonly obj: { readonly [field: string]: Shape } }
  | { readonly map: Shape }
  | { readonly custom: (v: unknown, path: string) => string | undefined };

const INT64_LIMIT = 2 ** 63;

function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v;
}

function mismatch(v: unknown, path: string, goType: string): string {
  const what = typeof v === "number" ? `number ${v}` : jsonKind(v);
  return `json: cannot unmarshal ${what} into Go struct field ${path} of type ${goType}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkShape(v: unknown, shape: Shape, path: string): string | undefined {
  if (typeof shape === "object" && "custom" in shape) return shape.custom(v, path);
  if (v === null) return undefined;
  switch (shape) {
    case "any":
      return undefined;
    case "string":
      return typeof v === "string" ? undefined : mismatch(v, path, "string");
    case "bool":
      return typeof v === "boolean" ? undefined : mismatch(v, path, "bool");
    case "int":
      return typeof v === "number" && Number.isInteger(v) && Math.abs(v) < INT64_LIMIT
        ? undefined
        : mismatch(v, path, "int64");
    case "uint":
      return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 * INT64_LIMIT
        ? undefined
        : mismatch(v, path, "uint");
    case "uint8":
      return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255
        ? undefined
        : mismatch(v, path, "uint8");
  }
  if ("arr" in shape) {
    if (!Array.isArray(v)) return mismatch(v, path, "array");
    for (let i = 0; i < v.length; i++) {
      const e = checkShape(v[i], shape.arr, `${path}[${i}]`);
      if (e) return e;
    }
    return undefined;
  }
  if (!isPlainObject(v)) return mismatch(v, path, "object");
  if ("obj" in shape) {
    for (const field in shape.obj) {
      if (!Object.hasOwn(v, field)) continue;
      const e = checkShape(v[field], shape.obj[field] as Shape, path ? `${path}.${field}` : field);
      if (e) return e;
    }
    return undefined;
  }
  for (const key in v) {
    const e = checkShape(v[key], shape.map, `${path}[${JSON.stringify(key)}]`);
    if (e) return e;
  }
  return undefined;
}

const S = "string";
const I = "int";
const B = "bool";
const strings: Shape = { arr: S };
const obj = (fields: { readonly [field: string]: Shape }): Shape => ({ obj: fields });

/** Go's ExportType only unmarshals from "stream" or "service" (null included: it errors). */
const EXPORT_TYPE: Shape = {
  custom(v, path) {
    if (v === undefined) return undefined;
    if (v !== null && typeof v !== "string") return mismatch(v, path, "string");
    if (v === "stream" || v === "service") return undefined;
    return `unknown export type ${JSON.stringify(v ?? "")}`;
  },
};

/** Go's SamplingRate: "headers" (any case) or an integer. */
const SAMPLING: Shape = {
  custom(v, path) {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") {
      return v.toLowerCase() === "headers" ? undefined : mismatch(v, path, "int");
    }
    return typeof v === "number" && Number.isInteger(v) ? undefined : mismatch(v, path, "int");
  },
};

/** Go's CIDRList: an array of strings or one comma-separated string. */
const CIDR_LIST: Shape = {
  custom(v, path) {
    if (v === undefined || v === null || typeof v === "string") return undefined;
    return checkShape(v, strings, path);
  },
};

const CLAIMS_DATA = { aud: S, exp: I, jti: S, iat: I, iss: S, name: S, nbf: I, sub: S } as const;
const GENERIC_FIELDS = { tags: strings, type: S, version: I } as const;
/** Fields v1 tokens carry at the top level. */
const V1_TOP = { tags: strings, type: S, issuer_account: S } as const;

const INFO = { description: S, info_url: S } as const;
const TIME_RANGE = obj({ start: S, end: S });
const PERMISSION = obj({ allow: strings, deny: strings });
const PERMISSIONS = { pub: PERMISSION, sub: PERMISSION, resp: obj({ max: I, ttl: I }) } as const;
const NATS_LIMITS = { subs: I, data: I, payload: I } as const;
const ACCOUNT_LIMITS = {
  imports: I,
  exports: I,
  wildcards: B,
  disallow_bearer: B,
  conn: I,
  leaf: I,
} as const;
const JS_LIMITS = {
  mem_storage: I,
  disk_storage: I,
  streams: I,
  consumer: I,
  max_ack_pending: I,
  mem_max_stream_bytes: I,
  disk_max_stream_bytes: I,
  max_bytes_required: B,
} as const;
const USER_LIMITS = { src: CIDR_LIST, times: { arr: TIME_RANGE }, times_location: S } as const;
const USER_PERMISSION_LIMITS = {
  ...PERMISSIONS,
  ...USER_LIMITS,
  ...NATS_LIMITS,
  bearer_token: B,
  proxy_required: B,
  allowed_connection_types: strings,
} as const;

const USER_SCOPE = obj({
  key: S,
  role: S,
  template: obj(USER_PERMISSION_LIMITS),
  description: S,
});

/** Go's SigningKeys: strings, or objects whose `kind` is "user_scope"; other values are skipped. */
const SIGNING_KEYS: Shape = {
  custom(v, path) {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) return mismatch(v, path, "[]interface {}");
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      if (!isPlainObject(e)) continue;
      if (e["kind"] !== "user_scope") return `unknown signing key scope at ${path}[${i}]`;
      const err = checkShape(e, USER_SCOPE, `${path}[${i}]`);
      if (err) return err;
    }
    return undefined;
  },
};

const IMPORT = obj({
  name: S,
  subject: S,
  account: S,
  token: S,
  to: S,
  local_subject: S,
  type: EXPORT_TYPE,
  share: B,
  allow_trace: B,
});

const EXPORT = obj({
  name: S,
  subject: S,
  type: EXPORT_TYPE,
  token_req: B,
  revocations: { map: I },
  response_type: S,
  response_threshold: I,
  service_latency: obj({ sampling: SAMPLING, results: S }),
  account_token_position: "uint",
  advertise: B,
  allow_trace: B,
  ...INFO,
});

const ACCOUNT_V2 = obj({
  ...CLAIMS_DATA,
  nats: obj({
    imports: { arr: IMPORT },
    exports: { arr: EXPORT },
    limits: obj({
      ...NATS_LIMITS,
      ...ACCOUNT_LIMITS,
      ...JS_LIMITS,
      tiered_limits: { map: obj(JS_LIMITS) },
    }),
    signing_keys: SIGNING_KEYS,
    revocations: { map: I },
    default_permissions: obj(PERMISSIONS),
    mappings: { map: { arr: obj({ subject: S, weight: "uint8", cluster: S }) } },
    authorization: obj({ auth_users: strings, allowed_accounts: strings, xkey: S }),
    trace: obj({ dest: S, sampling: I }),
    cluster_traffic: S,
    ...INFO,
    ...GENERIC_FIELDS,
  }),
});

const ACCOUNT_V1 = obj({
  ...CLAIMS_DATA,
  ...V1_TOP,
  nats: obj({
    imports: { arr: IMPORT },
    exports: { arr: EXPORT },
    limits: obj({ ...NATS_LIMITS, ...ACCOUNT_LIMITS }),
    signing_keys: strings,
    revocations: { map: I },
  }),
});

const OPERATOR_V2 = obj({
  ...CLAIMS_DATA,
  nats: obj({
    signing_keys: strings,
    account_server_url: S,
    operator_service_urls: strings,
    system_account: S,
    assert_server_version: S,
    strict_signing_key_usage: B,
    ...GENERIC_FIELDS,
  }),
});

const OPERATOR_V1 = obj({
  ...CLAIMS_DATA,
  ...V1_TOP,
  nats: obj({ signing_keys: strings, account_server_url: S, operator_service_urls: strings, system_account: S }),
});

const ACTIVATION_V2 = obj({
  ...CLAIMS_DATA,
  nats: obj({ subject: S, kind: EXPORT_TYPE, issuer_account: S, ...GENERIC_FIELDS }),
});

const ACTIVATION_V1 = obj({
  ...CLAIMS_DATA,
  ...V1_TOP,
  nats: obj({ subject: S, type: EXPORT_TYPE, max: I, payload: I, src: S, times: { arr: TIME_RANGE } }),
});

const USER_V2 = obj({
  ...CLAIMS_DATA,
  nats: obj({ ...USER_PERMISSION_LIMITS, issuer_account: S, ...GENERIC_FIELDS }),
});

const USER_V1 = obj({
  ...CLAIMS_DATA,
  ...V1_TOP,
  nats: obj({ ...PERMISSIONS, ...USER_LIMITS, ...NATS_LIMITS, bearer_token: B, max: I }),
});

const AUTHORIZATION = obj({ ...CLAIMS_DATA, nats: obj(GENERIC_FIELDS) });
const GENERIC = obj({ ...CLAIMS_DATA, nats: { map: "any" } });
const IDENTIFIER = obj({ type: S, nats: obj(GENERIC_FIELDS) });
/** DecodeGeneric's target: generic claims plus GenericFields flattened at the top level. */
const GENERIC_LENIENT = obj({ ...CLAIMS_DATA, ...GENERIC_FIELDS, nats: { map: "any" } });

/** Kinds Go knows, with the shape per claim version and the key kinds allowed to issue. */
interface KnownKind {
  readonly shapes: Readonly<Record<number, Shape>> | undefined;
  readonly anyVersionShape?: Shape;
  readonly issuers: readonly KeyKind[];
}

const KNOWN_KINDS: ReadonlyMap<string, KnownKind> = new Map<string, KnownKind>([
  ["operator", { shapes: { 1: OPERATOR_V1, 2: OPERATOR_V2 }, issuers: ["operator"] }],
  ["account", { shapes: { 1: ACCOUNT_V1, 2: ACCOUNT_V2 }, issuers: ["account", "operator"] }],
  ["user", { shapes: { 1: USER_V1, 2: USER_V2 }, issuers: ["account"] }],
  ["activation", { shapes: { 1: ACTIVATION_V1, 2: ACTIVATION_V2 }, issuers: ["account", "operator"] }],
  ["authorization_request", { shapes: undefined, anyVersionShape: AUTHORIZATION, issuers: ["server"] }],
  ["authorization_response", { shapes: undefined, anyVersionShape: AUTHORIZATION, issuers: ["account"] }],
]);

// ---------------------------------------------------------------------------

/** Go's jwt.MaxTokenSize (v2.8.1+): longer tokens are refused before any parsing. */
const MAX_TOKEN_SIZE = 1024 * 1024;
const LIB_VERSION = 2;
const ALG_V1 = "ed25519";
const ALG_V2 = "ed25519-nkey";

const B64URL = /^[A-Za-z0-9_-]*$/;
const CRLF = /[\r\n]/g;

function bad(reason: string): AccountServerError {
  return new AccountServerError("BAD_JWT", { reason });
}

function isB64UrlOrCrLf(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x5f ||
    c === 0x0a ||
    c === 0x0d
  );
}

/**
 * Go's base64.RawURLEncoding: no padding, CR/LF silently skipped anywhere, any other
 * foreign byte fatal. Buffer.from would skip junk silently, hence the explicit check.
 */
function decodeChunk(chunk: string, part: string): Buffer {
  let s = chunk;
  if (!B64URL.test(s)) {
    for (let i = 0; i < s.length; i++) {
      if (!isB64UrlOrCrLf(s.charCodeAt(i))) throw bad(`${part}: illegal base64 data at input byte ${i}`);
    }
    s = s.replace(CRLF, "");
  }
  if (s.length % 4 === 1) throw bad(`${part}: illegal base64 data at input byte ${s.length - 1}`);
  return Buffer.from(s, "base64url");
}

/** Parses a chunk as a JSON object; `null` counts as empty (Go leaves the zero value). */
function parseObject(buf: Buffer, part: string): Record<string, unknown> {
  let v: unknown;
  try {
    // UTF-8, with invalid sequences replaced by U+FFFD as Go's decoder does.
    v = JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw bad(`${part}: invalid JSON: ${(e as Error).message}`);
  }
  if (v === null) return {};
  if (!isPlainObject(v)) throw bad(`${part}: json: cannot unmarshal ${jsonKind(v)} into Go value of type object`);
  return v;
}

function str(o: Record<string, unknown> | undefined, k: string): string {
  const v = o?.[k];
  return typeof v === "string" ? v : "";
}

function num(o: Record<string, unknown> | undefined, k: string): number {
  const v = o?.[k];
  return typeof v === "number" ? v : 0;
}

function parseHeader(chunk: string): JwtHeader {
  const h = parseObject(decodeChunk(chunk, "header"), "header");
  const err = checkShape(h, obj({ typ: S, alg: S }), "Header");
  if (err) throw bad(`header: ${err}`);
  const typ = str(h, "typ");
  const alg = str(h, "alg");
  if (typ.toUpperCase() !== "JWT") throw bad(`not supported type ${JSON.stringify(typ)}`);
  const lower = alg.toLowerCase();
  if (lower !== ALG_V1 && lower !== ALG_V2) throw bad(`unexpected ${JSON.stringify(alg)} algorithm`);
  return { typ, alg };
}

function splitToken(token: string): [string, string, string] {
  if (typeof token !== "string") throw bad("expected 3 chunks");
  const chunks = token.split(".");
  if (chunks.length !== 3) throw bad(`expected 3 chunks, got ${chunks.length}`);
  return chunks as [string, string, string];
}

function makeDecoded<C>(
  token: string,
  header: JwtHeader,
  claims: Record<string, unknown>,
  version: number,
  kind: string,
): DecodedJwt<C> {
  return {
    token,
    header,
    claims: claims as C,
    version,
    kind,
    iss: str(claims, "iss"),
    sub: str(claims, "sub"),
    jti: str(claims, "jti"),
    iat: num(claims, "iat"),
    exp: num(claims, "exp"),
    nbf: num(claims, "nbf"),
  };
}

/**
 * Decodes and verifies a JWT of any kind like Go's `jwt.Decode`: signature input chosen by
 * the claim version, issuer key kind checked for known kinds. Unknown kinds ("generic") are
 * verified like Go's `DecodeGeneric` (by header alg), because Go's `Decode` would check them
 * as v1 and so reject every v2 generic token, e.g. the DELETE requests nsc sends.
 * Throws AccountServerError("BAD_JWT") with the Go error text as `reason`.
 */
export function decodeJwt(token: string): DecodedJwt {
  if (typeof token === "string" && token.length > MAX_TOKEN_SIZE) {
    throw bad(`token size ${token.length} exceeds maximum of ${MAX_TOKEN_SIZE} bytes: token too large`);
  }
  const [c0, c1, c2] = splitToken(token);
  const header = parseHeader(c0);
  const claims = parseObject(decodeChunk(c1, "payload"), "payload");

  const idErr = checkShape(claims, IDENTIFIER, "identifier");
  if (idErr) throw bad(idErr);
  const topType = str(claims, "type");
  const nats = isPlainObject(claims["nats"]) ? claims["nats"] : undefined;
  const kindRaw = topType !== "" ? topType : str(nats, "type");
  const version = topType !== "" ? 1 : num(nats, "version");
  if (version > LIB_VERSION) throw bad("JWT was generated by a newer version");

  const known = KNOWN_KINDS.get(kindRaw);
  let kind = kindRaw;
  if (known) {
    const shape = known.shapes ? known.shapes[version] : known.anyVersionShape;
    if (!shape) throw bad(`library supports version ${LIB_VERSION} or less - received ${version}`);
    const err = checkShape(claims, shape, "");
    if (err) throw bad(err);
  } else if (kindRaw === "cluster") {
    throw bad("ClusterClaims are not supported");
  } else if (kindRaw === "server") {
    throw bad("ServerClaims are not supported");
  } else {
    const err = checkShape(claims, GENERIC, "");
    if (err) throw bad(err);
    kind = "generic";
  }

  const sig = decodeChunk(c2, "signature");
  const v1Input = known ? version <= 1 : header.alg === ALG_V1;
  const input = v1Input ? c1 : token.slice(0, c0.length + c1.length + 1);
  if (!verifySignature(str(claims, "iss"), Buffer.from(input, "latin1"), sig)) {
    throw bad(`claim failed ${v1Input ? "V1" : "V2"} signature verification`);
  }

  if (known) {
    const issuerKind = publicKeyKind(str(claims, "iss"));
    if (issuerKind === undefined || !known.issuers.includes(issuerKind)) {
      throw bad(`unable to validate expected prefixes - [${known.issuers.join(" ")}]`);
    }
  }
  return makeDecoded(token, header, claims, version, kind);
}

/** An account JWT (v1 or v2) issued by an account or operator key; Go's DecodeAccountClaims. */
export function decodeAccountJwt(token: string): DecodedJwt<AccountClaims> {
  const d = decodeJwt(token);
  if (d.kind !== "account") throw bad("not account claim");
  return d as DecodedJwt<AccountClaims>;
}

/** An operator JWT issued by an operator key; Go's DecodeOperatorClaims. */
export function decodeOperatorJwt(token: string): DecodedJwt<OperatorClaims> {
  const d = decodeJwt(token);
  if (d.kind !== "operator") throw bad("not operator claim");
  return d as DecodedJwt<OperatorClaims>;
}

/** An activation JWT issued by an account or operator key; Go's DecodeActivationClaims. */
export function decodeActivationJwt(token: string): DecodedJwt {
  const d = decodeJwt(token);
  if (d.kind !== "activation") throw bad("not activation claim");
  return d;
}

/**
 * Go's `DecodeGeneric`, the decoder nats-server's DirJWTStore uses for its expiry index and
 * save-if-newer: header and signature (input chosen by the header alg, compared exactly),
 * but no version, kind or issuer-kind checks. `kind` is the claim's type or "generic".
 */
export function decodeGenericJwt(token: string): DecodedJwt {
  const [c0, c1, c2] = splitToken(token);
  const header = parseHeader(c0);
  const claims = parseObject(decodeChunk(c1, "payload"), "payload");
  const err = checkShape(claims, GENERIC_LENIENT, "");
  if (err) throw bad(err);
  const sig = decodeChunk(c2, "signature");
  const v1Input = header.alg === ALG_V1;
  const input = v1Input ? c1 : token.slice(0, c0.length + c1.length + 1);
  if (!verifySignature(str(claims, "iss"), Buffer.from(input, "latin1"), sig)) {
    throw bad(`claim failed ${v1Input ? "V1" : "V2"} signature verification`);
  }
  const topType = str(claims, "type");
  const nats = isPlainObject(claims["nats"]) ? claims["nats"] : undefined;
  const kind = (topType || str(nats, "type")) || "generic";
  const version = topType !== "" ? 1 : Number.isInteger(nats?.["version"]) ? num(nats, "version") : 0;
  return makeDecoded(token, header, claims, version, kind);
}

/**
 * The ordering/caching fields of a token's payload without verifying anything; undefined
 * instead of an exception when the token is not even shaped like a JWT.
 */
export function peekClaims(
  token: string,
): { iat: number; exp: number; jti: string; sub: string; iss: string } | undefined {
  if (typeof token !== "string") return undefined;
  const a = token.indexOf(".");
  const b = a < 0 ? -1 : token.indexOf(".", a + 1);
  if (b < 0 || token.indexOf(".", b + 1) >= 0) return undefined;
  let chunk = token.slice(a + 1, b);
  if (!B64URL.test(chunk)) {
    chunk = chunk.replace(CRLF, "");
    if (!B64URL.test(chunk)) return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(chunk, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isPlainObject(v)) return undefined;
  return { iat: num(v, "iat"), exp: num(v, "exp"), jti: str(v, "jti"), sub: str(v, "sub"), iss: str(v, "iss") };
}

const ARMOURED_JWT = /^[\w\-.=]+$/;

/** A BEGIN line: somewhere in it a run of 3+ dashes, then anything, then 3+ dashes at its end. */
function isBeginLine(line: string): boolean {
  return line.endsWith("---") && line.indexOf("---") <= line.length - 6;
}

/**
 * nsc's armour: a dashed BEGIN line, the JWT alone on a line, a dashed END line; the same matches
 * as Go's regex, found line by line (a backtracking regex took minutes on one long dashed line).
 */
function armouredJwt(text: string): string | undefined {
  const lines = text.split("\n");
  for (let i = 0; i + 2 < lines.length; i++) {
    if (!isBeginLine(lines[i]!.replace(/\r$/, ""))) continue;
    const jwt = lines[i + 1]!.replace(/\r$/, "");
    if (!ARMOURED_JWT.test(jwt)) continue;
    // The END line may be the last one, without a newline; then it must end in dashes exactly.
    const end = i + 3 < lines.length ? lines[i + 2]!.replace(/\r$/, "") : lines[i + 2]!;
    if (end.startsWith("---") && end.endsWith("---") && end.length >= 6) return jwt;
  }
  return undefined;
}

/**
 * The bare JWT from a file's text: the first armoured block of a decorated file (as nsc
 * writes operator JWTs), otherwise the text minus surrounding whitespace.
 * Meant for files only: POST bodies are stored verbatim.
 */
export function extractJwt(text: string): string {
  return armouredJwt(text) ?? text.trim();
}
