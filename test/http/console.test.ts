/**
 * The console at /ui/ in a real headless Chromium (Debian `chromium`, driven by playwright-core):
 * every page renders, search finds one account among 10,000, the history diff shows a changed
 * limit, hostile names and tags stay text and run no script; plus access rules and headers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { defaultConfig } from "../../src/config/types.js";
import { CONSOLE_CSP } from "../../src/http/console/html.js";
import { consoleGuard } from "../../src/http/console/pages.js";
import { accountJwt, createAccount, makeOperator, nowSec, pub } from "../helpers/fixtures.js";
import { ROOT, startNatsServer, tempDir, writeFile, type NatsServer } from "../helpers/processes.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { startPeer, until } from "../nats/kit.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = process.env["CONSOLE_SCREENSHOTS"] ?? join(ROOT, ".tmp", "console-screenshots");
const ACCOUNTS = 10_000;

/** Markup, quotes and script URLs, as names and tags. */
const HOSTILE = [
  "<script>window.__pwned=1;alert(1)</script>",
  '"><img src=x onerror="window.__pwned=2;alert(2)">',
  "javascript:alert(3)",
  "' onmouseover='window.__pwned=4' x='",
  "</td></tr></table><h1 id=injected>injected</h1>",
  "&lt;already-escaped&gt; & ampersand",
];

/** A fresh profile each run (playwright-core owns --user-data-dir through launchPersistentContext). */
async function launch(): Promise<BrowserContext> {
  assert.ok(existsSync(CHROMIUM), "chromium must be installed (Debian package chromium)");
  return chromium.launchPersistentContext(tempDir("nas-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

describe("console - in headless Chromium against a server holding 10,000 accounts", () => {
  const op = makeOperator();
  const dir = tempDir("nas-console-");
  const storeDir = join(dir, "store");
  const needle = createAccount();
  const limited = createAccount();
  const expiring = createAccount();
  const hostile = HOSTILE.map(() => createAccount());
  let ns: NatsServer;
  let t: TestServer;
  let browser: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  const errors: string[] = [];

  before(async () => {
    mkdirSync(storeDir, { recursive: true });
    mkdirSync(SHOTS, { recursive: true });
    const write = (key: string, jwt: string): void => writeFileSync(join(storeDir, `${key}.jwt`), jwt);
    const iat = nowSec() - 3600;
    for (let i = 0; i < ACCOUNTS - 3 - HOSTILE.length; i++) {
      const a = createAccount();
      write(pub(a), accountJwt(a, op.signer, { name: `bulk-${String(i).padStart(5, "0")}`, iat }));
    }
    write(pub(needle), accountJwt(needle, op.signer, { name: "needle-account-7777", iat }));
    write(pub(expiring), accountJwt(expiring, op.signer, { name: "soon-gone", iat, exp: nowSec() + 5 * 86400 }));
    hostile.forEach((a, i) =>
      write(pub(a), accountJwt(a, op.signer, { name: HOSTILE[i]!, iat, nats: { tags: [HOSTILE[(i + 1) % HOSTILE.length]!] } })),
    );
    // A MEMORY resolver: it applies our notifications but, unlike a full one, pulls no packs.
    ns = await startNatsServer(
      `operator: "${writeFile(dir, "op-ns.jwt", op.operatorJwt)}"\nsystem_account: ${pub(op.sys)}\n` +
        `resolver: MEMORY\nresolver_preload: { ${pub(op.sys)}: "${op.sysJwt}" }\n`,
    );
    t = await startPeer(op, ns.url, dir, { store: { dir: storeDir }, ui: { enabled: true } });
    // Two versions of one account: the second lowers its connection limit.
    for (const [conn, at] of [[-1, iat], [5, iat + 1]] as const) {
      const r = await fetch(`${t.base}/jwt/v1/accounts/${pub(limited)}`, {
        method: "POST",
        body: accountJwt(limited, op.signer, { name: "limited", iat: at, limits: { conn } }),
      });
      assert.equal(r.status, 200, await r.text());
    }
    await until("the notifications to be confirmed", () => t.server.notifier.unconfirmed === 0);
    browser = await launch();
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on("pageerror", (e) => errors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await t?.stop();
    await ns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the account list renders one page of 50, not all 10,000, with strict headers", async (tc) => {
    tc.diagnostic(`screenshots in ${SHOTS}`);
    const r = await page.goto(`${t.base}/ui/`);
    assert.equal(r?.status(), 200);
    assert.equal(r?.headers()["content-security-policy"], CONSOLE_CSP);
    assert.equal(await page.locator("#accounts tbody tr").count(), 50);
    assert.match((await page.locator("#count").textContent()) ?? "", new RegExp(`showing 1–50 of ${ACCOUNTS} matching`));
    const size = (await r!.body()).length;
    assert.ok(size < 100_000, `list page is ${size} bytes`);
    await page.screenshot({ path: join(SHOTS, "accounts.png"), fullPage: true });
    await page.getByRole("link", { name: "next →" }).click();
    assert.match((await page.locator("#count").textContent()) ?? "", /showing 51–100 of/);
  });

  it("search finds one account among 10,000", async () => {
    await page.goto(`${t.base}/ui/`);
    await page.getByLabel("search").fill("NEEDLE-account-7777");
    await Promise.all([page.waitForURL(/q=NEEDLE/), page.getByRole("button", { name: "Search" }).click()]);
    const rows = page.locator("#accounts tbody tr");
    assert.equal(await rows.count(), 1);
    assert.match((await rows.first().textContent()) ?? "", /needle-account-7777/);
    assert.match((await rows.first().textContent()) ?? "", new RegExp(pub(needle)));
    assert.match((await rows.first().textContent()) ?? "", /signing key/);
    await page.screenshot({ path: join(SHOTS, "search.png"), fullPage: true });
    // By key too, and the expiry filter shows the one expiring within the warning band.
    await page.goto(`${t.base}/ui/?q=${pub(needle).slice(10, 30)}`);
    assert.equal(await page.locator("#accounts tbody tr").count(), 1);
    await page.goto(`${t.base}/ui/?filter=expiring`);
    assert.equal(await page.locator("#accounts tbody tr").count(), 1);
    assert.match((await page.locator("#accounts tbody tr").textContent()) ?? "", /soon-gone.*expires in 5 days/s);
  });

  it("the account page decodes the claims and the history diff shows the changed limit", async () => {
    await page.goto(`${t.base}/ui/?q=limited`);
    await page.getByRole("link", { name: "limited" }).click();
    await page.waitForURL(new RegExp(`/ui/accounts/${pub(limited)}$`));
    assert.equal(await page.locator("#history tbody tr").count(), 2);
    assert.match((await page.locator("table.claims").first().textContent()) ?? "", /conn\s*5/);
    await page.screenshot({ path: join(SHOTS, "account.png"), fullPage: true });
    await page.getByLabel("from 1").check();
    await page.getByLabel("to 2").check();
    await Promise.all([page.waitForURL((u) => u.searchParams.get("a") === "1" && u.searchParams.get("b") === "2"), page.getByRole("button", { name: "Compare" }).click()]);
    const conn = page.locator("#diff-table tr", { hasText: "nats.limits.conn" });
    assert.equal(await conn.count(), 1);
    assert.deepEqual(await conn.locator("td").allTextContents(), ["nats.limits.conn", "-1", "5"]);
    await page.screenshot({ path: join(SHOTS, "diff.png"), fullPage: true });
  });

  it("the deployment page shows the NATS connection, the nats-server seen and confirmed notifications", async () => {
    await page.goto(`${t.base}/ui/deployment`);
    assert.match((await page.locator("#nats").textContent()) ?? "", /connected/);
    assert.equal(await page.locator("#servers tbody tr").count(), 1);
    assert.match((await page.locator("#servers").textContent()) ?? "", /2\.\d+\.\d+/);
    const notes = page.locator("#notifications tbody tr", { hasText: "limited" });
    assert.ok((await notes.count()) >= 1);
    assert.match((await notes.first().textContent()) ?? "", /confirmed/);
    await page.screenshot({ path: join(SHOTS, "deployment.png"), fullPage: true });
  });

  it("hostile names and tags are shown as text and run no script", async () => {
    await page.goto(`${t.base}/ui/?filter=all&q=`);
    for (let i = 0; i < HOSTILE.length; i++) {
      await page.goto(`${t.base}/ui/?q=${encodeURIComponent(pub(hostile[i]!))}`);
      const cell = page.locator("#accounts tbody tr td").first();
      const text = (await cell.textContent()) ?? "";
      assert.ok(text.includes(HOSTILE[i]!), `name shown verbatim: ${text}`);
      assert.ok(text.includes(HOSTILE[(i + 1) % HOSTILE.length]!), `tag shown verbatim: ${text}`);
      await page.locator("#accounts tbody a").first().click();
      await page.waitForURL(/\/ui\/accounts\//);
      assert.ok(((await page.locator("h1").textContent()) ?? "").includes(HOSTILE[i]!));
      assert.ok(((await page.locator("#claims").textContent()) ?? "").includes(JSON.stringify(HOSTILE[i]!).slice(1, -1)));
    }
    await page.goto(`${t.base}/ui/?q=${encodeURIComponent("<")}`);
    await page.screenshot({ path: join(SHOTS, "hostile.png"), fullPage: true });
    assert.equal(await page.locator("script").count(), 0);
    assert.equal(await page.locator("img").count(), 0);
    assert.equal(await page.locator("#injected").count(), 0);
    assert.equal(await page.locator("[onmouseover], [onerror]").count(), 0);
    await page.locator("#accounts tbody tr").first().hover();
    assert.equal(await page.evaluate("window.__pwned"), undefined);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
  });

  it("the browser enforces the CSP: an inline script on a console page does not run", async () => {
    await page.goto(`${t.base}/ui/`);
    const violations: string[] = [];
    await page.exposeFunction("reportViolation", (d: string) => violations.push(d));
    // Runs in the page (Playwright's own evaluation is exempt from CSP; the inserted element is not).
    await page.evaluate(`
      document.addEventListener("securitypolicyviolation", (e) => window.reportViolation(e.violatedDirective));
      const s = document.createElement("script");
      s.textContent = "window.__ran = true";
      document.body.appendChild(s);
    `);
    await until("the violation report", () => violations.length > 0, 5000);
    assert.equal(await page.evaluate("window.__ran"), undefined);
    assert.match(violations[0]!, /script-src/);
  });
});

describe("console - access and configuration", () => {
  it("is off unless configured", async () => {
    const t = await startServer({ operator: makeOperator() });
    try {
      assert.equal((await fetch(`${t.base}/ui/`)).status, 404);
    } finally {
      await t.stop();
    }
  });

  it("with a token or basic credentials: 401 without them, 200 with either", async () => {
    const t = await startServer({ operator: makeOperator(), ui: { enabled: true, token: "s3cret", user: "ops", password: "pw" } });
    try {
      const r = await fetch(`${t.base}/ui/`);
      assert.equal(r.status, 401);
      assert.match(r.headers.get("www-authenticate") ?? "", /^Basic realm=/);
      assert.equal((await fetch(`${t.base}/ui/`, { headers: { Authorization: "Bearer wrong" } })).status, 401);
      assert.equal((await fetch(`${t.base}/ui/style.css`)).status, 401);
      assert.equal((await fetch(`${t.base}/ui/`, { headers: { Authorization: "Bearer s3cret" } })).status, 200);
      const basic = `Basic ${Buffer.from("ops:pw").toString("base64")}`;
      const ok = await fetch(`${t.base}/ui/deployment`, { headers: { Authorization: basic } });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /not notified/);
      assert.equal((await fetch(`${t.base}/ui/`, { headers: { Authorization: `Basic ${Buffer.from("ops:no").toString("base64")}` } })).status, 401);
    } finally {
      await t.stop();
    }
  });

  it("on a listener of its own (ui.port), not on the main one", async () => {
    const t = await startServer({ operator: makeOperator(), ui: { enabled: true, host: "127.0.0.1", port: 0 } });
    try {
      const port = t.server.surfaces.portOf("console");
      assert.ok(port !== undefined);
      assert.equal((await fetch(`${t.base}/ui/`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/ui/`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${port}/jwt/v1/accounts/`)).status, 404);
    } finally {
      await t.stop();
    }
  });

  it("without credentials only loopback clients are answered", () => {
    const guard = consoleGuard({ ...defaultConfig().ui, enabled: true });
    const answered: number[] = [];
    const res = {
      writeHead: (status: number) => answered.push(status),
      end: () => {},
    } as unknown as ServerResponse;
    const req = (addr: string): IncomingMessage => ({ socket: { remoteAddress: addr }, headers: {} }) as unknown as IncomingMessage;
    assert.equal(guard(req("127.0.0.1"), res), true);
    assert.equal(guard(req("::1"), res), true);
    assert.equal(guard(req("::ffff:127.0.0.5"), res), true);
    assert.equal(guard(req("10.1.2.3"), res), false);
    assert.equal(guard(req("::ffff:192.168.1.9"), res), false);
    assert.equal(guard(req("fe80::1"), res), false);
    assert.deepEqual(answered, [403, 403, 403]);
  });

  it("an unknown account answers 404", async () => {
    const t = await startServer({ operator: makeOperator(), ui: { enabled: true } });
    try {
      assert.equal((await fetch(`${t.base}/ui/accounts/${pub(createAccount())}`)).status, 404);
    } finally {
      await t.stop();
    }
  });
});
