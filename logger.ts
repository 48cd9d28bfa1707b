import pino, { type Logger } from 'pino';
import type { Config } from './config';

/** One JSON line per event. Callers log ids and outcomes, never client details. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, name: string): Logger {
  return pino({ name, level: config.LOG_LEVEL, base: { service: 'handoff', component: name } });
}
