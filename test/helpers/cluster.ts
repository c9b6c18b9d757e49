/**
 * A JetStream cluster of real nats-servers on loopback for the KV store tests: each node has its
 * own port, route port and store directory, and can be stopped and restarted in place.
 */
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { freePort, startNatsServer, tempDir, type NatsServer } from "./processes.js";

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  server: NatsServer | undefined;
}

export interface JetStreamCluster {
  readonly nodes: ClusterNode[];
  readonly urls: string[];
  stop(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Config lines added to every node (an operator-mode setup). */
  readonly extra?: string;
  /** Creds text of a JetStream-enabled user, when the nodes require authentication. */
  readonly creds?: string;
}

/** Start `n` clustered JetStream nodes (no auth by default) and wait until a KV bucket can be created. */
export async function startJetStreamCluster(n = 3, o: ClusterOptions = {}): Promise<JetStreamCluster> {
  const dir = tempDir("js-cluster-");
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: n }, () => freePort()));
  const conf = (i: number): string =>
    `server_name: n${i}\njetstream { store_dir: "${join(dir, `n${i}`)}" }\n` +
    `cluster { name: kvc, listen: 127.0.0.1:${routes[i]}, routes: [${routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ")}] }\n` +
    (o.extra ?? "");
  const nodes: ClusterNode[] = ports.map((port, i) => ({ name: `n${i}`, port, server: undefined }));
  const start = async (i: number): Promise<void> => {
    nodes[i]!.server = await startNatsServer(conf(i), { port: ports[i]!, dir: join(dir, `cfg${i}`) });
  };
  for (let i = 0; i < n; i++) mkdirSync(join(dir, `cfg${i}`), { recursive: true });
  await Promise.all(nodes.map((_, i) => start(i)));
  const urls = ports.map((p) => `nats://127.0.0.1:${p}`);
  await untilJetStreamReady(urls, o.creds);
  return {
    nodes,
    urls,
    async stop(i) {
      await nodes[i]!.server?.proc.stop("SIGKILL");
      nodes[i]!.server = undefined;
    },
    async restart(i) {
      await start(i);
    },
    async close() {
      await Promise.all(nodes.map((node) => node.server?.proc.stop("SIGKILL")));
    },
  };
}

/** A replicated bucket can be created once the meta leader is elected; probe until it works. */
async function untilJetStreamReady(urls: string[], creds: string | undefined): Promise<void> {
  const nc = await connect({
    servers: urls,
    ...(creds !== undefined ? { authenticator: credsAuthenticator(new TextEncoder().encode(creds)) } : {}),
  });
  try {
    // The meta group elects its leader through fsynced raft writes: on a slow shared disk under a
    // parallel test run that has taken over 30 s (seen once in CI as "no suitable peers").
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const kv = await new Kvm(nc).create("probe", { replicas: urls.length, timeout: 2000 });
        await kv.destroy();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}
