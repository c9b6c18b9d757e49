/**
 * NATS JWT decoding with the acceptance rules of Go's nats-io/jwt v2 `Decode` (legacy §3.1):
 * same chunk/base64/header/version/kind checks, Ed25519 verified through node:crypto.
 */
import { AccountServerError, errorText } from "../errors.js";
import type { AccountClaims, DecodedJwt, JwtHeader, OperatorClaims } from "./claims.js";
import { checkShape, GENERIC, GENERIC_LENIENT, HEADER, IDENTIFIER, isPlainObject, jsonKind, KNOWN_KINDS } from "./go-shape.js";
import { numField as num, strField as str } from "./fields.js";
import { publicKeyKind, verifySignature } from "./nkey.js";

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
    throw bad(`${part}: invalid JSON: ${errorText(e)}`);
  }
  if (v === null) return {};
  if (!isPlainObject(v)) throw bad(`${part}: json: cannot unmarshal ${jsonKind(v)} into Go value of type object`);
  return v;
}

/** Header chunks parsed recently: nearly every JWT carries one of a very few, parsed once here. */
const HEADER_CACHE_MAX = 16;
const headerCache = new Map<string, JwtHeader>();

function parseHeader(chunk: string): JwtHeader {
  const hit = headerCache.get(chunk);
  if (hit) return hit;
  const header = readHeader(chunk);
  if (headerCache.size >= HEADER_CACHE_MAX) headerCache.delete(headerCache.keys().next().value!);
  headerCache.set(chunk, header);
  return header;
}

function readHeader(chunk: string): JwtHeader {
  const h = parseObject(decodeChunk(chunk, "header"), "header");
  const err = checkShape(h, HEADER, "Header");
  if (err) throw bad(`header: ${err}`);
  const typ = str(h, "typ");
  const alg = str(h, "alg");
  if (typ.toUpperCase() !== "JWT") throw bad(`not supported type ${JSON.stringify(typ)}`);
  const lower = alg.toLowerCase();
  if (lower !== ALG_V1 && lower !== ALG_V2) throw bad(`unexpected ${JSON.stringify(alg)} algorithm`);
  return Object.freeze({ typ, alg });
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
