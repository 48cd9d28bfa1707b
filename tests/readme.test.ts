import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Role } from '../domain/case';
import { PERMISSIONS, type Permission } from '../domain/roles';
import { RULES } from '../domain/rules/rule';

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
const ROLE_COLUMNS: Role[] = ['staff', 'counselor', 'clinical_director', 'compliance', 'admin'];

function cells(line: string): string[] {
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

test('when the README’s role table is read, then it says exactly what the role matrix allows', () => {
  const rows = README.split('\n').filter((l) => /^\| .*\(`\w+`\)\s+\|/.test(l));
  const table = Object.fromEntries(
    rows.map((line) => {
      const [action, ...marks] = cells(line);
      const permission = /\(`(\w+)`\)$/.exec(action!)![1]!;
      return [permission, ROLE_COLUMNS.filter((_, i) => marks[i] === 'yes')];
    }),
  );
  const matrix = Object.fromEntries(
    (Object.keys(PERMISSIONS) as Permission[]).map((p) => [
      p,
      ROLE_COLUMNS.filter((r) => (PERMISSIONS[p] as readonly Role[]).includes(r)),
    ]),
  );
  expect(table).toEqual(matrix);
});

test('when the README’s rule table is read, then every rule of DOMAIN.md has a row naming a module that exists', () => {
  const processRules = Object.values(RULES).filter((r) => r !== 'role' && r !== 'step');
  for (const rule of processRules) {
    const row = README.split('\n').find((l) => l.startsWith(`| \`${rule}\``));
    expect(row).toBeDefined();
    const module = /`(domain\/rules\/[\w-]+\.ts)`/.exec(row!)?.[1];
    expect(module).toBeDefined();
    expect(existsSync(join(__dirname, '..', module!))).toBe(true);
    expect(readFileSync(join(__dirname, '..', module!), 'utf8')).toMatch(/^\/\*\*/);
  }
});
