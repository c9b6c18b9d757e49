/**
 * The read-only console at /ui/: the account list (search, expiry filter, paging), an account
 * page (decoded claims, history, diff of two versions) and the deployment page (NATS, servers).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import type { AccountRegistry } from "../../accounts.js";
import type { UiConfig } from "../../config/types.js";
import { AccountServerError } from "../../errors.js";
import { decodeOperatorJwt } from "../../jwt/index.js";
import type { Notifier } from "../../nats/index.js";
import type { HistoryEntry, HistorySource } from "../../store/index.js";
import { send } from "../respond.js";
import type { Handler, RequestContext, Route } from "../router.js";
import { AccountCatalog, expiryState, type AccountSummary, type ExpiryFilter } from "./catalog.js";
import { consoleHeaders, html, Html, page, STYLESHEET } from "./html.js";

export interface ConsoleOptions {
  readonly registry: AccountRegistry;
  readonly notifier: Notifier;
  readonly history?: HistorySource | undefined;
  readonly operatorJwt: () => string | undefined;
  readonly config: UiConfig;
  /** The live NATS connection, if any (for the servers seen). */
  readonly connection: () => NatsConnection | undefined;
  /** NATS URLs configured; empty without NATS. */
  readonly natsServers: readonly string[];
  readonly now?: () => number;
}

const PAGE_SIZE = 50;
const FILTERS: readonly ExpiryFilter[] = ["all", "expiring", "expired", "valid"];

function utc(sec: number): string {
  if (!sec) return "";
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? String(sec) : d.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}

function short(key: string): string {
  return key.length > 16 ? `${key.slice(0, 12)}…` : key;
}

function isLoopback(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.startsWith("::ffff:") ? addr.slice(7) : addr;
  return a === "::1" || (isIP(a) === 4 && a.startsWith("127."));
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Who may look: with credentials configured (basic or bearer), whoever presents them; without,
 * loopback clients only. Answers the refusal itself and returns false.
 */
export function consoleGuard(cfg: UiConfig): (req: IncomingMessage, res: ServerResponse) => boolean {
  const basic = cfg.user !== undefined && cfg.password !== undefined ? `${cfg.user}:${cfg.password}` : undefined;
  const token = cfg.token;
  const text = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" };
  return function allowed(req, res) {
    if (basic === undefined && token === undefined) {
      if (isLoopback(req.socket.remoteAddress)) return true;
      send(res, 403, text, "the console answers loopback clients only unless ui.user/ui.password or ui.token is set\n");
      return false;
    }
    const auth = req.headers.authorization ?? "";
    const space = auth.indexOf(" ");
    const scheme = auth.slice(0, space < 0 ? auth.length : space).toLowerCase();
    const value = space < 0 ? "" : auth.slice(space + 1).trim();
    if (scheme === "basic" && basic !== undefined && sameSecret(Buffer.from(value, "base64").toString("utf8"), basic)) return true;
    if (scheme === "bearer" && token !== undefined && sameSecret(value, token)) return true;
    send(res, 401, { ...text, "WWW-Authenticate": basic !== undefined ? 'Basic realm="nats-account-server console"' : "Bearer" }, "authentication required\n");
    return false;
  };
}

/** The payload of a stored (already verified) JWT. */
function claimsOf(jwt: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8"));
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** `a.b[0].c` → JSON text of every leaf: what the diff of two versions compares. */
export function flatten(v: unknown, path = "", out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === "object" && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)) {
    if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${path}[${i}]`, out));
    else for (const [k, x] of Object.entries(v)) flatten(x, path === "" ? k : `${path}.${k}`, out);
  } else {
    out.set(path, JSON.stringify(v));
  }
  return out;
}

export interface DiffRow {
  readonly path: string;
  readonly before: string | undefined;
  readonly after: string | undefined;
}

export function diffClaims(a: Record<string, unknown>, b: Record<string, unknown>): DiffRow[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const rows: DiffRow[] = [];
  for (const path of [...new Set([...fa.keys(), ...fb.keys()])].sort()) {
    const before = fa.get(path);
    const after = fb.get(path);
    if (before !== after) rows.push({ path, before, after });
  }
  return rows;
}

interface ServerSeen {
  readonly name: string;
  readonly id: string;
  readonly version: string;
  readonly host: string;
  readonly cluster: string;
  readonly connections: number | undefined;
  readonly start: string;
}

export function consoleRoutes(o: ConsoleOptions): Route[] {
  const now = o.now ?? Date.now;
  const catalog = new AccountCatalog(o.registry, now);
  const guard = consoleGuard(o.config);
  const warnSeconds = o.config.expiryWarningDays * 86400;
  let operatorCache: { jwt: string; key: string } | undefined;

  const operatorKey = (): string | undefined => {
    const jwt = o.operatorJwt();
    if (jwt === undefined) return undefined;
    if (operatorCache?.jwt !== jwt) {
      let key = "";
      try {
        key = decodeOperatorJwt(jwt).sub;
      } catch {
        // an unreadable operator JWT leaves every issuer unlabelled
      }
      operatorCache = { jwt, key };
    }
    return operatorCache.key;
  };

  const issuerLabel = (iss: string): Html => {
    if (iss !== "" && iss === operatorKey()) return html`<span title="${iss}">operator</span>`;
    if (o.registry.isTrustedIssuer(iss)) return html`<span title="${iss}">signing key <span class="key">${short(iss)}</span></span>`;
    return html`<span class="badge expired" title="${iss}">untrusted ${short(iss)}</span>`;
  };

  const expiry = (exp: number): Html => {
    const st = expiryState(exp, Math.floor(now() / 1000), warnSeconds);
    if (st === "none") return html`<span class="muted">never</span>`;
    if (st === "expired") return html`${utc(exp)} <span class="badge expired">expired</span>`;
    if (st === "expiring") {
      const days = Math.max(0, Math.ceil((exp - now() / 1000) / 86400));
      return html`${utc(exp)} <span class="badge expiring">expires in ${days} day${days === 1 ? "" : "s"}</span>`;
    }
    return html`${utc(exp)}`;
  };

  const lastChange = async (key: string): Promise<Date | undefined> => {
    const seen = catalog.lastChange(key);
    if (seen || !o.history) return seen;
    const versions = await o.history.history(key).catch(() => [] as HistoryEntry[]);
    return versions.at(-1)?.stored;
  };

  const answer = (res: ServerResponse, status: number, body: string): void => {
    send(res, status, consoleHeaders("text/html; charset=utf-8"), body);
  };

  const guarded = (h: (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => Promise<void> | void): Handler =>
    function consolePage(req, res, ctx) {
      if (!guard(req, res)) return undefined;
      return h(req, res, ctx);
    };

  async function accountsPage(_req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    await catalog.built;
    const q = (ctx.query("q") ?? "").slice(0, 200);
    const f = ctx.query("filter") ?? "all";
    const filter: ExpiryFilter = (FILTERS as readonly string[]).includes(f) ? (f as ExpiryFilter) : "all";
    const pageNo = Math.max(1, Math.min(1e6, Math.floor(Number(ctx.query("page") ?? "1")) || 1));
    const { total, rows } = catalog.query({
      q,
      filter,
      offset: (pageNo - 1) * PAGE_SIZE,
      limit: PAGE_SIZE,
      now: Math.floor(now() / 1000),
      warnSeconds,
    });
    const changes = await Promise.all(rows.map((r) => lastChange(r.key)));
    const link = (p: number): string => `/ui/?${new URLSearchParams({ q, filter, page: String(p) }).toString()}`;
    const first = total === 0 ? 0 : (pageNo - 1) * PAGE_SIZE + 1;
    const last = Math.min(total, pageNo * PAGE_SIZE);
    const row = (s: AccountSummary, i: number): Html => html`<tr>
<td><a href="/ui/accounts/${encodeURIComponent(s.key)}">${s.name === "" ? html`<span class="muted">(no name)</span>` : s.name}</a>${
      s.tags.length > 0 ? html`<br><span class="muted">${s.tags.join(", ")}</span>` : ""
    }</td>
<td class="key">${s.key}</td><td>${issuerLabel(s.issuer)}</td><td>${utc(s.iat)}</td><td>${expiry(s.exp)}</td>
<td>${s.size}</td><td>${changes[i] ? changes[i]!.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z") : ""}</td></tr>`;
    const body = html`<h1>Accounts</h1>
<form class="search" method="get" action="/ui/">
<input type="search" name="q" value="${q}" placeholder="name, key or tag" aria-label="search">
<select name="filter" aria-label="expiry">${FILTERS.map((x) => html`<option value="${x}"${x === filter ? new Html(" selected") : ""}>${x}</option>`)}</select>
<button type="submit">Search</button></form>
<p id="count">${total === 0 ? "no accounts match" : `showing ${first}–${last} of ${total} matching`} (${catalog.size} stored; expiring means within ${o.config.expiryWarningDays} days)</p>
<table id="accounts"><thead><tr><th>Name</th><th>Key</th><th>Issuer</th><th>Issued (iat)</th><th>Expires (exp)</th><th>Size</th><th>Last change</th></tr></thead>
<tbody>${rows.map(row)}</tbody></table>
<div class="pager">${pageNo > 1 ? html`<a href="${link(pageNo - 1)}" rel="prev">← previous</a>` : ""}${
      last < total ? html`<a href="${link(pageNo + 1)}" rel="next">next →</a>` : ""
    }</div>`;
    answer(res, 200, page("Accounts", "accounts", body));
  }

  function claimTable(title: string, items: readonly unknown[], columns: readonly string[]): Html {
    if (items.length === 0) return html`<h2>${title}</h2><p class="muted">none</p>`;
    const cell = (v: unknown): string => (v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
    return html`<h2>${title}</h2><table class="claims"><thead><tr>${columns.map((c) => html`<th>${c}</th>`)}</tr></thead><tbody>${items.map(
      (it) => html`<tr>${columns.map((c) => html`<td>${cell((it as Record<string, unknown>)?.[c])}</td>`)}</tr>`,
    )}</tbody></table>`;
  }

  async function accountPage(_req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const key = ctx.params["key"]!;
    const entry = o.registry.store.get(key);
    const jwt = entry && (await o.registry.body(entry));
    const versions = o.history ? await o.history.history(key).catch(() => [] as HistoryEntry[]) : [];
    if (!entry && versions.length === 0) throw new AccountServerError("NOT_FOUND", { reason: key });
    const claims = jwt !== undefined ? claimsOf(jwt) : {};
    const nats = (claims["nats"] ?? {}) as Record<string, unknown>;
    const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
    const limits = Object.entries((nats["limits"] ?? {}) as Record<string, unknown>).map(([name, value]) => ({ name, value }));
    const signingKeys = arr(nats["signing_keys"]).map((k) =>
      typeof k === "string" ? { key: k, kind: "plain" } : { ...(k as Record<string, unknown>), kind: (k as Record<string, unknown>)?.["kind"] ?? "scoped" },
    );
    const revocations = Object.entries((nats["revocations"] ?? {}) as Record<string, unknown>).map(([k, at]) => ({
      key: k,
      "revoked before": typeof at === "number" ? utc(at) : at,
    }));
    const s = entry ? catalog.get(key) : undefined;
    const name = typeof claims["name"] === "string" ? claims["name"] : "";

    const a = Number(ctx.query("a"));
    const b = Number(ctx.query("b"));
    const va = versions.find((v) => v.revision === a);
    const vb = versions.find((v) => v.revision === b);
    let diff: Html = html``;
    if (va?.jwt !== undefined && vb?.jwt !== undefined) {
      const rows = diffClaims(claimsOf(va.jwt), claimsOf(vb.jwt));
      diff = html`<h2 id="diff">Changes from revision ${a} to ${b}</h2>${
        rows.length === 0
          ? html`<p>identical claims</p>`
          : html`<table id="diff-table"><thead><tr><th>Claim</th><th>Revision ${a}</th><th>Revision ${b}</th></tr></thead><tbody>${rows.map(
              (r) =>
                html`<tr class="${r.before === undefined ? "added" : r.after === undefined ? "removed" : "changed"}"><td><code>${r.path}</code></td><td><code>${r.before ?? ""}</code></td><td><code>${r.after ?? ""}</code></td></tr>`,
            )}</tbody></table>`
      }`;
    }
    const history =
      versions.length === 0
        ? html`<p class="muted">no history kept</p>`
        : html`<form method="get" action="/ui/accounts/${encodeURIComponent(key)}"><table id="history"><thead><tr><th>From</th><th>To</th><th>Revision</th><th>Stored</th><th>iat</th><th>jti</th><th>Issuer</th><th>Size</th></tr></thead><tbody>${[
            ...versions,
          ]
            .reverse()
            .map((v, i, all) => {
              const c = v.jwt !== undefined ? claimsOf(v.jwt) : {};
              const checkA = va ? v.revision === a : i === 1 || (all.length === 1 && i === 0);
              const checkB = vb ? v.revision === b : i === 0;
              return html`<tr><td><input type="radio" name="a" value="${v.revision}"${checkA ? new Html(" checked") : ""} aria-label="from ${v.revision}"></td><td><input type="radio" name="b" value="${v.revision}"${checkB ? new Html(" checked") : ""} aria-label="to ${v.revision}"></td><td>${v.revision}</td><td>${v.stored.toISOString()}</td><td>${
                v.jwt === undefined ? html`<span class="badge expired">deleted</span>` : utc(typeof c["iat"] === "number" ? c["iat"] : 0)
              }</td><td class="key">${typeof c["jti"] === "string" ? c["jti"] : ""}</td><td>${typeof c["iss"] === "string" ? issuerLabel(c["iss"]) : ""}</td><td>${v.jwt === undefined ? "" : Buffer.byteLength(v.jwt)}</td></tr>`;
            })}</tbody></table><p><button type="submit">Compare</button></p></form>`;
    const body = html`<h1>Account ${name === "" ? short(key) : name}</h1>
${entry ? "" : html`<p class="badge expired">not stored (deleted or expired); history below</p>`}
<dl id="summary"><dt>Key</dt><dd class="key">${key}</dd><dt>Name</dt><dd>${name}</dd>
<dt>Issuer</dt><dd>${s ? issuerLabel(s.issuer) : ""}</dd><dt>Issued (iat)</dt><dd>${s ? utc(s.iat) : ""}</dd>
<dt>Expires (exp)</dt><dd>${s ? expiry(s.exp) : ""}</dd><dt>Size</dt><dd>${s ? `${s.size} bytes` : ""}</dd>
<dt>Tags</dt><dd>${s ? s.tags.join(", ") : ""}</dd><dt>Description</dt><dd>${typeof nats["description"] === "string" ? nats["description"] : ""}</dd>
<dt>Info URL</dt><dd>${typeof nats["info_url"] === "string" ? nats["info_url"] : ""}</dd></dl>
${claimTable("Limits", limits, ["name", "value"])}
${claimTable("Imports", arr(nats["imports"]), ["name", "subject", "account", "type", "local_subject", "to", "token"])}
${claimTable("Exports", arr(nats["exports"]), ["name", "subject", "type", "token_req", "response_type", "description"])}
${claimTable("Signing keys", signingKeys, ["key", "kind", "role", "template"])}
${claimTable("Revocations", revocations, ["key", "revoked before"])}
<h2>History</h2>${history}${diff}
<h2>Claims</h2><pre id="claims">${JSON.stringify(claims, null, 2)}</pre>`;
    answer(res, 200, page(name === "" ? key : name, "accounts", body));
  }

  let seen: { at: number; servers: ServerSeen[] } | undefined;
  /** Every nats-server of the deployment answers `$SYS.REQ.SERVER.PING` with its stats. */
  async function serversSeen(nc: NatsConnection): Promise<ServerSeen[]> {
    if (seen && now() - seen.at < 5000) return seen.servers;
    const inbox = createInbox();
    const servers: ServerSeen[] = [];
    const sub = nc.subscribe(inbox);
    const timer = setTimeout(() => sub.unsubscribe(), 500);
    nc.publish("$SYS.REQ.SERVER.PING", "", { reply: inbox });
    for await (const m of sub) {
      try {
        const r = m.json<{ server?: Record<string, unknown>; statsz?: Record<string, unknown> }>();
        const sv = r.server ?? {};
        const str = (v: unknown): string => (typeof v === "string" ? v : "");
        servers.push({
          name: str(sv["name"]),
          id: str(sv["id"]),
          version: str(sv["ver"]),
          host: str(sv["host"]),
          cluster: str(sv["cluster"]),
          connections: typeof r.statsz?.["connections"] === "number" ? (r.statsz["connections"] as number) : undefined,
          start: str(r.statsz?.["start"]),
        });
      } catch {
        // not a stats answer
      }
    }
    clearTimeout(timer);
    servers.sort((x, y) => (x.name < y.name ? -1 : 1));
    seen = { at: now(), servers };
    return servers;
  }

  async function deploymentPage(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const nc = o.connection();
    const servers = nc ? await serversSeen(nc) : [];
    const info = nc?.info;
    const recent = o.notifier.recent;
    const body = html`<h1>Deployment</h1>
<h2>NATS connection</h2>
<dl id="nats"><dt>Configured</dt><dd>${o.natsServers.length > 0 ? o.natsServers.join(", ") : "no (nats-servers are not notified)"}</dd>
<dt>State</dt><dd>${
      o.natsServers.length === 0 ? "—" : o.notifier.connected ? html`<span class="badge ok">connected</span>` : html`<span class="badge expired">disconnected</span>`
    }</dd>
<dt>Connected to</dt><dd>${nc ? `${nc.getServer()}${info ? ` (${info.server_name ?? ""} ${info.version ?? ""})` : ""}` : ""}</dd>
<dt>Unconfirmed notifications</dt><dd>${o.notifier.unconfirmed}</dd><dt>Waiting for a connection</dt><dd>${o.notifier.backlog}</dd>
<dt>Sent / confirmed since start</dt><dd>${o.notifier.sentTotal} / ${o.notifier.confirmedTotal}</dd></dl>
<h2>nats-servers seen</h2>${
      servers.length === 0
        ? html`<p class="muted">${nc ? "no answer to $SYS.REQ.SERVER.PING" : "not connected"}</p>`
        : html`<table id="servers"><thead><tr><th>Name</th><th>Id</th><th>Version</th><th>Host</th><th>Cluster</th><th>Connections</th><th>Started</th></tr></thead><tbody>${servers.map(
            (s) =>
              html`<tr><td>${s.name}</td><td class="key">${short(s.id)}</td><td>${s.version}</td><td>${s.host}</td><td>${s.cluster}</td><td>${s.connections ?? ""}</td><td>${s.start}</td></tr>`,
          )}</tbody></table>`
    }
<h2>Last notifications</h2>${
      recent.length === 0
        ? html`<p class="muted">none sent since start</p>`
        : html`<table id="notifications"><thead><tr><th>Sent</th><th>Account</th><th>jti</th><th>Confirmed</th></tr></thead><tbody>${recent.map(
            (r) =>
              html`<tr><td>${r.sentAt.toISOString()}</td><td><a href="/ui/accounts/${encodeURIComponent(r.key)}">${catalog.get(r.key)?.name || short(r.key)}</a></td><td class="key">${short(r.jti)}</td><td>${
                r.confirmedAt ? html`<span class="badge ok">confirmed</span> ${r.confirmedAt.toISOString()}` : html`<span class="badge expiring">not yet</span>`
              }</td></tr>`,
          )}</tbody></table>`
    }`;
    answer(res, 200, page("Deployment", "deployment", body));
  }

  const css: Handler = (req, res) => {
    if (!guard(req, res)) return;
    send(res, 200, { ...consoleHeaders("text/css; charset=utf-8"), "Cache-Control": "max-age=300" }, STYLESHEET);
  };

  return [
    { path: "/ui/", methods: { GET: guarded(accountsPage) } },
    { path: "/ui/style.css", methods: { GET: css } },
    { path: "/ui/accounts/:key", methods: { GET: guarded(accountPage) } },
    { path: "/ui/deployment", methods: { GET: guarded(deploymentPage) } },
  ];
}
