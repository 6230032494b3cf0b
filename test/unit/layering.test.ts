/**
 * The layers, enforced on the import statements of every .ts/.tsx under
 * src/, steps/, screens/ and bin/ (parsed with TypeScript's own parser, so
 * type-only imports, re-exports and import() are all seen):
 *
 *   bin/            the entry point: wires everything; loads the wizard lazily
 *   screens/        Ink + React; runs no process, touches no file or network
 *   steps/          one module per step; no UI, no command-line layer
 *   src/cli/        the commands (composition root): may use steps/
 *   src/ (the rest) engine, system, pve, ssh, report: never steps/ or src/cli/
 *
 * React and Ink stay in screens/, so the engine and the steps run headless
 * (apply, check, docs) without loading them, and the wizard's screens can be
 * tested without a node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const LAYERS = ['src', 'steps', 'screens', 'bin'];

export interface ImportEdge {
  /** The importing file, relative to the repository, with / separators. */
  from: string;
  /** As written. */
  specifier: string;
  /** The file imported, relative to the repository, for a relative specifier; else the package or node: builtin. */
  target: string;
  /** `import type`, `export type`, or `typeof import(...)`: nothing loads at run time. */
  typeOnly: boolean;
  /** `import(...)`: loaded when the code runs, not when the module loads. */
  lazy: boolean;
  line: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(rel);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** Every import of one file; an import() whose argument is not a string literal is reported with target '?'. */
export function importsOf(from: string, text: string): ImportEdge[] {
  const source = ts.createSourceFile(from, text, ts.ScriptTarget.Latest, true, from.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (specifierNode: ts.Node | undefined, node: ts.Node, typeOnly: boolean, lazy: boolean) => {
    const specifier = specifierNode && ts.isStringLiteralLike(specifierNode) ? specifierNode.text : '?';
    const target = specifier.startsWith('.') ? path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier)) : specifier.replace(/^node:/, '');
    edges.push({ from, specifier, target, typeOnly, lazy, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      // Only `import type` surely loads nothing: `import { type A }` may be kept as a bare import.
      add(node.moduleSpecifier, node, !!node.importClause?.isTypeOnly, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node, node.isTypeOnly, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node, node.isTypeOnly, false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], node, false, true);
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
      add(node.arguments[0], node, false, false);
    } else if (ts.isImportTypeNode(node)) {
      add(ts.isLiteralTypeNode(node.argument) ? node.argument.literal : undefined, node, true, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

const UI_PACKAGE = /^(react|ink)(\/|$)|^(ink|react)-/;
/** What screens/ must not import: processes, files, network, and the modules that wrap them. */
const SCREENS_FORBIDDEN = new Set(['child_process', 'fs', 'fs/promises', 'net', 'dgram', 'http', 'https', 'http2', 'tls', 'execa', 'ssh2', 'src/system/exec.ts', 'src/system/files.ts']);
/** The one module bin/ may load from screens/, and only lazily. */
const WIZARD_ENTRY = 'screens/wizard.tsx';

const under = (file: string, dir: string) => file === dir || file.startsWith(`${dir}/`);
const at = (e: ImportEdge) => `${e.from}:${e.line} imports ${e.specifier}`;

/** Each import that breaks a layer rule, with the rule it breaks. */
export function violations(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    if (e.target === '?') out.push(`${at(e)}: an import() of a computed name cannot be checked; import a string literal`);
    if (UI_PACKAGE.test(e.target) && !under(e.from, 'screens')) out.push(`${at(e)}: React and Ink belong in screens/ only`);
    if (under(e.from, 'screens')) {
      if (SCREENS_FORBIDDEN.has(e.target)) out.push(`${at(e)}: screens/ runs no process and touches no file or network; the entry point passes in what a screen needs`);
      if (under(e.target, 'src/cli') || under(e.target, 'steps') || under(e.target, 'bin')) out.push(`${at(e)}: screens/ is told what it shows (by events and options), it imports no command or step`);
    }
    if (under(e.target, 'screens') && !under(e.from, 'screens')) {
      const lazyWizard = under(e.from, 'bin') && e.target === WIZARD_ENTRY && (e.lazy || e.typeOnly);
      if (!lazyWizard) out.push(`${at(e)}: only bin/ loads the screens, and only ${WIZARD_ENTRY} through import(), so headless commands never load React`);
    }
    if (under(e.from, 'steps') && (under(e.target, 'src/cli') || under(e.target, 'bin'))) out.push(`${at(e)}: a step gets what it needs through its context, never from the command-line layer`);
    if (under(e.from, 'src') && !under(e.from, 'src/cli')) {
      if (under(e.target, 'steps')) out.push(`${at(e)}: src/ (but src/cli) never imports steps/; steps are handed in`);
      if (under(e.target, 'src/cli') || under(e.target, 'bin')) out.push(`${at(e)}: src/ (but src/cli) never imports the command-line layer; versions and exit codes are passed in`);
    }
  }
  return out;
}

const files = LAYERS.flatMap(sourceFiles);
const edges = files.flatMap((file) => importsOf(file, readFileSync(path.join(ROOT, file), 'utf8')));

test('the layer rules hold for every import in src/, steps/, screens/ and bin/', () => {
  assert.ok(files.length > 40 && files.some((f) => under(f, 'screens')) && files.some((f) => under(f, 'steps')), `found ${files.length} source files`);
  assert.deepEqual(violations(edges), []);
});

test('the entry point loads the wizard lazily, so headless commands never load React', () => {
  const wizard = edges.filter((e) => e.from.startsWith('bin/') && e.target === WIZARD_ENTRY && !e.typeOnly);
  assert.ok(wizard.length > 0, 'bin/ loads the wizard');
  assert.ok(wizard.every((e) => e.lazy), wizard.map(at).join('\n'));
});

test('every relative import names a file that exists', () => {
  const missing = edges.filter((e) => e.specifier.startsWith('.') && !files.includes(e.target) && !e.target.endsWith('.json'));
  assert.deepEqual(missing.map(at), []);
});

test('the rules catch each kind of leak (the checker itself)', () => {
  const leak = (from: string, text: string) => violations(importsOf(from, text));
  assert.match(leak('src/engine/x.ts', "import { useState } from 'react';").join(), /React and Ink belong in screens/);
  assert.match(leak('steps/x.ts', "import type { Key } from 'ink';").join(), /React and Ink belong in screens/);
  assert.match(leak('steps/x.ts', "import SelectInput from 'ink-select-input';").join(), /React and Ink/);
  assert.match(leak('screens/X.tsx', "import { readFileSync } from 'node:fs';").join(), /runs no process/);
  assert.match(leak('screens/X.tsx', "import { execa } from 'execa';").join(), /runs no process/);
  assert.match(leak('screens/X.tsx', "import { Client } from 'ssh2';").join(), /runs no process/);
  assert.match(leak('screens/a/X.tsx', "import { LocalExec } from '../../src/system/exec.ts';").join(), /runs no process/);
  assert.match(leak('screens/X.tsx', "export { LocalFiles } from '../src/system/files.ts';").join(), /runs no process/);
  assert.match(leak('screens/X.tsx', "import { EXIT } from '../src/cli/args.ts';").join(), /imports no command or step/);
  assert.match(leak('src/report/x.ts', "import { breakGlassStep } from '../../steps/break-glass.ts';").join(), /never imports steps/);
  assert.match(leak('src/engine/x.ts', "const m = await import('../../steps/index.ts');").join(), /never imports steps/);
  assert.match(leak('src/engine/x.ts', "import type { Runtime } from '../cli/runtime.ts';").join(), /command-line layer/);
  assert.match(leak('steps/x.ts', "import { version } from '../src/cli/version.ts';").join(), /through its context/);
  assert.match(leak('bin/x.ts', "import { runWizard } from '../screens/wizard.tsx';").join(), /only .* through import\(\)/);
  assert.match(leak('bin/x.ts', "const ui = import('../screens/App.tsx');").join(), /only bin\/ loads the screens/);
  assert.match(leak('src/cli/x.ts', "const ui = import('../../screens/wizard.tsx');").join(), /only bin\/ loads the screens/);
  assert.match(leak('src/engine/x.ts', 'const m = await import(name);').join(), /computed name/);
  // What is allowed stays allowed.
  assert.deepEqual(leak('bin/x.ts', "const ui = import('../screens/wizard.tsx'); type W = typeof import('../screens/wizard.tsx');"), []);
  assert.deepEqual(leak('src/cli/x.ts', "import { CATALOGUE } from '../../steps/index.ts';"), []);
  assert.deepEqual(leak('screens/X.tsx', "import { Box } from 'ink'; import type { RunnerEvent } from '../src/engine/events.ts';"), []);
  assert.deepEqual(leak('steps/x.ts', "import { runChecked } from '../src/system/exec.ts';"), []);
});
