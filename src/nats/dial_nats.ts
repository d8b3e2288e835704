import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import { AuthError, ConnectError, IpcError } from "../errors.ts";
import { LEASE_TTL_MS } from "./id_lease.ts";

/** Pause between attempts of a JetStream request that failed for the moment. */
const JETSTREAM_RETRY_MS = 100;

/** Where and as whom {@linkcode dialNats} connects. */
export interface DialNatsOptions {
  servers: string[];
  /** Milliseconds for the first connection. */
  timeout: number;
  /** The client name the servers' monitoring shows. */
  name: string;
  auth?: { token: string } | { user: string; pass: string };
}

/**
 * Connects to NATS, set to reconnect for as long as it takes.
 *
 * @throws {AuthError} when the server refuses the credentials.
 * @throws {ConnectError} when no server answers.
 */
export async function dialNats(options: DialNatsOptions): Promise<NatsConnection> {
  try {
    return await natsConnect({
      servers: options.servers,
      timeout: options.timeout,
      name: options.name,
      // Quickly: the other servers of a cluster are usually there.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      ...options.auth,
    });
  } catch (err) {
    const message = `Cannot connect to NATS at ${options.servers.join(", ")}: ${(err as Error)?.message ?? err}`;
    if (/authori[sz]ation|authentication/i.test(String((err as Error)?.message))) {
      throw new AuthError(message, { cause: err });
    }
    throw new ConnectError(message, { cause: err });
  }
}

/**
 * Runs `op` until it succeeds or `deadline` passes: right after a cluster
 * starts, or while it elects a new leader, JetStream requests fail for a
 * moment. Refusals of ours (`IpcError`, such as `name_taken`) are final.
 *
 * @throws {ConnectError} with the last error, at the deadline.
 */
export async function retryJetStream<T>(deadline: number, what: string, op: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (err instanceof IpcError) throw err;
      if (Date.now() + JETSTREAM_RETRY_MS >= deadline) {
        throw new ConnectError(`Cannot use JetStream for ${what}: ${(err as Error)?.message ?? err}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, JETSTREAM_RETRY_MS));
    }
  }
}

/**
 * Opens the bucket of a bus's leases, creating it the first time: three
 * replicas when the server is in a cluster, so that the ids outlive one
 * server, else (or when the cluster has fewer JetStream servers) one.
 *
 * @throws {ConnectError} at `deadline`, e.g. when JetStream is not enabled.
 */
export function openBucket(nc: NatsConnection, bucket: string, deadline: number): Promise<KV> {
  const kvm = new Kvm(nc);
  let replicas = nc.info?.cluster ? 3 : 1;
  return retryJetStream(deadline, `bucket ${bucket} (is JetStream enabled on the server?)`, async () => {
    try {
      return await kvm.create(bucket, { history: 1, ttl: LEASE_TTL_MS, replicas });
    } catch (err) {
      if (replicas > 1 && /insufficient|replicas/i.test(String((err as Error)?.message ?? err))) replicas = 1;
      throw err;
    }
  });
}
