import { readFileSync } from "node:fs";
import { request, Agent } from "node:http";
const lines = readFileSync("/tmp/nas-bench-4Cdm7R/uploads.txt", "utf8").split("\n").filter(Boolean).slice(0, 300);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const post = (path: string, body: string) => new Promise<number>((res, rej) => {
  const r = request({ host: "127.0.0.1", port: 39777, method: "POST", path, agent, headers: { "content-type": "application/jwt", "content-length": Buffer.byteLength(body) } }, (resp) => { resp.resume(); resp.on("end", () => res(resp.statusCode!)); });
  r.on("error", rej); r.end(body);
});
const t: number[] = [];
for (const l of lines) { const [p, b] = l.split("\t"); const t0 = performance.now(); const st = await post(p!, b!); t.push(performance.now() - t0); if (st !== 200) throw new Error(String(st)); }
const s = t.slice(50).sort((a, b) => a - b);
console.log("sequential POST p50", s[Math.floor(s.length / 2)]!.toFixed(2), "p90", s[Math.floor(s.length * 0.9)]!.toFixed(2), "p99", s[Math.floor(s.length * 0.99)]!.toFixed(2));
