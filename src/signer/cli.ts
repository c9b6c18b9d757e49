/**
 * `nats-account-server signer …`: run the signing service, or work its approval queue
 * (list, approve, reject). Wiring only; the behaviour lives in service.ts, policy.ts and queue.ts.
 */
import { connect, createInbox } from "@nats-io/transport-node";
import { ConfParseError } from "../config/parser.js";
import { FlagError, flagUsage, parseGoFlags, type FlagSpec } from "../config/flags.js";
import { ConfigError } from "../config/schema.js";
import { errorText } from "../errors.js";
import { decodeAccountJwt } from "../jwt/index.js";
import { createLogger, type Logger } from "../log.js";
import { natsClientOptions } from "../nats/connection.js";
import { UPDATE_SUBJECT } from "../nats/index.js";
import { loadSignerConfig, type SignerConfig } from "./config.js";
import { applyPolicy } from "./policy.js";
import { SignerState } from "./queue.js";
import { audit, loadOperator, loadSigningKey, SignerStartupError, SigningService } from "./service.js";

export interface SignerIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

interface Args {
  command: "run" | "list" | "approve" | "reject";
  id?: string;
  conf?: string;
  reason?: string;
  help?: boolean;
}

const SIGNER_FLAGS: readonly FlagSpec<Args>[] = [
  { name: "c", arg: "file", help: "the signer's configuration file (required)", set: (f, v) => (f.conf = String(v)) },
  { name: "reason", arg: "text", help: "why a request is rejected (reject only)", set: (f, v) => (f.reason = String(v)) },
  { name: "h", help: "show this help", set: (f, v) => (f.help = v === true) },
  { name: "help", help: "show this help", set: (f, v) => (f.help = v === true) },
];

export const SIGNER_USAGE = `Usage: nats-account-server signer [run] -c <signer.conf>
       nats-account-server signer list -c <signer.conf>
       nats-account-server signer approve <id> -c <signer.conf>
       nats-account-server signer reject <id> -c <signer.conf> [-reason <text>]

Runs the signing service the account servers' signrequestsubject sends self-signed account
JWTs to, and works its approval queue. It signs with an operator signing key, within the
policy of its configuration file: caps on limits (clamped or refused), exports, imports and
signing keys allowed or not, new accounts signed at once or queued for approval.

Commands:
  run                   answer sign requests until SIGINT/SIGTERM (the default)
  list                  show the requests waiting for approval, with the caps that would apply
  approve <id>          sign a queued request under the current policy and hand the JWT to
                        the account servers ($SYS.REQ.CLAIMS.UPDATE); the account is then known
                        and its later self-signed updates are signed at once
  reject <id>           refuse a queued request; asking again with the same JWT is refused

Options:
${flagUsage(SIGNER_FLAGS).join("\n")}

The seed file must be readable by its owner only (chmod 600). See README "Signing service".
`;

function describe(err: unknown): string {
  if (err instanceof ConfigError || err instanceof ConfParseError || err instanceof SignerStartupError) return err.message;
  return (err as Error)?.stack ?? String(err);
}


function parseArgs(argv: readonly string[]): Args | string {
  const positional: string[] = [];
  let out: Args;
  try {
    out = parseGoFlags(argv, SIGNER_FLAGS, { command: "run" }, positional);
  } catch (err) {
    if (err instanceof FlagError) return err.message;
    throw err;
  }
  if (out.help) return "help";
  const [cmd, id, extra] = positional;
  if (cmd !== undefined) {
    if (cmd !== "run" && cmd !== "list" && cmd !== "approve" && cmd !== "reject") return `unknown signer command "${cmd}"`;
    out.command = cmd;
  }
  if (out.command === "approve" || out.command === "reject") {
    if (id === undefined) return `signer ${out.command} needs a request id (see: signer list)`;
    out.id = id;
    if (extra !== undefined) return `unexpected argument "${extra}"`;
  } else if (id !== undefined) {
    return `unexpected argument "${id}"`;
  }
  if (out.reason !== undefined && out.command !== "reject") return "-reason is only for signer reject";
  if (out.conf === undefined) return "the signer needs its configuration file: -c <signer.conf>";
  return out;
}

export async function signerMain(argv: readonly string[], io: SignerIO): Promise<number> {
  const args = parseArgs(argv);
  if (args === "help") {
    io.stdout(SIGNER_USAGE);
    return 0;
  }
  if (typeof args === "string") {
    io.stderr(`${args}\n${SIGNER_USAGE}`);
    return 2;
  }
  let config: SignerConfig;
  let warnings: string[];
  try {
    ({ config, warnings } = loadSignerConfig(args.conf!));
  } catch (err) {
    io.stderr(`error loading signer configuration: ${describe(err)}\n`);
    return 1;
  }
  // Commands print their result on stdout; the log (with the audit lines) goes to stderr.
  const log = createLogger(config.logging);
  for (const w of warnings) log.warn(w);
  try {
    // Listing and rejecting need no key: an operator may work the queue without the seed.
    if (args.command === "list") return await list(new SignerState(config.stateDir), config, io);
    if (args.command === "reject") return await reject(new SignerState(config.stateDir), args.id!, args.reason, log, io);
    const operator = loadOperator(config);
    const key = loadSigningKey(config, operator);
    const service = new SigningService({ config, key, log, systemAccount: operator?.systemAccount });
    return args.command === "run" ? await run(service, log) : await approve(service, config, args.id!, log, io);
  } catch (err) {
    log.error(describe(err));
    return 1;
  }
}

async function run(service: SigningService, log: Logger): Promise<number> {
  log.info("starting the NATS account signing service");
  await service.start();
  log.info("signing service is running");
  await new Promise<void>((resolve) => {
    const stop = (name: string): void => {
      log.info(`received ${name}, shutting down`);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve();
    };
    const onInt = (): void => stop("sig-interrupt");
    const onTerm = (): void => stop("sig-term");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
  await service.stop();
  log.info("signing service stopped");
  return 0;
}

async function list(state: SignerState, config: SignerConfig, io: SignerIO): Promise<number> {
  const pending = await state.listPending();
  if (pending.length === 0) {
    io.stdout("no requests are waiting for approval\n");
    return 0;
  }
  for (const p of pending) {
    let caps: string;
    try {
      const r = applyPolicy(decodeAccountJwt(p.request), config.policy);
      caps = r.refused.length > 0 ? `refused by the current policy: ${r.refused.join("; ")}` : r.applied.join("; ") || "within the caps";
    } catch (err) {
      caps = `unreadable: ${errorText(err)}`;
    }
    io.stdout(`${p.id}  ${p.account}  ${JSON.stringify(p.name)}  ${new Date(p.received).toISOString()}  ${caps}\n`);
  }
  return 0;
}

interface UpdateReply {
  readonly data?: { message?: string };
  readonly error?: { description?: string };
  readonly server?: { name?: string };
}

/** Publish the signed JWT on `$SYS.REQ.CLAIMS.UPDATE` and collect the answers for `ms`. */
async function deliver(config: SignerConfig, jwt: string): Promise<{ stored: string[]; errors: string[] }> {
  const nc = await connect({ ...(await natsClientOptions(config.nats, "nats-account-signer")), reconnect: false });
  const stored: string[] = [];
  const errors: string[] = [];
  try {
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    const timer = setTimeout(() => sub.unsubscribe(), config.deliveryTimeout);
    nc.publish(UPDATE_SUBJECT, jwt, { reply: inbox });
    for await (const m of sub) {
      let r: UpdateReply;
      try {
        r = m.json<UpdateReply>();
      } catch {
        errors.push("an unreadable reply");
        continue;
      }
      const who = r.server?.name ?? "a server";
      if (r.error) errors.push(`${who}: ${r.error.description ?? "error"}`);
      else if (r.data) stored.push(who);
    }
    clearTimeout(timer);
  } finally {
    await nc.close();
  }
  return { stored, errors };
}

async function approve(service: SigningService, config: SignerConfig, id: string, log: Logger, io: SignerIO): Promise<number> {
  const p = await service.state.pending(id);
  if (!p) {
    const o = await service.state.outcome(id);
    io.stderr(o ? `request ${id} was already ${o.decision}\n` : `no request ${id} is waiting for approval (see: signer list)\n`);
    return 1;
  }
  const req = decodeAccountJwt(p.request);
  const policy = applyPolicy(req, config.policy);
  if (policy.refused.length > 0) {
    io.stderr(`request ${id} is refused by the current policy: ${policy.refused.join("; ")}\n`);
    return 1;
  }
  const nowMs = Date.now();
  const signed = service.sign(policy.claims, Math.floor(nowMs / 1000));
  if ("error" in signed) {
    io.stderr(`request ${id} cannot be signed: ${signed.error}\n`);
    return 1;
  }
  const { stored, errors } = await deliver(config, signed.jwt);
  for (const e of errors) log.warn(`delivering ${p.account.slice(0, 12)}: ${e}`);
  if (stored.length === 0) {
    io.stderr(`request ${id} stays queued: no account server confirmed the signed JWT${errors.length ? ` (${errors.join("; ")})` : ""}\n`);
    return 1;
  }
  await service.state.decide({ ...p, decision: "approved", decided: nowMs, jwt: signed.jwt });
  await service.state.markKnown(p.account, `approved request ${id}`, nowMs);
  service.audit("approved", { requester: p.account, account: p.account, request: id, caps: policy.applied.join("; "), jti: signed.jti });
  io.stdout(`approved request ${id}: account ${p.account} is signed and stored by ${stored.join(", ")}\n`);
  return 0;
}

async function reject(state: SignerState, id: string, reason: string | undefined, log: Logger, io: SignerIO): Promise<number> {
  const p = await state.pending(id);
  if (!p) {
    const o = await state.outcome(id);
    io.stderr(o ? `request ${id} was already ${o.decision}\n` : `no request ${id} is waiting for approval (see: signer list)\n`);
    return 1;
  }
  await state.decide({ ...p, decision: "rejected", decided: Date.now(), ...(reason !== undefined ? { reason } : {}) });
  audit(log, "rejected", { requester: p.account, account: p.account, request: id, reason });
  io.stdout(`rejected request ${id} for account ${p.account}\n`);
  return 0;
}
