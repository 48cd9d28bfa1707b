import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ApplicationFailure, METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { decode, encode } from '@temporalio/common/lib/encoding';
import { temporal } from '@temporalio/proto';

/**
 * What a sealed payload says about itself, and nothing more: the same metadata and layout as Temporal's encryption
 * samples (iv | ciphertext | tag over the whole payload's protobuf bytes), so their codec servers and ours agree.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
/** The failure type of a payload this process cannot open; its message names the key id, nothing else. */
export const PAYLOAD_UNREADABLE = 'PayloadUnreadable';

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface PayloadKeyring {
  /** The id of the key that seals new payloads. */
  encryptWith: string;
  /** Every key a payload may have been sealed with, by id (the sealing one among them). */
  keys: ReadonlyMap<string, Buffer>;
}

function unreadable(message: string): never {
  throw ApplicationFailure.create({ type: PAYLOAD_UNREADABLE, message, nonRetryable: true });
}

/** Whether a payload was sealed by this codec (or one like it). */
export function isEncrypted(payload: Payload): boolean {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  return encoding !== undefined && encoding !== null && decode(encoding) === ENCRYPTED_ENCODING;
}

/** The id of the key a sealed payload names, or null for one in clear. */
export function keyIdOf(payload: Payload): string | null {
  const id = payload.metadata?.[KEY_ID_METADATA];
  return isEncrypted(payload) && id ? decode(id) : null;
}

/**
 * AES-256-GCM over every payload the client and the worker hand Temporal. Opens a payload sealed with any key of the
 * ring, so keys rotate: seal with the new one, keep the old ones until no history holds their payloads. A payload
 * in clear (a history from before encryption, a case still running from then) passes through as it is.
 */
export class EncryptionCodec implements PayloadCodec {
  private readonly sealingKey: Buffer;
  private readonly sealingKeyId: Uint8Array;

  constructor(private readonly keyring: PayloadKeyring) {
    const key = keyring.keys.get(keyring.encryptWith);
    if (!key) throw new Error(`the sealing key "${keyring.encryptWith}" is not in the keyring`);
    this.sealingKey = key;
    this.sealingKeyId = encode(keyring.encryptWith);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.seal(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.open(payload));
  }

  private seal(payload: Payload): Payload {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(CIPHER, this.sealingKey, iv);
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { [METADATA_ENCODING_KEY]: encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: this.sealingKeyId },
      data: new Uint8Array(sealed.buffer, sealed.byteOffset, sealed.byteLength),
    };
  }

  private open(payload: Payload): Payload {
    if (!isEncrypted(payload)) return payload;
    const keyId = keyIdOf(payload);
    if (!keyId) unreadable('an encrypted payload names no encryption key id');
    const key = this.keyring.keys.get(keyId);
    if (!key) unreadable(`a payload is encrypted with key "${keyId}", which this process does not hold (PAYLOAD_KEYS)`);
    const data = payload.data ?? new Uint8Array();
    if (data.byteLength < IV_BYTES + TAG_BYTES) unreadable(`a payload under key "${keyId}" is too short to be sealed`);
    let plain: Buffer;
    try {
      const decipher = createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.byteLength - TAG_BYTES));
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.byteLength - TAG_BYTES)), decipher.final()]);
    } catch {
      unreadable(`a payload under key "${keyId}" does not open with that key: it was altered, or sealed with another`);
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}
