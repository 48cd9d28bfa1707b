import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { type Config, type PayloadKey, loadConfig } from '../config';
import { EncryptionCodec, type PayloadKeyring } from './payload-codec';

export { EncryptionCodec, type PayloadKeyring } from './payload-codec';

/** Where a process without PAYLOAD_KEYS (not in production) keeps the key it made, in PAYLOAD_KEYS's format. */
export function devKeyFile(config: Pick<Config, 'DATA_DIR'>): string {
  return join(config.DATA_DIR, 'payload-keys');
}

/**
 * A key made once for this DATA_DIR and kept there: every process of `npm start` (and `npm run worker`/`api` beside
 * it) finds the same one. Made aside and linked into place, so two processes starting at once agree on one key.
 */
function devKeys(config: Pick<Config, 'DATA_DIR'>): PayloadKey[] {
  const file = devKeyFile(config);
  if (!existsSync(file)) {
    mkdirSync(config.DATA_DIR, { recursive: true });
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(draft, `dev:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    try {
      linkSync(draft, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      rmSync(draft, { force: true });
    }
  }
  const keys = loadConfig({ PAYLOAD_KEYS: readFileSync(file, 'utf8') }).PAYLOAD_KEYS;
  if (!keys) throw new Error(`${file} holds no payload key`);
  return keys;
}

/**
 * The keys of this deployment: PAYLOAD_KEYS, sealing with PAYLOAD_KEY_ID (else the first). Without them a process
 * refuses to start in production (payloads in clear would be the default nobody chose); elsewhere it uses the key
 * kept under DATA_DIR.
 */
export function payloadKeyring(config: Config): PayloadKeyring {
  if (!config.PAYLOAD_KEYS && config.NODE_ENV === 'production') {
    throw new Error(
      'PAYLOAD_KEYS must be set in production: the keys that encrypt what the service stores in Temporal ' +
        '(<id>:<32 bytes, base64>, comma-separated; see the README, Payload encryption)',
    );
  }
  const keys = config.PAYLOAD_KEYS ?? devKeys(config);
  return {
    encryptWith: config.PAYLOAD_KEY_ID ?? keys[0]!.id,
    keys: new Map(keys.map((k) => [k.id, Buffer.from(k.key, 'base64')])),
  };
}

/** The module the client, the worker and the workflow bundle take their failure converter from. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

export type EncryptingDataConverter = DataConverter & { payloadCodecs: [EncryptionCodec] };

/** What every Temporal client and worker of the service converts payloads with: sealed, failures included. */
export function encryptingDataConverter(keyring: PayloadKeyring): EncryptingDataConverter {
  return { payloadCodecs: [new EncryptionCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
