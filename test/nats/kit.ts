/**
 * Shared pieces of the NATS-resolver peer tests: nats-server configs for full/cache resolvers,
 * system-account clients, polling with deadlines, and clients that behave exactly like nsc.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, createInbox, credsAuthenticator, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { fmtCreds } from "@nats-io/jwt";
import { createUser, newJti, nowSec, signJwt, userCreds, type KeyPair, type OperatorSetup } from "../helpers/fixtures.js";
import { writeFile } from "../helpers/processes.js";
import { startServer, type TestServer, type TestServerOptions } from "../helpers/server.js";

export interface ResolverOptions {
  readonly type: "full" | "cache";
  /** Where the resolver keeps its JWT files. */
  readonly jwtDir: string;
  readonly allowDelete?: boolean;
  /** Full resolvers' pack sync period. */
  readonly interval?: string;
  /** Extra config lines (server_name, cluster block). */
  readonly extra?: string;
}

/** nats-server config text for an operator-mode server with a NATS-based resolver. */
export function resolverConf(op: OperatorSetup, dir: string, o: ResolverOptions): string {
  mkdirSync(o.jwtDir, { recursive: true });
  const opFile = writeFile(dir, "op.jwt", op.operatorJwt);
  const sys = op.sys.getPublicKey();
  const resolver =
    o.type === "full"
      ? `resolver { type: full, dir: ${JSON.stringify(o.jwtDir)}, allow_delete: ${o.allowDelete ?? true}, interval: ${JSON.stringify(o.interval ?? "1s")} }`
      : `resolver { type: cache, dir: ${JSON.stringify(o.jwtDir)} }`;
  return [
    `operator: ${JSON.stringify(opFile)}`,
    `system_account: ${sys}`,
    resolver,
    `resolver_preload { ${sys}: ${JSON.stringify(op.sysJwt)} }`,
    o.extra ?? "",
  ].join("\n");
}

/** Connect with a creds text (a system-account user unless said otherwise). */
export function connectCreds(url: string, creds: string, o: { reconnect?: boolean; noEcho?: boolean } = {}): Promise<NatsConnection> {
  return connect({
    servers: url,
    authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
    ...(o.reconnect === false ? { reconnect: false } : { reconnectTimeWait: 100, maxReconnectAttempts: -1 }),
    ...(o.noEcho ? { noEcho: true } : {}),
  });
}

export function connectSys(url: string, op: OperatorSetup): Promise<NatsConnection> {
  return connectCreds(url, userCreds(op.sys).creds);
}

/** Poll `probe` until it returns something other than undefined/false, or fail after `ms`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JWT file a resolver holds for `key`, or undefined. */
export function resolverFile(jwtDir: string, key: string, suffix = ".jwt"): string | undefined {
  const p = join(jwtDir, `${key}${suffix}`);
  return existsSync(p) ? readFileSync(p, "utf8") : undefined;
}

/** Our server connected to `natsUrl` as a system-account user. */
export async function startPeer(
  op: OperatorSetup,
  natsUrl: string,
  dir: string,
  o: Omit<TestServerOptions, "operator" | "dir"> & { name?: string; syncInterval?: number } = {},
): Promise<TestServer> {
  const creds = writeFile(dir, `sys-${Math.random().toString(36).slice(2)}.creds`, userCreds(op.sys).creds);
  const t = await startServer({
    ...o,
    operator: op,
    dir,
    nats: {
      servers: [natsUrl],
      reconnectWait: 100,
      userCredentials: creds,
      syncInterval: o.syncInterval ?? 0,
      ...(o.name ? { name: o.name } : {}),
      ...(o.nats ?? {}),
    },
  });
  await until("our server to connect to NATS", () => t.logs.some((l) => /answering account lookups/.test(l)));
  return t;
}

export async function post(t: TestServer, key: string, jwt: string): Promise<number> {
  const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`, { method: "POST", body: jwt });
  await r.arrayBuffer();
  return r.status;
}

export async function get(t: TestServer, key: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${t.base}/jwt/v1/accounts/${key}`);
  return { status: r.status, body: await r.text() };
}

export interface Reply {
  readonly server: { name: string; id: string; seq: number; ver: string; host: string; jetstream: boolean; time: string };
  readonly data?: unknown;
  readonly error?: { code: number; description: string; account?: string };
}

/** Every reply to one request within `ms` (several servers answer the same request). */
export async function collect(nc: NatsConnection, subject: string, body: string | Uint8Array, ms = 500): Promise<Reply[]> {
  const out: Reply[] = [];
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  nc.publish(subject, body, { reply: inbox });
  const t = setTimeout(() => sub.unsubscribe(), ms);
  for await (const m of sub) out.push(m.json<Reply>());
  clearTimeout(t);
  return out;
}

/** The reply our server (configured with `name`) gave. */
export function ours(replies: Reply[], name: string): Reply {
  const r = replies.filter((x) => x.server?.name === name);
  if (r.length !== 1) throw new Error(`expected one reply from ${name}, got ${JSON.stringify(replies)}`);
  return r[0]!;
}

/** Request and wait (up to `ms`) for the reply of the server named `name`; other replies are ignored. */
export async function ask(nc: NatsConnection, subject: string, body: string | Uint8Array, name: string, ms = 5000): Promise<Reply> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  nc.publish(subject, body, { reply: inbox });
  const t = setTimeout(() => sub.unsubscribe(), ms);
  const seen: Reply[] = [];
  try {
    for await (const m of sub) {
      const r = m.json<Reply>();
      seen.push(r);
      if (r.server?.name === name) return r;
    }
  } finally {
    clearTimeout(t);
    sub.unsubscribe();
  }
  throw new Error(`no reply from ${name} on ${subject} within ${ms} ms; got ${JSON.stringify(seen)}`);
}

// ---- nsc, as it really talks over NATS ------------------------------------------------------

/** nsc's temporary system-account user: signed by the system account key, 2 minutes, narrow permissions. */
export function nscTempUser(op: OperatorSetup, pubAllow: string[], subAllow: string): string {
  const user: KeyPair = createUser();
  const now = nowSec();
  const jwt = signJwt(
    {
      jti: newJti(),
      iat: now,
      exp: now + 120,
      iss: op.sys.getPublicKey(),
      name: "nsc temporary push user",
      sub: user.getPublicKey(),
      nats: {
        pub: { allow: pubAllow },
        sub: { allow: [subAllow] },
        subs: -1,
        data: -1,
        payload: -1,
        type: "user",
        version: 2,
      },
    },
    op.sys,
  );
  return new TextDecoder().decode(fmtCreds(jwt, user));
}

export interface NscResult {
  /** Server names that answered with success, in order. */
  readonly ok: string[];
  /** nsc's error lines. */
  readonly errors: string[];
  readonly data: unknown[];
}

/**
 * nsc's multiRequest + processResponse: publish with a fresh inbox, read replies until `timeoutSec`
 * is over, stop at the first reply that is not a success (nsc does not read further).
 */
export async function nscMultiRequest(nc: NatsConnection, subject: string, body: string | undefined, timeoutSec = 1): Promise<NscResult> {
  const ok: string[] = [];
  const errors: string[] = [];
  const data: unknown[] = [];
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  nc.publish(subject, body ?? "", { reply: inbox });
  const it = sub[Symbol.asyncIterator]();
  const end = Date.now() + timeoutSec * 1000;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    const m = await Promise.race([
      it.next().then((r) => (r.done ? undefined : r.value)),
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), left))),
    ]);
    clearTimeout(timer);
    if (!m) {
      if (ok.length === 0) errors.push(`failed to get response: timeout`);
      break;
    }
    const problem = nscProblem(m);
    if (problem) {
      errors.push(problem);
      break;
    }
    const r = m.json<Reply>();
    ok.push(r.server.name);
    data.push(r.data);
  }
  sub.unsubscribe();
  return { ok, errors, data };
}

/** processResponse's rules; undefined when nsc would count the reply as a success. */
export function nscProblem(m: Msg): string | undefined {
  let r: Partial<Reply>;
  try {
    r = m.json<Reply>();
  } catch (err) {
    return `failed to parse response: ${(err as Error).message}`;
  }
  if (!r.server) return "nsc would crash: reply without server";
  if (!r.server.name) return "server responded without server name in info";
  if (r.error) return `server ${r.server.name} responded with error: ${r.error.description}`;
  if (r.data === undefined || r.data === null) return `server ${r.server.name} responded without data`;
  // The Go struct nsc decodes into would refuse these types.
  if (Number.isNaN(Date.parse(r.server.time))) return "bad server time";
  return undefined;
}

/** `nsc push -u nats://…` of one account JWT. */
export async function nscPush(url: string, op: OperatorSetup, jwt: string): Promise<NscResult> {
  const nc = await connectCreds(url, nscTempUser(op, ["$SYS.REQ.CLAIMS.LIST", "$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.CLAIMS.DELETE"], "_INBOX.>"), {
    reconnect: false,
  });
  try {
    return await nscMultiRequest(nc, "$SYS.REQ.CLAIMS.UPDATE", jwt);
  } finally {
    await nc.close();
  }
}

/** The DELETE claim exactly as nsc builds it: sub = iss, no type, `{accounts, version: 2}`. */
export function nscDeleteClaim(signer: KeyPair, accounts: unknown, o: { sub?: string; exp?: number } = {}): string {
  const iss = signer.getPublicKey();
  return signJwt(
    { jti: newJti(), iat: nowSec(), iss, sub: o.sub ?? iss, ...(o.exp ? { exp: o.exp } : {}), nats: { accounts, version: 2 } },
    signer,
  );
}

/** `nsc push --prune`: LIST, union, DELETE what nsc does not hold locally, compare reply counts. */
export async function nscPrune(
  url: string,
  op: OperatorSetup,
  local: ReadonlySet<string>,
  signer: KeyPair,
): Promise<{ list: NscResult; deleted: string[]; del: NscResult | undefined; errors: string[] }> {
  const nc = await connectCreds(url, nscTempUser(op, ["$SYS.REQ.CLAIMS.LIST", "$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.CLAIMS.DELETE"], "_INBOX.>"), {
    reconnect: false,
  });
  try {
    const list = await nscMultiRequest(nc, "$SYS.REQ.CLAIMS.LIST", undefined);
    const errors = [...list.errors];
    const deleted: string[] = [];
    for (const d of list.data) {
      if (!Array.isArray(d)) {
        errors.push("nsc would crash: list data is not an array");
        continue;
      }
      for (const k of d as string[]) if (!local.has(k)) deleted.push(k);
    }
    if (deleted.length === 0) return { list, deleted, del: undefined, errors };
    const del = await nscMultiRequest(nc, "$SYS.REQ.CLAIMS.DELETE", nscDeleteClaim(signer, deleted));
    errors.push(...del.errors);
    if (del.ok.length !== list.ok.length) {
      errors.push(`${del.ok.length} server(s) responded to 'prune', ${list.ok.length} to 'list'`);
    }
    return { list, deleted, del, errors };
  } finally {
    await nc.close();
  }
}

/** `nsc pull -A` over NATS: empty PACK request, 1 s per message, stop at the empty message. */
export async function nscPull(url: string, op: OperatorSetup): Promise<{ jwts: Map<string, string>; errors: string[] }> {
  const inbox = createInbox();
  const nc = await connectCreds(url, nscTempUser(op, ["$SYS.REQ.CLAIMS.PACK"], inbox), { reconnect: false });
  const jwts = new Map<string, string>();
  const errors: string[] = [];
  try {
    const sub = nc.subscribe(inbox);
    nc.publish("$SYS.REQ.CLAIMS.PACK", "", { reply: inbox });
    const it = sub[Symbol.asyncIterator]();
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const m = await Promise.race([
        it.next().then((r) => (r.done ? undefined : r.value)),
        new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 1000))),
      ]);
      clearTimeout(timer);
      if (!m) {
        errors.push("pull timed out");
        break;
      }
      if (m.data.length === 0) break;
      const tk = m.string().split("|");
      if (tk.length !== 2) {
        errors.push("pull response bad");
        break;
      }
      jwts.set(tk[0]!, tk[1]!);
    }
    sub.unsubscribe();
  } finally {
    await nc.close();
  }
  return { jwts, errors };
}
