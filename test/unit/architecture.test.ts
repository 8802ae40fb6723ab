import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/paths';

/**
 * The layering rules of the repository, checked on every import of every .ts file:
 * - a handler folder (lambdas/<name>/ with a handler.ts) never imports another handler folder;
 * - the CLI (bin/) never imports a handler folder;
 * - lib/ and localstack/ never import bin/;
 * - lambdas/ (deployed code) never imports localstack/, test/ or bin/.
 */

const ROOTS = ['bin', 'lib', 'lambdas', 'localstack', 'test'];
const SKIP = new Set(['node_modules', '.state', '.venv-localstack', 'cdk.out']);

// Static imports and re-exports (`import ... from`, `export ... from`, side-effect `import '...'`),
// dynamic `import('...')` and `vi.mock('...')`.
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\bvi\.mock\(\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(REPO_ROOT, dir))) {
    if (SKIP.has(entry)) continue;
    const path = join(dir, entry);
    if (statSync(join(REPO_ROOT, path)).isDirectory()) out.push(...tsFiles(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

interface ImportSite {
  readonly file: string;
  readonly line: number;
  /** Repository-relative path the specifier points at (without extension). */
  readonly target: string;
}

function importsOf(file: string, source: string): ImportSite[] {
  const sites: ImportSite[] = [];
  for (const match of source.matchAll(IMPORT)) {
    const line = source.slice(0, match.index).split('\n').length;
    const target = normalize(join(dirname(file), match[2] as string)).replace(/\\/g, '/');
    sites.push({ file, line, target });
  }
  return sites;
}

const top = (path: string) => path.split('/')[0] ?? '';

/** The folder under lambdas/ a path belongs to, when that folder is a handler folder. */
function handlerFolder(path: string, handlerFolders: ReadonlySet<string>): string | undefined {
  const [root, folder] = path.split('/');
  return root === 'lambdas' && folder && handlerFolders.has(folder) ? folder : undefined;
}

function violations(sources: ReadonlyMap<string, string>, handlerFolders: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const [file, source] of sources) {
    for (const site of importsOf(file, source)) {
      const at = `${site.file}:${site.line} imports ${site.target}`;
      const from = top(file);
      const to = top(site.target);
      const fromHandler = handlerFolder(file, handlerFolders);
      const toHandler = handlerFolder(site.target, handlerFolders);
      if (fromHandler && toHandler && fromHandler !== toHandler) {
        found.push(`${at}: a handler folder imports another handler folder`);
      }
      if (from === 'bin' && toHandler) found.push(`${at}: the CLI imports a handler`);
      if ((from === 'lib' || from === 'localstack') && to === 'bin')
        found.push(`${at}: ${from}/ imports bin/`);
      if (from === 'lambdas' && (to === 'localstack' || to === 'test' || to === 'bin')) {
        found.push(`${at}: deployed code imports ${to}/`);
      }
    }
  }
  return found;
}

function repoHandlerFolders(): Set<string> {
  return new Set(
    readdirSync(join(REPO_ROOT, 'lambdas')).filter((d) => {
      try {
        return statSync(join(REPO_ROOT, 'lambdas', d, 'handler.ts')).isFile();
      } catch {
        return false;
      }
    }),
  );
}

describe('architecture', () => {
  it('finds every kind of forbidden import, naming the file and line', () => {
    // Prepare: one file per rule, each with one allowed and one forbidden import.
    const handlers = new Set(['eod-load', 'ipo-scan']);
    const sources = new Map([
      [
        'lambdas/eod-load/handler.ts',
        "import { x } from '../platform/config';\nimport { y } from '../ipo-scan/handler';\n",
      ],
      [
        'bin/commands/eod.ts',
        "import { z } from '../../lambdas/market/calendar';\nexport { h } from '../../lambdas/ipo-scan/handler';\n",
      ],
      [
        'lib/constructs/a.ts',
        "import { REPO_ROOT } from '../paths';\nimport { P } from '../../bin/paths';\n",
      ],
      ['localstack/stage.ts', "const m = await import('../bin/pipeline');\n"],
      [
        'lambdas/market/load.ts',
        "import '../../localstack/scenarios';\nimport { t } from '../../test/support/db';\n",
      ],
    ]);
    // Act
    const found = violations(sources, handlers);
    // Assess
    expect(found).toEqual([
      'lambdas/eod-load/handler.ts:2 imports lambdas/ipo-scan/handler: a handler folder imports another handler folder',
      'bin/commands/eod.ts:2 imports lambdas/ipo-scan/handler: the CLI imports a handler',
      'lib/constructs/a.ts:2 imports bin/paths: lib/ imports bin/',
      'localstack/stage.ts:1 imports bin/pipeline: localstack/ imports bin/',
      'lambdas/market/load.ts:1 imports localstack/scenarios: deployed code imports localstack/',
      'lambdas/market/load.ts:2 imports test/support/db: deployed code imports test/',
    ]);
  });

  it('has no forbidden import anywhere in the repository', () => {
    // Prepare
    const files = ROOTS.flatMap(tsFiles);
    const sources = new Map(
      files.map((f) => [relative(REPO_ROOT, join(REPO_ROOT, f)), readFileSync(join(REPO_ROOT, f), 'utf8')]),
    );
    // Act
    const found = violations(sources, repoHandlerFolders());
    // Assess: the scan saw the handlers and their imports, and none breaks a rule.
    expect(repoHandlerFolders().size).toBeGreaterThan(5);
    expect([...sources.keys()]).toContain('lambdas/health-etl/handler.ts');
    expect(found).toEqual([]);
  });
});
