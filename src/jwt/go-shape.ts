/**
 * Go's json.Unmarshal refuses a value of the wrong JSON type for a typed field, which makes the
 * whole Decode fail: these shapes of the structs Go decodes into reproduce that check.
 */
import type { KeyKind } from "./nkey.js";

// Unknown fields are ignored, null is accepted (Go leaves the zero value).
export type Shape =
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

export function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v;
}

function mismatch(v: unknown, path: string, goType: string): string {
  const what = typeof v === "number" ? `number ${v}` : jsonKind(v);
  return `json: cannot unmarshal ${what} into Go struct field ${path} of type ${goType}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function checkShape(v: unknown, shape: Shape, path: string): string | undefined {
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
export const GENERIC = obj({ ...CLAIMS_DATA, nats: { map: "any" } });
/** A JWT header: only `typ` and `alg` are read. */
export const HEADER = obj({ typ: S, alg: S });
export const IDENTIFIER = obj({ type: S, nats: obj(GENERIC_FIELDS) });
/** DecodeGeneric's target: generic claims plus GenericFields flattened at the top level. */
export const GENERIC_LENIENT = obj({ ...CLAIMS_DATA, ...GENERIC_FIELDS, nats: { map: "any" } });

/** Kinds Go knows, with the shape per claim version and the key kinds allowed to issue. */
export interface KnownKind {
  readonly shapes: Readonly<Record<number, Shape>> | undefined;
  readonly anyVersionShape?: Shape;
  readonly issuers: readonly KeyKind[];
}

export const KNOWN_KINDS: ReadonlyMap<string, KnownKind> = new Map<string, KnownKind>([
  ["operator", { shapes: { 1: OPERATOR_V1, 2: OPERATOR_V2 }, issuers: ["operator"] }],
  ["account", { shapes: { 1: ACCOUNT_V1, 2: ACCOUNT_V2 }, issuers: ["account", "operator"] }],
  ["user", { shapes: { 1: USER_V1, 2: USER_V2 }, issuers: ["account"] }],
  ["activation", { shapes: { 1: ACTIVATION_V1, 2: ACTIVATION_V2 }, issuers: ["account", "operator"] }],
  ["authorization_request", { shapes: undefined, anyVersionShape: AUTHORIZATION, issuers: ["server"] }],
  ["authorization_response", { shapes: undefined, anyVersionShape: AUTHORIZATION, issuers: ["account"] }],
]);
