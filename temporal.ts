import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  Client,
  Connection,
  type TLSConfig,
  type WorkflowClientInterceptor,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
} from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { Config } from './config';

/**
 * How a process reaches Temporal: the address and, when the deployment has it, mutual TLS. It is the options of
 * every connection the service opens (`Connection.connect`, `NativeConnection.connect`, `openTemporalClient`), so
 * none can take the address and leave the certificates behind.
 */
export interface TemporalTarget {
  readonly address: string;
  readonly tls?: TLSConfig;
}

function readPem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`could not read ${variable} (${path}): ${(error as Error).message}`);
  }
}

function certificateOf(variable: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new Error(`${variable} (${path}) is not a PEM certificate: ${(error as Error).message}`);
  }
}

/**
 * Where and how config says to reach Temporal. The certificate files are read and checked here, once, so a missing file or a key that
 * belongs to another certificate stops the process at start, by name, rather than as a handshake failing over and
 * over in a retry loop.
 */
export function temporalTarget(config: Config): TemporalTarget {
  const {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_CA: caFile,
    TEMPORAL_TLS_CERT: certFile,
    TEMPORAL_TLS_KEY: keyFile,
  } = config;
  if (address === undefined) throw new Error('TEMPORAL_ADDRESS must be set to connect to Temporal');
  if (caFile === undefined || certFile === undefined || keyFile === undefined) return { address };
  const ca = readPem('TEMPORAL_TLS_CA', caFile);
  const crt = readPem('TEMPORAL_TLS_CERT', certFile);
  const key = readPem('TEMPORAL_TLS_KEY', keyFile);
  certificateOf('TEMPORAL_TLS_CA', caFile, ca);
  const certificate = certificateOf('TEMPORAL_TLS_CERT', certFile, crt);
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch (error) {
    throw new Error(`TEMPORAL_TLS_KEY (${keyFile}) is not a PEM private key: ${(error as Error).message}`);
  }
  if (!matches) throw new Error(`TEMPORAL_TLS_KEY (${keyFile}) is not the key of TEMPORAL_TLS_CERT (${certFile})`);
  return {
    address,
    tls: {
      serverRootCACertificate: ca,
      clientCertPair: { crt, key },
      ...(config.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME } : {}),
    },
  };
}

export interface TemporalClientHandle {
  client: Client;
  /** True when the frontend answered within two seconds. */
  ping: () => Promise<boolean>;
  /** True when a worker polled the task queue for workflow tasks within the last 90 seconds. */
  workerPolling: (taskQueue: string) => Promise<boolean>;
  close: () => Promise<void>;
}

/**
 * A lazy client: the API starts (and answers 503) even while Temporal is down. With `failFast` (the API's), a call
 * to an unreachable server gives up after a few quick retries (about a second) instead of the SDK's ten over
 * about twenty seconds, so a person waiting on a request hears "unavailable" at once. The data converter is not
 * optional: every client of the service seals what it hands Temporal (codec/).
 */
export function openTemporalClient(
  target: TemporalTarget,
  namespace: string,
  options: { dataConverter: DataConverter; failFast?: boolean; interceptors?: WorkflowClientInterceptor[] },
): TemporalClientHandle {
  const connection = Connection.lazy({
    ...target,
    ...(options.failFast
      ? {
          interceptors: [
            makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 4, maxIntervalMs: () => 500 })),
          ],
        }
      : {}),
  });
  const client = new Client({
    connection,
    namespace,
    dataConverter: options.dataConverter,
    interceptors: { workflow: options.interceptors ?? [] },
  });
  return {
    client,
    async ping() {
      try {
        await connection.withDeadline(Date.now() + 2_000, () => connection.workflowService.getSystemInfo({}));
        return true;
      } catch {
        return false;
      }
    },
    async workerPolling(taskQueue) {
      try {
        const { pollers } = await connection.withDeadline(Date.now() + 2_000, () =>
          connection.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: taskQueue },
            taskQueueType: 1, // workflow tasks: a worker that polls them also runs the activities here
          }),
        );
        // A poll lasts up to a minute: an access older than that and a bit means no worker is polling.
        const cutoff = Date.now() / 1000 - 90;
        return (pollers ?? []).some((p) => Number(p.lastAccessTime?.seconds ?? 0) >= cutoff);
      } catch {
        return false;
      }
    },
    close: () => connection.close(),
  };
}
