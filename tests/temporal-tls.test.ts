import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, type Socket, connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, createServer } from 'node:tls';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config';
import { openTemporalClient, temporalTarget } from '../temporal';
import { testContext } from './support/context';
import { testDataConverter } from './support/payload-keys';

const SCRIPT = join(__dirname, '..', 'scripts', 'make-temporal-certs.sh');

interface MtlsProxy {
  address: string;
  /** Connections that passed the handshake and were piped on to Temporal. */
  passed: number;
  /** Why each refused handshake failed, as the proxy's TLS saw it. */
  refusals: string[];
  close: () => Promise<void>;
}

/**
 * What the production frontend does, in front of the suite's plain dev server: TLS that demands a client
 * certificate signed by the CA, then the bytes (HTTP/2) go through untouched.
 */
async function startMtlsProxy(certs: string, upstream: string): Promise<MtlsProxy> {
  const separator = upstream.lastIndexOf(':');
  const [host, port] = [upstream.slice(0, separator), Number(upstream.slice(separator + 1))];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const server = createServer(
    {
      ca: readFileSync(join(certs, 'temporal', 'ca.pem')),
      cert: readFileSync(join(certs, 'temporal', 'cert.pem')),
      key: readFileSync(join(certs, 'temporal', 'key.pem')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      front.passed++;
      const temporal = connectTcp(port, host);
      track(client);
      track(temporal);
      client.on('error', () => temporal.destroy());
      temporal.on('error', () => client.destroy());
      client.pipe(temporal).pipe(client);
    },
  );
  // A client certificate the CA did not sign is refused once the handshake is done: its reason is on the socket.
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) =>
    front.refusals.push(socket.authorizationError?.toString() ?? error.code ?? error.message),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const front: MtlsProxy = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    passed: 0,
    refusals: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return front;
}

/**
 * Asks Temporal for its system info with these options, expecting to be turned away: what the client was told, how
 * many of its connections the proxy let through to Temporal, and why the proxy refused the others.
 */
async function refused(options: ConnectionOptions): Promise<{ client: string; passed: number; reasons: string[] }> {
  const passed = proxy.passed;
  const seen = proxy.refusals.length;
  const connection = Connection.lazy(options);
  try {
    const error: unknown = await connection
      .withDeadline(Date.now() + 3_000, () => connection.workflowService.getSystemInfo({}))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    return { client: (error as Error).message, passed: proxy.passed - passed, reasons: proxy.refusals.slice(seen) };
  } finally {
    await connection.close();
  }
}

let dir: string;
let certs: string;
let otherCa: string;
let proxy: MtlsProxy;

/**
 * The environment of one of the service's processes, with its own client certificate from `certs/<name>/`. The
 * proxy listens on 127.0.0.1, which the frontend's certificate does not name: the client checks it as `localhost`.
 */
function tlsEnv(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'production',
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_TLS_CA: join(certs, name, 'ca.pem'),
    TEMPORAL_TLS_CERT: join(certs, name, 'cert.pem'),
    TEMPORAL_TLS_KEY: join(certs, name, 'key.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    ...extra,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'handoff-tls-'));
  certs = join(dir, 'certs');
  otherCa = join(dir, 'other');
  execFileSync('bash', [SCRIPT, certs], { stdio: 'pipe' });
  execFileSync('bash', [SCRIPT, otherCa], { stdio: 'pipe' });
  proxy = await startMtlsProxy(certs, testContext().temporalAddress);
});

afterAll(async () => {
  await proxy.close();
  rmSync(dir, { recursive: true, force: true });
});

test('when the API’s client is built from TEMPORAL_TLS_* through the project’s helper, then it reaches Temporal through a frontend that demands client certificates', async () => {
  const config = loadConfig(tlsEnv('api'));
  const passedBefore = proxy.passed;
  const temporal = openTemporalClient(temporalTarget(config), 'default', { dataConverter: testDataConverter() });
  try {
    const { namespaceInfo } = await temporal.client.workflowService.describeNamespace({ namespace: 'default' });
    expect(namespaceInfo?.name).toBe('default');
    expect(await temporal.ping()).toBe(true);
    expect(proxy.passed).toBeGreaterThan(passedBefore);
  } finally {
    await temporal.close();
  }
});

test('when the worker connects through the same helper, then its native connection reaches Temporal with its own certificate and the server name it is told', async () => {
  const config = loadConfig(tlsEnv('worker', { TEMPORAL_TLS_SERVER_NAME: 'temporal' }));
  const passedBefore = proxy.passed;
  const connection = await NativeConnection.connect(temporalTarget(config));
  try {
    const { serverVersion } = await connection.workflowService.getSystemInfo({});
    expect(serverVersion).toBeTruthy();
    expect(proxy.passed).toBeGreaterThan(passedBefore);
  } finally {
    await connection.close();
  }
});

test('when a client presents no certificate, then the handshake refuses it and nothing reaches Temporal', async () => {
  const { passed, reasons } = await refused({
    address: proxy.address,
    tls: { serverRootCACertificate: readFileSync(join(certs, 'api', 'ca.pem')), serverNameOverride: 'localhost' },
  });
  expect(reasons).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  expect(passed).toBe(0);
});

test('when a client’s certificate was signed by another CA, then the handshake refuses it and nothing reaches Temporal', async () => {
  const config = loadConfig(
    tlsEnv('api', {
      TEMPORAL_TLS_CERT: join(otherCa, 'api', 'cert.pem'),
      TEMPORAL_TLS_KEY: join(otherCa, 'api', 'key.pem'),
    }),
  );
  const { passed, reasons } = await refused(temporalTarget(config));
  expect(reasons).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  expect(passed).toBe(0);
});

test('when the frontend’s certificate does not carry the name the client expects, then the client refuses the server', async () => {
  // The same certificates that pass as `localhost` in the first test: only the name differs.
  const config = loadConfig(tlsEnv('api', { TEMPORAL_TLS_SERVER_NAME: 'temporal.elsewhere.example' }));
  const { client } = await refused(temporalTarget(config));
  expect(client).toMatch(/DEADLINE_EXCEEDED|UNAVAILABLE/);
});

test('when TEMPORAL_TLS_CA is set without its certificate and key, then the configuration is refused naming what is missing', () => {
  expect(() => loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS_CA: '/certs/ca.pem' })).toThrow(
    /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY missing/,
  );
  expect(() =>
    loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS_CERT: '/c.pem', TEMPORAL_TLS_KEY: '/k.pem' }),
  ).toThrow(/TEMPORAL_TLS_CA missing/);
});

test('when production reaches Temporal without TLS, then it is refused unless TEMPORAL_TLS_DISABLED=true says so', () => {
  expect(() => loadConfig({ NODE_ENV: 'production', TEMPORAL_ADDRESS: 'temporal:7233' })).toThrow(
    /TEMPORAL_ADDRESS: would be reached without TLS in production/,
  );
  expect(
    loadConfig({ NODE_ENV: 'production', TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS_DISABLED: 'true' })
      .TEMPORAL_TLS_DISABLED,
  ).toBe(true);
  expect(() => loadConfig(tlsEnv('api', { TEMPORAL_TLS_DISABLED: 'true' }))).toThrow(/choose one/);
});

test('when the key belongs to another certificate, then the helper stops before connecting, naming both files', () => {
  const config = loadConfig(tlsEnv('api', { TEMPORAL_TLS_KEY: join(certs, 'worker', 'key.pem') }));
  expect(() => temporalTarget(config)).toThrow(
    /TEMPORAL_TLS_KEY \(.*worker\/key\.pem\) is not the key of TEMPORAL_TLS_CERT \(.*api\/cert\.pem\)/,
  );
});

test('when the certificate script finds a CA, then it keeps it unless --force, and --renew reissues only what the CA signs', () => {
  const ca = readFileSync(join(certs, 'ca', 'ca.pem'), 'utf8');
  const apiCert = readFileSync(join(certs, 'api', 'cert.pem'), 'utf8');
  const again = spawnSync('bash', [SCRIPT, certs], { encoding: 'utf8' });
  expect(again.status).toBe(1);
  expect(again.stderr).toMatch(/already holds a CA/);
  expect(readFileSync(join(certs, 'ca', 'ca.pem'), 'utf8')).toBe(ca);

  execFileSync('bash', [SCRIPT, '--renew', certs], { stdio: 'pipe' });
  expect(readFileSync(join(certs, 'ca', 'ca.pem'), 'utf8')).toBe(ca);
  expect(readFileSync(join(certs, 'api', 'cert.pem'), 'utf8')).not.toBe(apiCert);

  execFileSync('bash', [SCRIPT, '--force', otherCa], { stdio: 'pipe' });
  expect(readFileSync(join(otherCa, 'ca', 'ca.pem'), 'utf8')).not.toBe(ca);
});
