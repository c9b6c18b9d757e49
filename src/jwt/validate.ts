/**
 * Account and activation claim validation as Go's nats-io/jwt v2 `Validate` does it (legacy
 * §3.2): same checks, same issue texts, same blocking / time-check / warning split.
 */
import { createHash } from "node:crypto";
import { AccountServerError } from "../errors.js";
import { decodeActivationJwt } from "./decode.js";
import { asArr, asObj, boolField as b, numField as n, strField as s, strList, type Obj } from "./fields.js";
import { ACCOUNT_LIMIT_COUNTS, JETSTREAM_LIMIT_COUNTS, type AccountClaims, type DecodedJwt } from "./claims.js";
import { base32Encode, isPublicKey } from "./nkey.js";
import { goQuote as q, hasWildcards, subjectContains, subjectIssues } from "./subject.js";
import { InnerIndex, OuterIndex } from "./subject-index.js";

export interface ValidationIssue {
  readonly description: string;
  /** Refuses the JWT on its own. */
  readonly blocking: boolean;
  /** Expired / not yet valid: refused by callers that include time checks (POST does). */
  readonly timeCheck: boolean;
}

export interface AccountValidationOptions {
  /**
   * Also report expired / not-yet-valid activation tokens embedded in imports, as time-check
   * issues. Go deliberately stopped doing this in Dec 2020 ("expiration of a token should
   * not invalidate the entire account"), so the default is false. `"warn"` lists them as
   * warnings instead: shown when something else refuses the JWT, never refusing it alone.
   */
  readonly checkActivationTimes?: boolean | "warn";
}


/**
 * At most this many issues are listed. Go lists every one, but pairwise checks can produce
 * hundreds of thousands from one JWT; the rest are summed up in one last issue.
 */
export const MAX_LISTED_ISSUES = 100;

/** The issues found so far, listing at most MAX_LISTED_ISSUES of them. */
class Issues {
  private readonly items: ValidationIssue[] = [];
  private omitted = 0;
  private omittedBlocking = false;
  private omittedTimeCheck = false;
  /** A pairwise check stopped early because nothing more would be listed. */
  cut = false;

  get full(): boolean {
    return this.items.length >= MAX_LISTED_ISSUES;
  }

  /** How many more issues can still be listed. */
  get room(): number {
    return MAX_LISTED_ISSUES - this.items.length;
  }

  push(issue: ValidationIssue): void {
    if (!this.full) {
      this.items.push(issue);
      return;
    }
    this.omitted++;
    this.omittedBlocking ||= issue.blocking;
    this.omittedTimeCheck ||= issue.timeCheck;
  }

  list(): ValidationIssue[] {
    if (this.omitted === 0) return this.items;
    const more = this.cut ? `at least ${this.omitted}` : `${this.omitted}`;
    return [
      ...this.items,
      {
        description: `${more} more issues not listed (only the first ${MAX_LISTED_ISSUES} are)`,
        blocking: this.omittedBlocking,
        timeCheck: this.omittedTimeCheck,
      },
    ];
  }
}

const NO_LIMIT = -1;
/** Go's jwt.MaxInfoLength, in bytes. */
const MAX_INFO_LENGTH = 8 * 1024;

function error(out: Issues, description: string): void {
  out.push({ description, blocking: true, timeCheck: false });
}
function timeCheck(out: Issues, description: string): void {
  out.push({ description, blocking: false, timeCheck: true });
}
function warning(out: Issues, description: string): void {
  out.push({ description, blocking: false, timeCheck: false });
}

// Readers that give Go's zero value for anything absent or of another type.

/** Go ExportType.String(): anything but the two known values prints as "unknown". */
function exportTypeName(t: string): string {
  return t === "stream" || t === "service" ? t : "unknown";
}

function addSubjectIssues(out: Issues, subject: string): void {
  for (const d of subjectIssues(subject)) error(out, d);
}

function claimTimes(out: Issues, exp: number, nbf: number, now: number): void {
  if (exp > 0 && now > exp) timeCheck(out, "claim is expired");
  if (nbf > 0 && nbf > now) timeCheck(out, "claim is not yet valid");
}

// --- renaming subjects (`local_subject`) ---------------------------------------------------

const GO_INT = /^[+-]?[0-9]+$/;

/** strconv.Atoi: optional sign, decimal digits, 64-bit range. */
function goAtoi(text: string): number | undefined {
  if (!GO_INT.test(text)) return undefined;
  const v = Number(text);
  return Math.abs(v) < 2 ** 63 ? v : undefined;
}

function countTokenWildcards(subject: string): number {
  if (subject === "*") return 1;
  let count = 0;
  for (const t of subject.split(".")) if (t === "*") count++;
  return count;
}

/** `$N` references replaced by `*`, which is how Go compares local subjects. */
function renamingToSubject(local: string): string {
  if (!local.includes("$")) return local;
  return local
    .split(".")
    .map((tk) => (tk.length > 1 && tk[0] === "$" && goAtoi(tk.slice(1)) !== undefined ? "*" : tk))
    .join(".");
}

function validateRenaming(out: Issues, local: string, from: string): void {
  addSubjectIssues(out, local);
  if (from === "") error(out, "subject cannot be empty");
  if (local.includes(" ")) error(out, `subject ${q(local)} cannot have spaces`);
  const endsInFwc = (x: string): boolean => x === ">" || x.endsWith(".>");
  if (endsInFwc(local) !== endsInFwc(from)) {
    error(out, "both, renaming subject and subject, need to end or not end in >");
  }
  const fromCount = countTokenWildcards(from);
  let refCount = 0;
  for (const tk of local.split(".")) {
    if (tk === "*") refCount++;
    if (tk.length < 2) continue;
    if (tk[0] === "$") {
      const idx = goAtoi(tk.slice(1));
      if (idx === undefined) continue;
      if (idx > fromCount) {
        error(out, `Reference $${idx} in ${q(local)} reference * in ${q(from)} that do not exist`);
      } else {
        refCount++;
      }
    }
  }
  if (refCount !== fromCount) error(out, "subject does not contain enough * or reference wildcards $[0-9]");
}

// --- info ---------------------------------------------------------------------------------

/** The failures Go's url.Parse reports for the inputs people write, plus the host/scheme rule. */
const URL_CONTROL = /[\x00-\x1f\x7f]/;
const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;
const URL_AUTHORITY_END = /[/?#]/;
const URL_PORT = /^:[0-9]*$/;
const URL_BAD_HOST_CHAR = /[\s"<>\\^`{|}]/;

function infoUrlError(raw: string): string | undefined {
  if (URL_CONTROL.test(raw)) return `parse ${q(raw)}: net/url: invalid control character in URL`;
  if (raw.startsWith(":")) return `parse ${q(raw)}: missing protocol scheme`;
  const m = URL_SCHEME.exec(raw);
  if (!m) return "no hostname or scheme";
  const rest = m[2] ?? "";
  if (!rest.startsWith("//")) return "no hostname or scheme";
  const authority = rest.slice(2).split(URL_AUTHORITY_END, 1)[0] ?? "";
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  let host = hostPort;
  let port = "";
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    if (end < 0) return `parse ${q(raw)}: missing ']' in host`;
    host = hostPort.slice(1, end);
    port = hostPort.slice(end + 1);
  } else {
    const colon = hostPort.lastIndexOf(":");
    if (colon >= 0) {
      host = hostPort.slice(0, colon);
      port = hostPort.slice(colon);
    }
  }
  if (port !== "" && !URL_PORT.test(port)) return `parse ${q(raw)}: invalid port ${q(port)} after host`;
  if (URL_BAD_HOST_CHAR.test(host)) return `parse ${q(raw)}: invalid character in host name`;
  return host === "" ? "no hostname or scheme" : undefined;
}

function validateInfo(out: Issues, o: Obj | undefined): void {
  if (Buffer.byteLength(s(o, "description"), "utf8") > MAX_INFO_LENGTH) error(out, "Description is too long");
  const url = s(o, "info_url");
  if (url !== "") {
    if (Buffer.byteLength(url, "utf8") > MAX_INFO_LENGTH) error(out, "Info URL is too long");
    const e = infoUrlError(url);
    if (e) error(out, `error parsing info url: ${e}`);
  }
}

// --- imports ------------------------------------------------------------------------------

/** The activation fields Go reads, wherever the token's version keeps them. */
export interface ActivationView {
  readonly iss: string;
  readonly sub: string;
  readonly exp: number;
  readonly nbf: number;
  readonly importSubject: string;
  readonly importType: string;
  readonly issuerAccount: string;
}

/** The fields of an activation token, wherever its claim version keeps them. */
export function activationView(jwt: DecodedJwt): ActivationView {
  const c = jwt.claims;
  const nats = asObj(c["nats"]);
  const v1 = jwt.version === 1;
  return {
    iss: jwt.iss,
    sub: jwt.sub,
    exp: jwt.exp,
    nbf: jwt.nbf,
    importSubject: s(nats, "subject"),
    importType: s(nats, v1 ? "type" : "kind"),
    issuerAccount: v1 ? s(c, "issuer_account") : s(nats, "issuer_account"),
  };
}

/** Go's `Activation.Validate` plus the issuer_account check (no time checks). */
function validateActivationBody(out: Issues, act: ActivationView): void {
  if (act.importType !== "service" && act.importType !== "stream") {
    error(out, `invalid import type: ${q(exportTypeName(act.importType))}`);
  }
  addSubjectIssues(out, act.importSubject);
  if (act.issuerAccount !== "" && !isPublicKey(act.issuerAccount, "account")) {
    error(out, "account_id is not an account public key");
  }
}

function validateImport(
  out: Issues,
  imp: Obj,
  accountKey: string,
  now: number,
  opts: AccountValidationOptions,
): void {
  const type = s(imp, "type");
  const isService = type === "service";
  const isStream = type === "stream";
  const subject = s(imp, "subject");
  const to = s(imp, "to");
  const local = s(imp, "local_subject");
  const account = s(imp, "account");

  if (!isService && !isStream) error(out, `invalid import type: ${q(exportTypeName(type))}`);
  if (isService && b(imp, "allow_trace")) error(out, "AllowTrace only valid for stream import");
  if (account === "") error(out, "account to import from is not specified");
  if (to !== "") warning(out, "the field to has been deprecated (use LocalSubject instead)");
  addSubjectIssues(out, subject);
  if (local !== "") {
    validateRenaming(out, local, subject);
    if (to !== "") error(out, "Local Subject replaces To");
  }
  if (b(imp, "share") && !isService) {
    error(out, `sharing information (for latency tracking) is only valid for services: ${q(subject)}`);
  }

  const token = s(imp, "token");
  if (token === "") return;
  let act: ActivationView;
  try {
    act = activationView(decodeActivationJwt(token));
  } catch {
    error(out, `import ${q(subject)} contains an invalid activation token`);
    return;
  }
  if (!(act.iss === account || act.issuerAccount === account)) {
    error(out, `activation token doesn't match account for import ${q(subject)}`);
  }
  if (act.sub !== accountKey) {
    error(out, `activation token doesn't match account it is being included in, ${q(subject)}`);
  }
  if (act.importType !== type) {
    error(
      out,
      `mismatch between token import type ${exportTypeName(act.importType)} and type of import ${exportTypeName(type)}`,
    );
  }
  validateActivationBody(out, act);
  if (opts.checkActivationTimes) {
    const report = opts.checkActivationTimes === "warn" ? warning : timeCheck;
    if (act.exp > 0 && now > act.exp) report(out, `activation token for import ${q(subject)} is expired`);
    if (act.nbf > 0 && act.nbf > now) {
      report(out, `activation token for import ${q(subject)} is not yet valid`);
    }
  }
  const subj = isService && to !== "" ? to : subject;
  if (!subjectContains(act.importSubject, subj)) {
    error(out, `activation token import subject ${q(act.importSubject)} doesn't match import ${q(subject)}`);
  }
}

/** The service imports seen so far from one exporting account, indexed both ways. */
interface ImportSubjects {
  readonly subjects: string[];
  readonly ids: Map<string, number>;
  /** Seen subjects as containers of a new one. */
  readonly outer: OuterIndex<number>;
  /** Seen subjects as contained in a new one. */
  readonly inner: InnerIndex<number>;
}

/** Ids of seen subjects that contain or are contained in `sub`: at most `max`, ascending. */
function overlaps(seen: ImportSubjects, sub: string, max: number): number[] {
  const hits = new Set<number>();
  const add = (id: number): boolean => hits.add(id).size >= max;
  if (!seen.outer.match(sub, add)) seen.inner.within(sub, add);
  return [...hits].sort((a, b) => a - b);
}

function validateImports(
  out: Issues,
  imports: unknown[],
  accountKey: string,
  now: number,
  opts: AccountValidationOptions,
): void {
  // Service imports may not overlap within one exporting account (jwt v2.8.1 semantics). Go
  // compares each with every earlier one; tries find the overlapping ones directly.
  const byAccount = new Map<string, ImportSubjects>();
  for (const raw of imports) {
    const imp = asObj(raw);
    if (!imp) {
      error(out, "null import is not allowed");
      continue;
    }
    if (s(imp, "type") === "service") {
      const account = s(imp, "account");
      const sub = s(imp, "to") || renamingToSubject(s(imp, "local_subject")) || s(imp, "subject");
      let seen = byAccount.get(account);
      if (!seen) {
        seen = { subjects: [], ids: new Map(), outer: new OuterIndex(), inner: new InnerIndex() };
        byAccount.set(account, seen);
      }
      // Past the listing limit one overlap is enough to refuse.
      const max = Math.max(out.room, 0) + 1;
      const hits = overlaps(seen, sub, max);
      if (hits.length >= max) out.cut = true;
      for (const id of hits) {
        const other = seen.subjects[id] as string;
        error(out, `overlapping subject namespace for ${q(sub)} and ${q(other)} in same account ${q(account)}`);
      }
      if (seen.ids.has(sub)) {
        error(out, `overlapping subject namespace for ${q(sub)} in account ${q(account)}`);
      } else {
        const id = seen.subjects.push(sub) - 1;
        seen.ids.set(sub, id);
        seen.outer.add(sub, id);
        seen.inner.add(sub, id);
      }
    }
    validateImport(out, imp, accountKey, now, opts);
  }
}

// --- exports ------------------------------------------------------------------------------

const RESPONSE_TYPES: ReadonlySet<string> = new Set(["", "Singleton", "Stream", "Chunked"]);

function validateExport(out: Issues, exp: Obj): void {
  const type = s(exp, "type");
  const isService = type === "service";
  const isStream = type === "stream";
  const subject = s(exp, "subject");
  const responseType = s(exp, "response_type");

  if (!isService && !isStream) error(out, `invalid export type: ${q(exportTypeName(type))}`);
  if (isService && !RESPONSE_TYPES.has(responseType)) {
    error(out, `invalid response type for service: ${q(responseType)}`);
  }
  if (isStream) {
    if (responseType !== "") error(out, `invalid response type for stream: ${q(responseType)}`);
    if (b(exp, "allow_trace")) error(out, "AllowTrace only valid for service export");
  }
  const latency = asObj(exp["service_latency"]);
  if (latency) {
    if (!isService) error(out, "latency tracking only permitted for services");
    const sampling = n(latency, "sampling"); // "headers" reads as 0, as in Go
    if (sampling !== 0 && (sampling < 1 || sampling > 100)) {
      error(out, "sampling percentage needs to be between 1-100");
    }
    const results = s(latency, "results");
    addSubjectIssues(out, results);
    if (hasWildcards(results)) error(out, "results subject can not contain wildcards");
  }
  const threshold = n(exp, "response_threshold");
  if (threshold < 0) error(out, "negative response threshold is invalid");
  if (threshold > 0 && !isService) error(out, "response threshold only valid for services");
  addSubjectIssues(out, subject);
  const pos = n(exp, "account_token_position");
  if (pos > 0) {
    if (!hasWildcards(subject)) {
      error(out, `Account Token Position can only be used with wildcard subjects: ${subject}`);
    } else {
      const tokens = subject.split(".");
      if (pos > tokens.length) {
        error(out, `Account Token Position ${pos} exceeds length of subject '${subject}'`);
      } else {
        const tk = tokens[pos - 1] ?? "";
        if (tk !== "*") error(out, `Account Token Position ${pos} matches '${tk}' but must match a * in: ${subject}`);
      }
    }
  }
  validateInfo(out, exp);
}

/** One distinct export subject and the first two places it occurs. */
interface ExportSubject {
  readonly subject: string;
  readonly first: number;
  second: number;
}

/**
 * Go reports, per containing subject, the first subject (in export order, itself excluded) found
 * inside it. Each subject is looked up once in a trie of all of them; a container is retired as
 * soon as it is reported, so no pair is looked at twice.
 */
function reportContained(out: Issues, kind: string, subjects: string[]): void {
  const distinct = new Map<string, ExportSubject>();
  subjects.forEach((subject, i) => {
    const d = distinct.get(subject);
    if (!d) distinct.set(subject, { subject, first: i, second: -1 });
    else if (d.second < 0) d.second = i;
  });
  const index = new OuterIndex<ExportSubject>();
  for (const d of distinct.values()) index.add(d.subject, d);
  const found: [string, string][] = [];
  // A subject occurring again finds nothing new: its first occurrence already looked.
  for (const inner of distinct.values()) {
    const hits: [number, ExportSubject][] = [];
    index.match(inner.subject, (outer) => {
      // The only other occurrence of the container may be the inner subject itself.
      const j = outer.first !== inner.first ? outer.first : outer.second;
      if (j >= 0) hits.push([j, outer]);
    });
    hits.sort((a, b) => a[0] - b[0]);
    for (const [, outer] of hits) {
      found.push([outer.subject, inner.subject]);
      index.retire(outer);
    }
  }
  for (const [outer, inner] of found) error(out, `${kind} export subject ${q(outer)} already exports ${q(inner)}`);
}

function validateExports(out: Issues, exports: unknown[]): void {
  const services: string[] = [];
  const streams: string[] = [];
  for (const raw of exports) {
    const exp = asObj(raw);
    if (!exp) {
      error(out, "null export is not allowed");
      continue;
    }
    (s(exp, "type") === "service" ? services : streams).push(s(exp, "subject"));
    validateExport(out, exp);
  }
  reportContained(out, "service", services);
  reportContained(out, "stream", streams);
}

// --- permissions, mappings, authorization ---------------------------------------------------

function checkPermission(out: Issues, subj: string, permitQueue: boolean): void {
  const tk = subj.split(" ");
  if (tk.length === 1) {
    addSubjectIssues(out, tk[0] ?? "");
  } else if (tk.length === 2) {
    addSubjectIssues(out, tk[0] ?? "");
    addSubjectIssues(out, tk[1] ?? "");
    if (!permitQueue) error(out, `Permission Subject "${subj}" is not allowed to contain queue`);
  } else {
    error(out, `Permission Subject "${subj}" contains too many spaces`);
  }
}

function validatePermission(out: Issues, p: Obj | undefined, permitQueue: boolean): void {
  for (const subj of strList(p?.["allow"])) checkPermission(out, subj, permitQueue);
  for (const subj of strList(p?.["deny"])) checkPermission(out, subj, permitQueue);
}

function validatePermissions(out: Issues, p: Obj | undefined): void {
  // Go checks sub before pub; queue groups are only meaningful for subscriptions.
  validatePermission(out, asObj(p?.["sub"]), true);
  validatePermission(out, asObj(p?.["pub"]), false);
}

function validateMappings(out: Issues, mappings: Obj | undefined): void {
  if (!mappings) return;
  for (const [from, list] of Object.entries(mappings)) {
    addSubjectIssues(out, from);
    const perCluster = new Map<string, number>();
    let total = 0;
    for (const raw of asArr(list)) {
      const e = asObj(raw);
      addSubjectIssues(out, s(e, "subject"));
      const weight = n(e, "weight") || 100;
      if (weight > 100) error(out, `Mapping ${q(from)} has a weight ${weight} that exceeds 100`);
      const cluster = s(e, "cluster");
      if (cluster !== "") {
        const t = (perCluster.get(cluster) ?? 0) + weight;
        perCluster.set(cluster, t);
        if (t > 100) {
          error(out, `Mapping ${q(from)} in cluster ${q(cluster)} exceeds 100% among all of it's weighted to mappings`);
        }
      } else {
        total += weight;
      }
    }
    if (total > 100) error(out, `Mapping ${q(from)} exceeds 100% among all of it's weighted to mappings`);
  }
}

function validateAuthorization(out: Issues, a: Obj | undefined): void {
  const users = strList(a?.["auth_users"]);
  const accounts = strList(a?.["allowed_accounts"]);
  if (accounts.length > 0 && users.length === 0) {
    error(out, "External authorization cannot have accounts without users specified");
  }
  for (const u of users) {
    if (!isPublicKey(u, "user")) error(out, `AuthUser ${q(u)} is not a valid user public key`);
  }
  for (const acc of accounts) {
    if (acc === "*") {
      if (accounts.length > 1) error(out, `AllowedAccounts can only be a list of accounts or "*"`);
    } else if (!isPublicKey(acc, "account")) {
      error(out, `Account ${q(acc)} is not a valid account public key`);
    }
  }
  const xkey = s(a, "xkey");
  if (xkey !== "" && !isPublicKey(xkey, "curve")) error(out, `XKey ${q(xkey)} is not a valid public xkey`);
}

// --- limits and signing keys --------------------------------------------------------------

const V1_LIMIT_FIELDS = [...ACCOUNT_LIMIT_COUNTS, "wildcards", "disallow_bearer"];
const JS_LIMIT_FIELDS = [...JETSTREAM_LIMIT_COUNTS, "max_bytes_required"];

/** Go's OperatorLimits.IsEmpty over the fields the claim version carries. */
function limitsEmpty(limits: Obj | undefined, v1: boolean): boolean {
  if (!limits) return true;
  const fields = v1 ? V1_LIMIT_FIELDS : [...V1_LIMIT_FIELDS, ...JS_LIMIT_FIELDS];
  for (const f of fields) {
    const v = limits[f];
    if (v !== undefined && v !== null && v !== 0 && v !== false) return false;
  }
  return v1 || Object.keys(asObj(limits["tiered_limits"]) ?? {}).length === 0;
}

/**
 * Go's SigningKeys map: plain keys map to no scope, scoped objects to their scope; a later
 * entry for the same key replaces the earlier one. v1 tokens only have plain keys.
 */
function signingKeys(raw: unknown, v1: boolean): Map<string, Obj | null> {
  const keys = new Map<string, Obj | null>();
  for (const e of asArr(raw)) {
    if (typeof e === "string") {
      keys.set(e, null);
    } else if (!v1) {
      const scope = asObj(e);
      if (scope && scope["kind"] === "user_scope") keys.set(s(scope, "key"), scope);
    }
  }
  return keys;
}

// --- entry points -------------------------------------------------------------------------

/**
 * All issues Go's `AccountClaims.Validate` reports for this account JWT at `now` (unix
 * seconds). v1 tokens are judged on what survives Go's v1→v2 migration (imports, exports,
 * nats/account limits, plain signing keys).
 */
export function validateAccountClaims(
  jwt: DecodedJwt<AccountClaims>,
  now: number,
  opts: AccountValidationOptions = {},
): ValidationIssue[] {
  const out = new Issues();
  const claims = jwt.claims as unknown as Obj;
  const nats = asObj(claims["nats"]);
  const v1 = jwt.version === 1;
  const imports = asArr(nats?.["imports"]);
  const exports = asArr(nats?.["exports"]);
  const limits = asObj(nats?.["limits"]);
  const v2 = v1 ? undefined : nats;

  claimTimes(out, jwt.exp, jwt.nbf, now);
  validateImports(out, imports, jwt.sub, now, opts);
  validateExports(out, exports);

  // Go also refuses classic JetStream limits next to tiered ones, but its decoder clears the
  // classic ones whenever tiers exist, so only the blank tier name can ever be reported.
  const tiers = v1 ? undefined : asObj(limits?.["tiered_limits"]);
  if (tiers && Object.hasOwn(tiers, "")) {
    error(out, `Tiered JetStream Limits can not contain a blank "" tier name`);
  }

  validatePermissions(out, asObj(v2?.["default_permissions"]));
  validateMappings(out, asObj(v2?.["mappings"]));
  validateAuthorization(out, asObj(v2?.["authorization"]));

  const trace = asObj(v2?.["trace"]);
  if (trace) {
    const dest = s(trace, "dest");
    const first = subjectIssues(dest)[0];
    if (first !== undefined) error(out, `the account Trace.Destination ${first}`);
    if (hasWildcards(dest)) {
      error(out, `the account Trace.Destination subject ${q(dest)} is not a valid publish subject`);
    }
    const sampling = n(trace, "sampling");
    if (sampling < 0 || sampling > 100) {
      error(out, `the account Trace.Sampling value '${sampling}' is not valid, should be in the range [1..100]`);
    }
  }

  // Absent limit fields are 0, not unlimited: an account without limits may not import or
  // export anything. Go's two overlapping checks can report the imports problem twice.
  const empty = limitsEmpty(limits, v1);
  const maxImports = n(limits, "imports");
  const maxExports = n(limits, "exports");
  const tooManyImports = "the account contains more imports than allowed by the operator";
  if (!empty && maxImports >= 0 && imports.length > maxImports) error(out, tooManyImports);
  if (maxImports !== NO_LIMIT && imports.length > maxImports) error(out, tooManyImports);
  if (maxExports !== NO_LIMIT) {
    if (exports.length > maxExports) error(out, "the account contains more exports than allowed by the operator");
    if (!b(limits, "wildcards")) {
      for (const raw of exports) {
        const exp = asObj(raw);
        if (exp && hasWildcards(s(exp, "subject"))) {
          error(out, "the account contains wildcard exports that are not allowed by the operator");
        }
      }
    }
  }

  for (const [key, scope] of signingKeys(nats?.["signing_keys"], v1)) {
    if (scope) {
      if (!isPublicKey(key, "account")) error(out, `${key} is not an account public key`);
    } else if (!isPublicKey(key, "account")) {
      error(out, `${q(key)} is not a valid account signing key`);
    }
  }

  validateInfo(out, v2);
  const traffic = s(v2, "cluster_traffic");
  if (traffic !== "" && traffic !== "system" && traffic !== "owner") {
    error(out, `unknown cluster traffic option: ${q(traffic)}`);
  }

  if (isPublicKey(jwt.iss, "account") && !empty) {
    warning(out, "self-signed account JWTs shouldn't contain operator limits");
  }
  return out.list();
}

/** Go's `ActivationClaims.Validate`: time checks, import type and subject, issuer_account. */
export function validateActivationClaims(jwt: DecodedJwt, now: number): ValidationIssue[] {
  const out = new Issues();
  claimTimes(out, jwt.exp, jwt.nbf, now);
  validateActivationBody(out, activationView(jwt));
  return out.list();
}

// --- activation hash ----------------------------------------------------------------------

/** Go's cleanSubject: cut at the first wildcard token; a leading wildcard gives "_". */
function cleanSubject(subject: string): string {
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const tk = tokens[i];
    if (tk === "*" || tk === ">") {
      if (i === 0) return "_";
      const cut = tokens.slice(0, i).join(".");
      return cut === "" ? subject : cut;
    }
  }
  return subject;
}

/**
 * The activation id of legacy §4.2.4 (Go's `ActivationClaims.HashID`): base32 of
 * sha256("<issuer>.<subject>.<cleaned import subject>"), here without Go's `=` padding so
 * it is safe as a file or URL name.
 */
export function activationHash(issuer: string, subject: string, importSubject: string): string {
  const digest = createHash("sha256").update(`${issuer}.${subject}.${cleanSubject(importSubject)}`).digest();
  return base32Encode(digest);
}

/** Refuse with `code` when any issue blocks or a time check fails; every issue is listed. */
export function refuseOnIssues(issues: readonly ValidationIssue[], code: "VALIDATION_FAILED" | "ACTIVATION_VALIDATION_FAILED"): void {
  if (!issues.some((i) => i.blocking || i.timeCheck)) return;
  const details = issues.map((i) => i.description);
  throw new AccountServerError(code, { details, reason: details.join("; ") });
}
