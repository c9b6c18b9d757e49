/**
 * The indexed containment checks (exports inside exports, overlapping service imports) give
 * exactly what Go's all-pairs comparison gives, and stay bounded on shapes with countless pairs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AccountClaims, DecodedJwt } from "../../src/jwt/claims.js";
import { goQuote as q, subjectContains } from "../../src/jwt/subject.js";
import { InnerIndex, OuterIndex } from "../../src/jwt/subject-index.js";
import { MAX_LISTED_ISSUES, validateAccountClaims } from "../../src/jwt/validate.js";
import { UNLIMITED } from "../helpers/fixtures.js";

const ACCOUNT = "ADKYHPGMG4Y7DPBRTAJUJIV3VUWGQ5B2JGPA5PPUMZ2HNJHUPMYR4OIH";
const EXPORTER = "ACFSSQ5FI2SGLNWP7JRLEPHHEVRFA6ZJVJPIB4EUYTRU54CDJGT6TOEA";
const EXPORTER2 = "AB6ECAFWNO5IZ4NN4ZSBEYMZHXWCQ4UAUFVKCX5EWTHQMDDCWEX5P7AD";

function decoded(nats: Record<string, unknown>): DecodedJwt<AccountClaims> {
  const claims = { sub: ACCOUNT, iss: "O", nats: { limits: UNLIMITED, ...nats, type: "account", version: 2 } };
  return { token: "", header: { typ: "JWT", alg: "ed25519-nkey" }, claims, version: 2, kind: "account", iss: "O", sub: ACCOUNT, jti: "", iat: 0, exp: 0, nbf: 0 } as unknown as DecodedJwt<AccountClaims>;
}

const texts = (nats: Record<string, unknown>): string[] =>
  validateAccountClaims(decoded(nats), 0).map((i) => i.description);

/** Go's Exports.Validate containment check as written there: every subject against every other. */
function allPairsExports(kind: string, subjects: string[]): string[] {
  const found = new Map<string, string>();
  for (let i = 0; i < subjects.length; i++) {
    for (let j = 0; j < subjects.length; j++) {
      if (i !== j && subjectContains(subjects[j]!, subjects[i]!) && !found.has(subjects[j]!)) found.set(subjects[j]!, subjects[i]!);
    }
  }
  return [...found].map(([o, i]) => `${kind} export subject ${q(o)} already exports ${q(i)}`);
}

/** Go's Imports.Validate overlap check: every service import against every earlier one. */
function allPairsImports(imports: { subject: string; account: string }[]): string[] {
  const out: string[] = [];
  const byAccount = new Map<string, string[]>();
  for (const { subject: sub, account } of imports) {
    const seen = byAccount.get(account) ?? [];
    byAccount.set(account, seen);
    for (const other of seen) {
      if (subjectContains(other, sub) || subjectContains(sub, other)) {
        out.push(`overlapping subject namespace for ${q(sub)} and ${q(other)} in same account ${q(account)}`);
      }
    }
    if (seen.includes(sub)) out.push(`overlapping subject namespace for ${q(sub)} in account ${q(account)}`);
    else seen.push(sub);
  }
  return out;
}

// Few tokens, so that random subjects often contain one another; ">" also where Go reads it literally.
const token = fc.constantFrom("a", "b", "*", ">", "");
const subject = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join("."));

describe("containment - same results as Go's all-pairs comparison", () => {
  it("exports: each container reported once, with the first subject found inside it", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(subject, fc.boolean()), { maxLength: 12 }), (list) => {
        const exports = list.map(([s, svc]) => ({ subject: s, type: svc ? "service" : "stream" }));
        const got = texts({ exports }).filter((t) => t.includes("already exports"));
        const services = exports.filter((e) => e.type === "service").map((e) => e.subject);
        const streams = exports.filter((e) => e.type === "stream").map((e) => e.subject);
        const want = [...allPairsExports("service", services), ...allPairsExports("stream", streams)];
        assert.deepEqual(got, want.slice(0, MAX_LISTED_ISSUES));
      }),
      { numRuns: 2000 },
    );
  });

  it("service imports: every overlapping pair, per exporting account, in Go's words", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(subject, fc.constantFrom(EXPORTER, EXPORTER2)), { maxLength: 10 }), (list) => {
        const imports = list.map(([s, account]) => ({ subject: s, account, type: "service" }));
        const got = texts({ imports }).filter((t) => t.startsWith("overlapping"));
        assert.deepEqual(got, allPairsImports(imports));
      }),
      { numRuns: 2000 },
    );
  });

  it("the tries agree with subjectContains on every pair", () => {
    fc.assert(
      fc.property(fc.uniqueArray(subject, { maxLength: 8 }), subject, (stored, probe) => {
        const outer = new OuterIndex<number>();
        const inner = new InnerIndex<number>();
        stored.forEach((s, i) => (outer.add(s, i), inner.add(s, i)));
        const containers: number[] = [];
        const contained: number[] = [];
        outer.match(probe, (i) => void containers.push(i));
        inner.within(probe, (i) => void contained.push(i));
        const ids = stored.map((_, i) => i);
        assert.deepEqual(containers.sort(), ids.filter((i) => subjectContains(stored[i]!, probe)));
        assert.deepEqual(contained.sort(), ids.filter((i) => subjectContains(probe, stored[i]!)));
      }),
      { numRuns: 3000 },
    );
  });
});

describe("containment - bounded", () => {
  it("subjects of 200,000 tokens are checked without overflowing the stack", () => {
    const deep = Array(200_000).fill("t").join(".");
    const wide = `${deep.slice(2)}.>`;
    assert.deepEqual(texts({ exports: [{ subject: deep, type: "stream" }, { subject: wide, type: "stream" }] }), [
      `stream export subject ${q(wide)} already exports ${q(deep)}`,
    ]);
    const imports = [deep, wide].map((subject) => ({ subject, account: EXPORTER, type: "service" }));
    assert.deepEqual(texts({ imports }), [`overlapping subject namespace for ${q(wide)} and ${q(deep)} in same account ${q(EXPORTER)}`]);
  });

  it("countless overlapping service imports: the first issues listed, the rest summed up, still refused", () => {
    // Every subject over {a,*}^12: most of the 8 million pairs overlap.
    const subjects = Array.from({ length: 4096 }, (_, i) => Array.from({ length: 12 }, (_, d) => ((i >> d) & 1 ? "*" : "a")).join("."));
    const issues = validateAccountClaims(decoded({ imports: subjects.map((s) => ({ subject: s, account: EXPORTER, type: "service" })) }), 0);
    assert.equal(issues.length, MAX_LISTED_ISSUES + 1);
    assert.ok(issues.every((i) => i.blocking));
    assert.match(issues.at(-1)!.description, /^at least \d+ more issues not listed \(only the first 100 are\)$/);
    assert.equal(issues[0]!.description, `overlapping subject namespace for ${q(subjects[1]!)} and ${q(subjects[0]!)} in same account ${q(EXPORTER)}`);
  });

  it("issues past the limit that are only warnings do not refuse", () => {
    const imports = Array.from({ length: MAX_LISTED_ISSUES + 5 }, (_, i) => ({ subject: `s.${i}`, to: `t.${i}`, account: EXPORTER, type: "stream" }));
    const issues = validateAccountClaims(decoded({ imports }), 0);
    assert.equal(issues.length, MAX_LISTED_ISSUES + 1);
    assert.ok(issues.every((i) => !i.blocking && !i.timeCheck));
    assert.equal(issues.at(-1)!.description, "5 more issues not listed (only the first 100 are)");
  });
});
