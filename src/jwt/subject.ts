/**
 * NATS subject helpers: the server's notion of a valid subject, plus the deliberately
 * simple wildcard tests of the Go `jwt` library that account validation must reproduce.
 */

/** Whitespace the NATS server refuses inside a subject. */
function isSubjectWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d || code === 0x0c;
}

/**
 * A subject nats-server accepts for subscribing: non-empty tokens, no whitespace, and a
 * `>` token only in last position. `*`/`>` inside a longer token are ordinary characters.
 */
export function isValidSubject(subject: string): boolean {
  return checkSubject(subject, false);
}

/** A subject nats-server accepts for publishing: valid and without `*` or `>` tokens. */
export function isValidLiteralSubject(subject: string): boolean {
  return checkSubject(subject, true);
}

function checkSubject(subject: string, literal: boolean): boolean {
  const n = subject.length;
  if (n === 0) return false;
  let tokenStart = 0;
  let sawFullWildcard = false;
  for (let i = 0; i <= n; i++) {
    const code = i < n ? subject.charCodeAt(i) : 0x2e;
    if (code !== 0x2e) {
      if (isSubjectWhitespace(code)) return false;
      continue;
    }
    const len = i - tokenStart;
    if (len === 0 || sawFullWildcard) return false;
    if (len === 1) {
      const c = subject.charCodeAt(tokenStart);
      if (c === 0x3e) {
        if (literal) return false;
        sawFullWildcard = true;
      } else if (c === 0x2a && literal) {
        return false;
      }
    }
    tokenStart = i + 1;
  }
  return true;
}

/**
 * Go `Subject.HasWildCards`: looks only for whole `*` / `>` tokens at the usual places.
 * (`a.>.b` has none in Go's eyes; kept that way for parity.)
 */
export function hasWildcards(subject: string): boolean {
  return (
    subject === "*" ||
    subject === ">" ||
    subject.endsWith(".>") ||
    subject.endsWith(".*") ||
    subject.startsWith("*.") ||
    subject.includes(".*.")
  );
}

/**
 * True when every subject matched by `inner` is also matched by `outer`, computed exactly
 * like Go's `Subject(inner).IsContainedIn(outer)`. Go's test is token-wise, so it also says
 * `a.>` is contained in `a.*` — kept, since validation results must match Go's.
 */
export function subjectContains(outer: string, inner: string): boolean {
  const o = outer.split(".");
  const m = inner.split(".");
  const lastOuter = o[o.length - 1];
  if (m.length > o.length && lastOuter !== ">") return false;
  if (m.length < o.length) return false;
  for (let i = 0; i < o.length; i++) {
    const tok = o[i];
    if (i === o.length - 1 && tok === ">") return true;
    if (tok !== m[i] && tok !== "*") return false;
  }
  return true;
}

/**
 * Go `Subject.Validate` descriptions for one subject (empty when fine). Go only looks
 * for plain spaces, empty strings and empty tokens; tabs and misplaced `>` pass.
 */
export function subjectIssues(subject: string): string[] {
  if (subject === "") return ["subject cannot be empty"];
  const out: string[] = [];
  const q = goQuote(subject);
  if (subject.includes(" ")) out.push(`subject ${q} cannot have spaces`);
  if (subject.startsWith(".") || subject.endsWith(".")) {
    out.push(`subject ${q} cannot start or end with a \`.\``);
  }
  if (subject.includes("..")) out.push(`subject ${q} cannot contain consecutive \`.\``);
  return out;
}

/** Go `%q` for the strings that show up in issue texts (close enough for printable text). */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}
