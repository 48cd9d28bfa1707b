import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

/** One message as the catcher received it. */
export interface CaughtMessage {
  messageId: string | null;
  from: string | null;
  to: string[];
  raw: Buffer;
  receivedAt: Date;
}

export interface MailCatcher {
  port: number;
  /** For SMTP_URL. */
  url: string;
  /** Every message received, a redelivery included. */
  messages: CaughtMessage[];
  /** What a receiver that drops a second copy of a Message-ID keeps. */
  unique(): CaughtMessage[];
  stop(): Promise<void>;
}

function header(raw: string, name: string): string | null {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : null;
}

/**
 * A local SMTP server that keeps what it receives: in memory, and with `dir` as `<dir>/<hash of Message-ID>.eml`,
 * so a message delivered twice (a sender that died before marking it delivered) is one file. `refuse` answers
 * a message with a temporary failure, as a real server sometimes does.
 */
export async function startMailCatcher(
  options: { port?: number; host?: string; dir?: string; refuse?: (to: string[]) => string | null } = {},
): Promise<MailCatcher> {
  const host = options.host ?? '127.0.0.1';
  const messages: CaughtMessage[] = [];
  if (options.dir) mkdirSync(options.dir, { recursive: true });
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on the loopback interface: nothing here leaves the machine.
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const to = session.envelope.rcptTo.map((r) => r.address);
        const refusal = options.refuse?.(to);
        if (refusal) {
          callback(Object.assign(new Error(refusal), { responseCode: 451 }));
          return;
        }
        const text = raw.toString('utf8');
        const messageId = header(text, 'Message-ID');
        const mailFrom = session.envelope.mailFrom;
        messages.push({ messageId, from: mailFrom ? mailFrom.address : null, to, raw, receivedAt: new Date() });
        if (options.dir) {
          const name = createHash('sha256')
            .update(messageId ?? randomUUID())
            .digest('hex')
            .slice(0, 24);
          writeFileSync(join(options.dir, `${name}.eml`), raw);
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    url: `smtp://${host}:${port}`,
    messages,
    unique() {
      const seen = new Set<string>();
      return messages.filter((m) => {
        if (!m.messageId) return true;
        if (seen.has(m.messageId)) return false;
        seen.add(m.messageId);
        return true;
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
