/**
 * The claim shapes this server reads from NATS JWTs (operator, account, activation) and what a
 * decoded token carries; everything is optional because payloads pass through as parsed.
 */
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

/** The numeric limits of an account's `nats.limits` (-1 = unlimited, absent = 0). */
export const ACCOUNT_LIMIT_COUNTS = ["conn", "leaf", "subs", "data", "payload", "imports", "exports"] as const;
export const JETSTREAM_LIMIT_COUNTS = [
  "mem_storage",
  "disk_storage",
  "streams",
  "consumer",
  "max_ack_pending",
  "mem_max_stream_bytes",
  "disk_max_stream_bytes",
] as const;
