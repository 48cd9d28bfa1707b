import { basename, dirname, join } from 'node:path';
import express, { type RequestHandler, Router } from 'express';
import { CLIENT_CHOICES, CONTACT_CHANNELS, STEPS } from '../domain/process';

/**
 * Where the page's files are for code in `moduleDir`: `web/` beside package.json, one level up from `api/` and two
 * from `dist/api/`, where the image runs the compiled code.
 */
export function webDirFor(moduleDir: string): string {
  const parent = dirname(moduleDir);
  return join(basename(parent) === 'dist' ? dirname(parent) : parent, 'web');
}

/** The page's files: plain ES modules and CSS, no build step, nothing fetched from outside the service. */
export const WEB_DIR = webDirFor(__dirname);

/**
 * Only this service's own scripts and styles; no inline script, no frames of the page elsewhere. `blob:` lets a
 * letter the page fetched with the user's token open as a PDF.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const pageHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
  next();
};

/** The words the page's forms offer, from the same constants the API validates with. */
function vocabulary() {
  return { steps: STEPS, clientChoices: CLIENT_CHOICES, contactChannels: CONTACT_CHANNELS };
}

/** The staff page at `/` and its files under `/ui`; it signs in and then calls `/v1` like any other client. */
export function webRoutes(): Router {
  const router = Router();
  router.get('/', pageHeaders, (_req, res) => {
    res.set('Cache-Control', 'no-cache').sendFile(join(WEB_DIR, 'index.html'));
  });
  router.get('/ui/vocabulary.json', (_req, res) => {
    res.json(vocabulary());
  });
  router.use('/ui', pageHeaders, express.static(WEB_DIR, { index: false, maxAge: 0 }));
  return router;
}
