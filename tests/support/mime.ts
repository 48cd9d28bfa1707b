/** Just enough MIME to read what nodemailer sends: headers, the text part and base64 attachments. */
export interface ParsedMail {
  headers: Record<string, string>;
  text: string;
  attachments: { filename: string | null; contentType: string; content: Buffer }[];
}

function splitHead(raw: string): { headers: Record<string, string>; body: string } {
  const at = raw.search(/\r?\n\r?\n/);
  const head = (at === -1 ? raw : raw.slice(0, at)).replace(/\r?\n[ \t]+/g, ' ');
  const body = at === -1 ? '' : raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decode(body: string, encoding: string | undefined): Buffer {
  if (encoding?.toLowerCase() === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64');
  if (encoding?.toLowerCase() === 'quoted-printable') {
    const text = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(text, 'latin1');
  }
  return Buffer.from(body, 'utf8');
}

export function parseMail(raw: Buffer): ParsedMail {
  const { headers, body } = splitHead(raw.toString('latin1'));
  const result: ParsedMail = { headers, text: '', attachments: [] };
  const walk = (partHeaders: Record<string, string>, partBody: string) => {
    const type = partHeaders['content-type'] ?? 'text/plain';
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (type.toLowerCase().startsWith('multipart/') && boundary) {
      for (const chunk of partBody.split(`--${boundary}`).slice(1)) {
        if (chunk.startsWith('--')) break;
        const part = splitHead(chunk.replace(/^\r?\n/, ''));
        walk(part.headers, part.body.replace(/\r?\n$/, ''));
      }
      return;
    }
    const content = decode(partBody, partHeaders['content-transfer-encoding']);
    const disposition = partHeaders['content-disposition'] ?? '';
    if (disposition.startsWith('attachment') || !type.startsWith('text/')) {
      const filename = /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? null;
      result.attachments.push({ filename, contentType: type.split(';')[0]!.trim(), content });
    } else if (type.startsWith('text/plain')) {
      result.text += content.toString('utf8');
    }
  };
  walk(headers, body);
  return result;
}
