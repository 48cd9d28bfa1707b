import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_DIR } from './context';

const ROOT = resolve(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** What tests/support/oidc-provider.mts is started with. */
export interface ProviderOptions {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** By `sub`: what `amr` a sign-in as the account reports, and its claims. */
  accounts: Record<string, { amr: string[]; claims: Record<string, string> }>;
}

export interface RunningProcess {
  /** The process's stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

/** A tsx process of this repository, ready once `ready` says so from its output (or 60 s have passed). */
async function start(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (log: string) => Promise<boolean>,
): Promise<RunningProcess> {
  const dir = join(TEST_DIR, 'oidc');
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, `${name}-${process.pid}.log`);
  const fd = openSync(logFile, 'w');
  const child: ChildProcess = spawn(TSX, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let running = true;
  void exited.then(() => (running = false));
  const log = () => readFileSync(logFile, 'utf8');
  const deadline = Date.now() + 60_000;
  while (!(await ready(log()).catch(() => false))) {
    if (!running || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start; its output:\n${log()}`);
    }
    await sleep(100);
  }
  return {
    log,
    async stop() {
      if (running) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** oidc-provider in a process of its own (it is ESM-only), with the client and accounts given. */
export async function startOidcProvider(options: ProviderOptions): Promise<RunningProcess & { issuer: string }> {
  const args = [join('tests', 'support', 'oidc-provider.mts'), JSON.stringify(options)];
  const provider = await start('provider', args, { PATH: process.env.PATH }, async (log) => /^issuer /m.test(log));
  return { ...provider, issuer: /^issuer (\S+)$/m.exec(provider.log())![1]! };
}

/** The API as production runs it (`tsx api/main.ts`), configured by `env` alone, ready once it answers. */
export async function startApiProcess(env: Record<string, string>, url: string): Promise<RunningProcess> {
  return start(
    'api',
    [join('api', 'main.ts')],
    { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    async () => {
      const res = await fetch(`${url}/auth/config`);
      return res.ok;
    },
  );
}

export interface Visit {
  status: number;
  headers: Headers;
  /** The redirect target, absolute. */
  location: string | undefined;
  body: string;
}

/** A browser, as much as a sign-in needs: it keeps cookies by origin and path and follows no redirect by itself. */
export class Browser {
  private readonly cookies = new Map<string, { origin: string; path: string; name: string; value: string }>();

  get(url: string): Promise<Visit> {
    return this.visit(url, 'GET');
  }

  /** Submits a form, as an HTML form posts it. */
  post(url: string, form: Record<string, string>): Promise<Visit> {
    return this.visit(url, 'POST', new URLSearchParams(form));
  }

  /** The value of a cookie this browser would send to `url`. */
  cookie(url: string, name: string): string | undefined {
    return this.cookiesFor(new URL(url)).find((c) => c.name === name)?.value;
  }

  setCookie(url: string, name: string, value: string, path = '/'): void {
    const { origin } = new URL(url);
    this.cookies.set(`${origin} ${path} ${name}`, { origin, path, name, value });
  }

  private cookiesFor(target: URL) {
    return [...this.cookies.values()].filter((c) => c.origin === target.origin && target.pathname.startsWith(c.path));
  }

  private async visit(url: string, method: string, form?: URLSearchParams): Promise<Visit> {
    const target = new URL(url);
    const headers: Record<string, string> = {};
    const cookies = this.cookiesFor(target);
    if (cookies.length > 0) headers.cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, { method, headers, body: form?.toString(), redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.keep(target, line);
    const location = res.headers.get('location');
    return {
      status: res.status,
      headers: res.headers,
      location: location === null ? undefined : new URL(location, target).href,
      body: await res.text(),
    };
  }

  private keep(target: URL, line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = '/';
    let expired = false;
    for (const attribute of attributes) {
      const [key = '', given = ''] = attribute.trim().split('=');
      if (key.toLowerCase() === 'path') path = given;
      if (key.toLowerCase() === 'max-age') expired = Number(given) <= 0;
      if (key.toLowerCase() === 'expires' && !/max-age/i.test(line)) expired = Date.parse(given) <= Date.now();
    }
    const key = `${target.origin} ${path} ${name}`;
    if (expired) this.cookies.delete(key);
    else this.cookies.set(key, { origin: target.origin, path, name, value });
  }
}
