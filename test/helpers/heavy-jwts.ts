/**
 * The largest, most expensive account JWT shapes that still fit a body limit: thousands of exports,
 * imports, revocations, signing keys, mappings; shared by the validation tests and bench/validation.ts.
 */
import { randomBytes } from "node:crypto";
import { encodePublicKey } from "../../src/jwt/nkey.js";

export interface HeavyShape {
  readonly name: string;
  /** Fields merged into the claims' `nats` object. */
  readonly nats: Record<string, unknown>;
  /** How many entries the shape holds. */
  readonly count: number;
  /** Go's verdict: accepted, or refused with issues. */
  readonly accepted: boolean;
}

/** Fields merged into `nats` for `count` entries of a shape. */
type Builder = (count: number, exporter: string) => Record<string, unknown>;

/** Distinct keys by position, made once: the size search builds each shape many times. */
const KEYS = { account: [] as string[], user: [] as string[] };
function keys(kind: "account" | "user", n: number): string[] {
  const list = KEYS[kind];
  while (list.length < n) list.push(encodePublicKey(kind, randomBytes(32)));
  return list.slice(0, n);
}

/** Subjects over the tokens {a, *} of every combination of `depth` tokens, then a literal tail. */
function lattice(count: number): string[] {
  const depth = Math.max(1, Math.ceil(Math.log2(count)));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const tokens: string[] = [];
    for (let d = 0; d < depth; d++) tokens.push((i >> d) & 1 ? "*" : "a");
    out.push(tokens.join("."));
  }
  return out;
}

const BUILDERS: ReadonlyArray<readonly [string, boolean, Builder]> = [
  // The shape the issue measured: disjoint stream exports, each with a trailing wildcard.
  ["stream exports s.<i>.>", true, (c) => ({ exports: range(c).map((i) => ({ subject: `s.${i}.>`, type: "stream" })) })],
  [
    "service exports svc.<i>.*",
    true,
    (c) => ({ exports: range(c).map((i) => ({ subject: `svc.${i}.*`, type: "service", response_type: "Singleton" })) }),
  ],
  // Everything under one `>` export: one containment issue per export (refused).
  [
    "exports inside >",
    false,
    (c) => ({ exports: [{ subject: ">", type: "stream" }, ...range(c - 1).map((i) => ({ subject: `x.${i}`, type: "stream" }))] }),
  ],
  // Wildcards at every position: most pairs contain one another (refused).
  ["exports {a,*}^k lattice", false, (c) => ({ exports: lattice(c).map((subject) => ({ subject, type: "stream" })) })],
  [
    "service imports from one account",
    true,
    (c, exporter) => ({
      imports: range(c).map((i) => ({ subject: `svc.${i}`, account: exporter, type: "service" })),
    }),
  ],
  [
    "service imports {a,*}^k lattice",
    false,
    (c, exporter) => ({ imports: lattice(c).map((subject) => ({ subject, account: exporter, type: "service" })) }),
  ],
  ["stream imports", true, (c, exporter) => ({ imports: range(c).map((i) => ({ subject: `s.${i}.>`, account: exporter, type: "stream" })) })],
  ["revocations", true, (c) => ({ revocations: Object.fromEntries(keys("user", c).map((k, i) => [k, 1_700_000_000 + i])) })],
  ["signing keys", true, (c) => ({ signing_keys: keys("account", c) })],
  [
    "scoped signing keys",
    true,
    (c) => ({
      signing_keys: keys("account", c).map((key, i) => ({ kind: "user_scope", key, role: `r${i}`, template: { pub: { allow: [`a.${i}`] } } })),
    }),
  ],
  ["tags", true, (c) => ({ tags: range(c).map((i) => `tag-${i}`) })],
  ["mappings", true, (c) => ({ mappings: Object.fromEntries(range(c).map((i) => [`m.${i}`, [{ subject: `n.${i}`, weight: 100 }]])) })],
  ["permissions", true, (c) => ({ default_permissions: { pub: { allow: range(c).map((i) => `p.${i}.>`) }, sub: {} } })],
  ["one subject of many tokens", true, (c) => ({ exports: [{ subject: range(c).map(() => "t").join("."), type: "stream" }] })],
];

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Length of the signed JWT for a claims payload (header and signature are fixed size). */
function jwtLength(claims: unknown): number {
  return 46 + 1 + Math.ceil((Buffer.byteLength(JSON.stringify(claims)) * 4) / 3) + 1 + 86;
}

/** Names of every shape, in the order heavyShapes lists them. */
export const HEAVY_SHAPE_NAMES: readonly string[] = BUILDERS.map(([name]) => name);

/**
 * Every heavy shape (or those named) at the largest count whose JWT, with the claim set that
 * `claims(nats)` wraps the shape's fields in, stays within `limit` bytes.
 */
export function heavyShapes(
  limit: number,
  claims: (nats: Record<string, unknown>) => Record<string, unknown>,
  names: readonly string[] = HEAVY_SHAPE_NAMES,
): HeavyShape[] {
  const exporter = keys("account", 1)[0] as string;
  return BUILDERS.filter(([name]) => names.includes(name)).map(([name, accepted, build]) => {
    const fits = (c: number): boolean => jwtLength(claims(build(c, exporter))) <= limit;
    // Start near the answer: the size grows about linearly with the count.
    const per = (jwtLength(claims(build(200, exporter))) - jwtLength(claims(build(100, exporter)))) / 100;
    let lo = 1;
    let hi = Math.max(2, Math.ceil((limit / Math.max(per, 1)) * 1.05));
    while (fits(hi)) hi *= 2;
    if (fits(Math.floor(hi * 0.9))) lo = Math.floor(hi * 0.9);
    // Within a thousandth of the limit is "just under" enough.
    while (hi - lo > Math.max(1, lo >> 10)) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
    return { name, nats: build(lo, exporter), count: lo, accepted };
  });
}
