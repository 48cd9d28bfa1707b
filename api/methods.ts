import type { Express, RequestHandler } from 'express';
import { problem } from './problem';

interface RouterLayer {
  route?: { methods: Record<string, boolean | undefined> };
  handle?: { stack?: RouterLayer[] };
  match(path: string): unknown;
}

/** The methods the app's routes answer at this path (HEAD wherever GET is, as Express serves it). */
function methodsAt(app: Express, path: string): Set<string> {
  const methods = new Set<string>();
  const walk = (stack: RouterLayer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        let matches = false;
        try {
          matches = Boolean(layer.match(path));
        } catch {
          // A malformed percent-escape: the router itself answers it (400).
        }
        if (!matches) continue;
        for (const method of Object.keys(layer.route.methods)) if (method !== '_all') methods.add(method.toUpperCase());
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack);
  if (methods.has('GET')) methods.add('HEAD');
  return methods;
}

/**
 * A path that exists, asked with a method it does not take, is a 405 naming the ones it does (RFC 9110 §15.5.6);
 * OPTIONS names them all. Before sign-in: which methods a path takes is in the public API document anyway. (Left
 * to Express, OPTIONS would name only those of the first router with a route there.)
 */
export function methodNotAllowed(app: Express): RequestHandler {
  return (req, res, next) => {
    const methods = methodsAt(app, req.path);
    if (methods.size === 0 || methods.has(req.method)) return next();
    const allow = [...methods, 'OPTIONS'].sort().join(', ');
    res.set('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    throw problem(405, `${req.method} is not a method of ${req.path}; it takes ${allow}`);
  };
}
