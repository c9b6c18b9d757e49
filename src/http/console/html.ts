/**
 * HTML for the console: a tagged template that escapes every interpolated value unless it is
 * already markup, the page layout, the stylesheet and the strict security headers.
 */
import type { OutgoingHttpHeaders } from "node:http";

/** Markup that is safe to insert as is (built by `html`, never from operator-supplied text). */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text for element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join("");
  if (v === null || v === undefined || v === false) return "";
  return escapeHtml(String(v));
}

/** `html\`<td>${name}</td>\``: strings are escaped, nested `html` and arrays of it are not. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** No scripts, no inline styles, nothing from elsewhere; forms only back to the console. */
export const CONSOLE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function consoleHeaders(contentType: string): OutgoingHttpHeaders {
  return {
    "Content-Type": contentType,
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  };
}

export function page(title: string, current: "accounts" | "deployment" | "", body: Html): string {
  const nav = (href: string, name: string, id: string): Html =>
    html`<a href="${href}"${current === id ? new Html(' aria-current="page"') : ""}>${name}</a>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · nats-account-server</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><header><strong>nats-account-server</strong> <nav>${nav("/ui/", "Accounts", "accounts")} ${nav("/ui/deployment", "Deployment", "deployment")}</nav></header>
<main>${body}</main></body></html>
`.text;
}

export const STYLESHEET = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #27303f; color: #fff; padding: 10px 18px; display: flex; gap: 24px; align-items: baseline; }
header a { color: #cfd8e6; margin-right: 14px; text-decoration: none; }
header a[aria-current] { color: #fff; border-bottom: 2px solid #6cb0ff; }
main { padding: 16px 18px; }
h1 { font-size: 20px; margin: 4px 0 12px; } h2 { font-size: 16px; margin: 22px 0 8px; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
code, .key, pre { font-family: ui-monospace, monospace; font-size: 12px; }
pre { background: #fff; border: 1px solid #e3e6ea; padding: 8px; overflow: auto; }
form.search { display: flex; gap: 8px; margin-bottom: 10px; align-items: center; }
input[type=search] { width: 28em; padding: 4px; }
.badge { padding: 1px 6px; border-radius: 8px; font-size: 12px; }
.expired { background: #f7d4d4; color: #8a1c1c; } .expiring { background: #fbe8c0; color: #7a5200; }
.ok { background: #d8f0dc; color: #1f6b2d; } .muted { color: #6b7380; }
.added { background: #e3f6e6; } .removed { background: #fbe3e3; } .changed { background: #fff3d6; }
.pager { margin: 10px 0; display: flex; gap: 14px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; } dt { font-weight: 600; }
`;
