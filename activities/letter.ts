import PDFDocument from 'pdfkit';
import type { CaseReason } from '../domain/case';
import { DEFAULT_LOCALE, readableDate } from '../domain/time';

export interface LetterContent {
  clientName: string;
  agencyName: string;
  agencyPhone: string;
  issuedOn: string;
  lastSessionDate: string | null;
  /** The agency's locale: dates are written as its people read them ("November 29, 2026"). */
  locale?: string;
  reason: CaseReason;
  referral: { name: string; contact: string } | null;
  domesticViolenceResources: boolean;
  /** For a letter by mail: the client's name and postal address, where an envelope's window shows them. */
  mailingAddress?: string | null;
}

/** The reason in plain words, addressed to the client; never clinical detail. */
const PLAIN_REASONS: Record<CaseReason, string> = {
  counselor_relocation: 'your counselor is relocating and can no longer see clients here',
  counselor_departure: 'your counselor is leaving the agency',
  goals_met: 'you and your counselor agreed that the goals you set together have been met',
  no_longer_beneficial: 'you and your counselor agreed that continuing here is no longer the most helpful next step',
  outside_scope: 'the support you need is best provided by a specialist',
  clinician_fit: 'we believe another clinician will be a better fit for you',
  clinician_safety: 'the agency has decided to end services at this location',
  client_request: 'you asked to end your counseling here',
  financial: 'of changes in the way your services can be paid for',
  client_stopped_attending: 'we have not been able to reach you for some time',
};

const CRISIS = [
  'If you are in crisis or thinking about suicide, call or text 988 (Suicide & Crisis Lifeline), any time.',
  'In an emergency, call 911 or go to the nearest emergency room.',
];
const DV_RESOURCE = 'National Domestic Violence Hotline: 1-800-799-7233, or text START to 88788.';

interface Section {
  heading: string;
  lines: string[];
}

function sections(content: LetterContent): Section[] {
  const reach = content.referral
    ? [`Your care continues with ${content.referral.name}.`, `You can reach them at ${content.referral.contact}.`]
    : ['If you would like support in the future, we can help you find a provider who fits your needs.'];
  return [
    {
      heading: 'Your counseling here is ending',
      lines: [
        `Dear ${content.clientName},`,
        content.lastSessionDate
          ? `Your last session with us was on ${readableDate(content.lastSessionDate, content.locale ?? DEFAULT_LOCALE)}.`
          : 'Your counseling with us has now ended.',
        `This is because ${PLAIN_REASONS[content.reason]}.`,
      ],
    },
    { heading: 'What happens next', lines: reach },
    { heading: 'If you need help now', lines: content.domesticViolenceResources ? [...CRISIS, DV_RESOURCE] : CRISIS },
    {
      heading: 'Coming back, and your records',
      lines: [
        `You are welcome to contact us again at any time: ${content.agencyName}, ${content.agencyPhone}.`,
        'You may ask for a copy of your records, or for them to be sent to another provider, by calling the same number.',
      ],
    },
  ];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export function renderLetterHtml(content: LetterContent): string {
  const body = sections(content)
    .map((s) => `<h2>${escapeHtml(s.heading)}</h2>\n${s.lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(content.agencyName)}: closing letter</title></head>
<body>
<p>${escapeHtml(content.agencyName)} &middot; ${escapeHtml(readableDate(content.issuedOn, content.locale ?? DEFAULT_LOCALE))}</p>
${body}
<p>With care,<br>${escapeHtml(content.agencyName)}</p>
</body></html>
`;
}

/** The same letter as PDF; the creation date is the issue date, so a re-render is byte-identical. */
export async function renderLetterPdf(content: LetterContent): Promise<Buffer> {
  return renderLettersPdf([content], `${content.agencyName}: closing letter`, content.issuedOn);
}

/** Several letters in one PDF, each from a new page: the front desk prints a day's mail in one go. */
export async function renderLettersPdf(contents: LetterContent[], title: string, createdOn: string): Promise<Buffer> {
  const doc = new PDFDocument({
    size: 'LETTER',
    margin: 72,
    autoFirstPage: false,
    info: { Title: title, CreationDate: new Date(`${createdOn}T00:00:00.000Z`) },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  for (const content of contents) {
    doc.addPage();
    if (content.mailingAddress) doc.fontSize(11).text(`${content.clientName}\n${content.mailingAddress}`).moveDown(2);
    doc
      .fontSize(10)
      .text(`${content.agencyName} · ${readableDate(content.issuedOn, content.locale ?? DEFAULT_LOCALE)}`);
    for (const section of sections(content)) {
      doc.moveDown().fontSize(14).text(section.heading);
      doc.fontSize(11);
      for (const line of section.lines) doc.moveDown(0.3).text(line);
    }
    doc.moveDown().text(`With care,\n${content.agencyName}`);
  }
  if (contents.length === 0) doc.addPage().fontSize(11).text('No letters to mail.');
  doc.end();
  return done;
}
