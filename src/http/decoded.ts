/**
 * The human-readable `decode=true` view of a stored JWT: header, claims (sorted, dates annotated,
 * embedded activation tokens expanded) and signature. Never throws, whatever the stored bytes are.
 */
import { errorText, isAccountServerError } from "../errors.js";
import { decodeActivationJwt } from "../jwt/index.js";

const INDENT = "    ";
/** Between header, claims and signature, as the Go server separated them. */
const PART_SEPARATOR = "\n\r\n";
/** Claims whose numeric value is a unix time in seconds. */
const TIME_KEYS: ReadonlySet<string> = new Set(["iat", "exp", "nbf"]);
/** Deeper structures are cut off: the view is for people, and recursion must stay bounded. */
const MAX_DEPTH = 48;
const B64URL_OR_CRLF = /^[A-Za-z0-9_\-\r\n]*$/;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface RenderOptions {
  /** Annotate iat/exp/nbf with their date. */
  readonly times: boolean;
  /** Expand string `token` fields as activation JWTs. */
  readonly tokens: boolean;
}

/** `<bad what - reason>`: the marker that stands in for whatever could not be shown. */
function bad(what: string, reason: string): string {
  return `<bad ${what} - ${reason}>`;
}

function errorReason(err: unknown): string {
  if (isAccountServerError(err)) return err.reason ?? err.phrase;
  return err instanceof Error ? err.message : String(err);
}

/** `YYYY-MM-DD` in UTC, or undefined when the number is not a plausible unix time. */
export function utcDate(seconds: number): string | undefined {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) return undefined;
  const d = new Date(seconds * 1000);
  const y = d.getUTCFullYear();
  if (Number.isNaN(y) || y > 9999) return undefined;
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${String(y).padStart(4, "0")}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** Go's RawURLEncoding rules: no padding, CR/LF skipped, anything else foreign is an error. */
function decodeBase64Url(chunk: string): Buffer | string {
  if (!B64URL_OR_CRLF.test(chunk)) {
    for (let i = 0; i < chunk.length; i++) {
      if (!B64URL_OR_CRLF.test(chunk[i]!)) return `illegal base64 data at input byte ${i}`;
    }
  }
  const s = chunk.replace(/[\r\n]/g, "");
  if (s.length % 4 === 1) return `illegal base64 data at input byte ${s.length - 1}`;
  return Buffer.from(s, "base64url");
}

/** A chunk as a JSON object, or the reason it is not one. */
function parseChunk(chunk: string): { value: { [key: string]: Json } } | { error: string } {
  if (chunk.replace(/[\r\n]/g, "") === "") return { error: "empty" };
  const bytes = decodeBase64Url(chunk);
  if (typeof bytes === "string") return { error: bytes };
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    // The parser quotes the offending text, which may be binary: keep the marker printable.
    return { error: `invalid JSON: ${errorText(err).replace(/[^\x20-\x7e]/g, "?")}` };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return { error: `not a JSON object but ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}` };
  }
  return { value: v as { [key: string]: Json } };
}

function quote(s: string): string {
  // JSON.stringify leaves <, > and & alone, so subjects such as `a.>` stay readable.
  return JSON.stringify(s);
}

function renderValue(v: Json, indent: string, depth: number, opts: RenderOptions, keys?: readonly string[]): string {
  if (v === null || typeof v === "boolean" || typeof v === "number") return String(v);
  if (typeof v === "string") return quote(v);
  if (depth >= MAX_DEPTH) return "<nested too deeply to display>";
  const inner = indent + INDENT;
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    const items = v.map((e) => inner + renderValue(e, inner, depth + 1, opts));
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  const names = keys ?? Object.keys(v).sort();
  if (names.length === 0) return "{}";
  const lines = names.map((k) => `${inner}${quote(k)}: ${renderMember(k, v[k] as Json, inner, depth + 1, opts)}`);
  return `{\n${lines.join(",\n")}\n${indent}}`;
}

function renderMember(key: string, v: Json, indent: string, depth: number, opts: RenderOptions): string {
  if (opts.times && TIME_KEYS.has(key) && typeof v === "number") {
    const date = utcDate(v);
    return date === undefined ? String(v) : `${v} (${date})`;
  }
  if (opts.tokens && key === "token" && typeof v === "string" && v !== "") return renderToken(v, indent, depth);
  return renderValue(v, indent, depth, opts);
}

/** An activation token embedded in an import: its claims, or a marker plus what could be read. */
function renderToken(token: string, indent: string, depth: number): string {
  const opts: RenderOptions = { times: true, tokens: false };
  try {
    const d = decodeActivationJwt(token);
    return renderValue(d.claims as { [key: string]: Json }, indent, depth, opts);
  } catch (err) {
    const marker = bad("token", errorReason(err));
    const parts = token.split(".");
    const payload = parts.length === 3 ? parseChunk(parts[1]!) : undefined;
    if (payload && "value" in payload) return `${marker} ${renderValue(payload.value, indent, depth, opts)}`;
    return marker;
  }
}

function renderHeader(chunk: string): string {
  const parsed = parseChunk(chunk);
  if ("error" in parsed) return bad("header", parsed.error);
  // typ and alg first, as JWT headers are usually read; anything else after them.
  const first = ["typ", "alg"].filter((k) => Object.hasOwn(parsed.value, k));
  const rest = Object.keys(parsed.value)
    .filter((k) => k !== "typ" && k !== "alg")
    .sort();
  return renderValue(parsed.value, "", 0, { times: false, tokens: false }, [...first, ...rest]);
}

function renderClaims(chunk: string): string {
  const parsed = parseChunk(chunk);
  if ("error" in parsed) return bad("claims", parsed.error);
  return renderValue(parsed.value, "", 0, { times: true, tokens: true });
}

function renderSignature(chunk: string): string {
  const sig = chunk.replace(/[\r\n]/g, "");
  if (sig === "") return bad("signature", "missing");
  const bytes = decodeBase64Url(sig);
  if (typeof bytes === "string") return `${sig}\n${bad("signature", bytes)}`;
  return sig;
}

/**
 * The decoded view of `token`: header JSON, claims JSON and the signature, separated like the
 * Go server's view. Malformed parts are replaced by a `<bad ... - reason>` marker; the
 * signature is shown, not verified.
 */
export function decodedView(token: string): string {
  try {
    const parts = token.split(".");
    const out = [
      renderHeader(parts[0] ?? ""),
      parts.length >= 2 ? renderClaims(parts[1]!) : bad("claims", "missing, the JWT has no second part"),
      parts.length >= 3 ? renderSignature(parts[2]!) : bad("signature", "missing, the JWT has no third part"),
    ];
    if (parts.length > 3) out.push(bad("JWT", `${parts.length - 3} extra part(s) after the signature`));
    return out.join(PART_SEPARATOR);
  } catch (err) {
    // A last resort (e.g. a stack overflow on absurd input): a marker, never a 500.
    return bad("JWT", `cannot be displayed: ${errorReason(err)}`);
  }
}
