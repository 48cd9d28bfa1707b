import { type EncryptingDataConverter, encryptingDataConverter, payloadKeyring } from '../../codec';
import { loadConfig } from '../../config';

/**
 * The suite's payload key, public on purpose: every Temporal client and worker of the tests seals with it, so the
 * histories they record (tests/histories/) open with it again when they are replayed.
 */
export const TEST_PAYLOAD_KEYS = `test-1:${Buffer.from('handoff-tests-payload-key-32byte').toString('base64')}`;

/** The data converter of the suite's clients and workers, made from the key as production makes its own. */
export function testDataConverter(): EncryptingDataConverter {
  return encryptingDataConverter(payloadKeyring(loadConfig({ NODE_ENV: 'test', PAYLOAD_KEYS: TEST_PAYLOAD_KEYS })));
}
