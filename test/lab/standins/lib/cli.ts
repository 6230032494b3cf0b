/**
 * PVE::CLIHandler and PVE::JSONSchema::get_options (pve-common): command
 * trees with aliases and unique-prefix expansion, Getopt::Long option parsing
 * (`-opt` and `--opt`, `--opt=value`, unique abbreviations, case-insensitive,
 * options anywhere, `--` ends them), booleans, lists, positional arguments,
 * interactive passwords, usage strings, and Proxmox's error output with exit
 * status 255.
 */
import { readSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { DIE_EXIT_CODE, msg } from '../../../../src/pve/messages.ts';
import { badRequest, coerce, OUTPUT_OPTIONS, parseBoolean, PveError, validateParams, type Params, type Prop } from './schema.ts';
import { formatApiResult, type FormatOptions } from './format.ts';
import type { ApiMethod } from './api.ts';

export interface Command {
  method: ApiMethod;
  /** positional parameters, in order */
  args?: string[];
  /** preset parameters (not settable from the command line) */
  fixed?: Params;
  /** print the result with print_api_result and accept the standard output options */
  output?: boolean;
  /** custom printer (pveum's $print_perm_result and friends) */
  print?: (result: unknown, method: ApiMethod, fmt: FormatOptions) => string;
  /** parameters read interactively (PVE::PTY) when not given */
  interactive?: string[];
}

export type CmdTree = { [name: string]: Command | CmdTree | { alias: string } };

const isAlias = (d: unknown): d is { alias: string } => !!d && typeof d === 'object' && 'alias' in (d as object);
const isCommand = (d: unknown): d is Command => !!d && typeof d === 'object' && 'method' in (d as object);

// ---------------------------------------------------------------------------
// usage strings (getopt_usage 'short')

function commandProps(cmd: Command): Record<string, Prop> {
  return { ...cmd.method.parameters, ...(cmd.output ? OUTPUT_OPTIONS : {}) };
}

export function usageShort(prefix: string, cmd: Command): string {
  const params = cmd.method.parameters;
  const argsList = cmd.args ?? [];
  const parts: string[] = argsList.filter((a) => params[a]).map((a) => (params[a]!.optional ? `[<${a}>]` : `<${a}>`));
  let hasOptions = false;
  for (const k of Object.keys(params).sort()) {
    if (argsList.includes(k) || cmd.fixed?.[k] !== undefined) continue;
    if (k === 'password' && cmd.interactive?.includes(k) && !params[k]!.optional) continue;
    hasOptions = true;
    if (!params[k]!.optional) parts.push(`--${k} <${params[k]!.type}>`);
  }
  let out = `${prefix} ${parts.join(' ')}`;
  if (hasOptions) out += ' [OPTIONS]';
  if (cmd.output) out += ' [FORMAT_OPTIONS]';
  return `${out}\n`;
}

function allUsages(exe: string, tree: CmdTree, prefix = exe): string[] {
  const out: string[] = [];
  for (const name of Object.keys(tree).sort()) {
    const d = tree[name];
    if (isAlias(d)) continue;
    if (isCommand(d)) out.push(`       ${usageShort(`${prefix} ${name}`, d)}`);
    else out.push(...allUsages(exe, d as CmdTree, `${prefix} ${name}`));
  }
  return out;
}

function abort(exe: string, tree: CmdTree, reason: string, prefix = exe): never {
  process.stderr.write(`${msg.errorPrefix(reason)}\n${msg.usageHeader(exe)}\n${allUsages(exe, tree, prefix).join('')}`);
  process.exit(DIE_EXIT_CODE);
}

// ---------------------------------------------------------------------------
// resolve_cmd

function expand(def: CmdTree, word: string): string | undefined {
  if (word in def) return word;
  const hits = Object.keys(def).filter((k) => k.startsWith(word) && !isAlias(def[k]));
  return hits.length === 1 ? hits[0] : undefined;
}

export function resolveCmd(exe: string, tree: CmdTree, argv: string[]): { def: Command | CmdTree | undefined; args: string[]; cmdStr: string } {
  let def: CmdTree | Command | undefined = tree;
  let cmdStr = exe;
  for (let i = 0; i < argv.length; i++) {
    const cur = def as CmdTree;
    const word = expand(cur, argv[i]!) ?? argv[i]!;
    cmdStr += ` ${word}`;
    const next: CmdTree[string] | undefined = Object.prototype.hasOwnProperty.call(cur, word) ? cur[word] : undefined;
    if (next === undefined) return { def: undefined, args: argv.slice(i + 1), cmdStr };
    if (isAlias(next)) {
      const spliced = [...argv.slice(0, i), ...next.alias.split(/ +/), ...argv.slice(i + 1)];
      return resolveCmd(exe, tree, spliced);
    }
    if (isCommand(next)) return { def: next, args: argv.slice(i + 1), cmdStr };
    def = next;
  }
  return { def, args: [], cmdStr };
}

// ---------------------------------------------------------------------------
// Getopt::Long

function looksLikeOption(a: string): boolean {
  return /^--?./.test(a);
}

export function getOptions(props: Record<string, Prop>, argv: string[], cmd: Command): Params {
  const argParams = cmd.args ?? [];
  const names = Object.keys(props).filter((k) => !argParams.includes(k) && cmd.fixed?.[k] === undefined);
  const interactive = new Set(cmd.interactive ?? []);
  const kind = (k: string): 'optional' | 'list' | 'required' =>
    interactive.has(k) || props[k]!.type === 'boolean' ? 'optional' : /-a?list/.test(props[k]!.format ?? '') ? 'list' : 'required';

  const opts: Record<string, string | string[]> = {};
  const positional: string[] = [];
  const warnings: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(a);
    if (!m || a === '-') {
      positional.push(a);
      continue;
    }
    const typed = m[1]!;
    const lower = typed.toLowerCase();
    let name = names.find((n) => n.toLowerCase() === lower);
    if (!name) {
      const hits = names.filter((n) => n.toLowerCase().startsWith(lower));
      if (hits.length > 1) {
        warnings.push(msg.getoptAmbiguous(typed, hits.sort()));
        continue;
      }
      name = hits[0];
    }
    if (!name) {
      warnings.push(msg.getoptUnknown(typed));
      continue;
    }
    let value = m[2];
    const k = kind(name);
    if (value === undefined) {
      const next = argv[i + 1];
      if (k === 'optional') {
        if (next !== undefined && !looksLikeOption(next)) {
          value = next;
          i++;
        } else value = '';
      } else if (next !== undefined) {
        value = next;
        i++;
      } else {
        warnings.push(msg.getoptRequiresArgument(name));
        continue;
      }
    }
    if (k === 'list') opts[name] = [...((opts[name] as string[] | undefined) ?? []), value];
    else opts[name] = value;
  }
  if (warnings.length) {
    for (const w of warnings) process.stderr.write(`${w}\n`);
    badRequest(msg.unableToParseOption());
  }

  const params: Params = {};
  let rest = positional;
  if (argParams.length) {
    for (let i = 0; i < argParams.length; i++) {
      if (rest.length === 0) {
        // left-over positional parameters must all be optional, else the mapping is ambiguous
        for (const p of argParams.slice(i)) if (!props[p]?.optional) badRequest(msg.notEnoughArguments());
        break;
      }
      params[argParams[i]!] = rest[0];
      rest = rest.slice(1);
    }
  }
  if (rest.length) badRequest(msg.tooManyArguments());

  for (const [k, v] of Object.entries(opts)) params[k] = Array.isArray(v) ? v.join(',') : v;

  for (const k of interactive) {
    const v = params[k];
    if (v !== undefined || !props[k]!.optional) params[k] = v ? String(v) : confirmedPassword();
    if (params[k] === undefined) delete params[k];
  }

  for (const [k, v] of Object.entries(params)) {
    if (props[k]?.type === 'boolean' && typeof v === 'string' && !interactive.has(k)) {
      if (v === '') params[k] = '1';
      else {
        const b = parseBoolean(v);
        if (b === undefined) badRequest(msg.unableToParseBoolean());
        params[k] = String(b);
      }
    }
  }
  for (const [k, v] of Object.entries(cmd.fixed ?? {})) params[k] = v;
  return params;
}

// ---------------------------------------------------------------------------
// PVE::PTY passwords

function readLine(): string | undefined {
  const buf = Buffer.alloc(1);
  let line = '';
  let got = false;
  for (;;) {
    let n = 0;
    try {
      n = readSync(0, buf, 0, 1, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      break;
    }
    if (n === 0) break;
    got = true;
    const c = buf.toString('latin1');
    if (c === '\n') return line;
    line += c;
  }
  return got ? line : undefined;
}

function readPassword(prompt: string): string | undefined {
  if (!process.stdin.isTTY) return readLine();
  process.stdout.write(prompt);
  spawnSync('stty', ['-echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
  try {
    return readLine();
  } finally {
    spawnSync('stty', ['echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
    process.stdout.write('\n');
  }
}

/** PVE::PTY::get_confirmed_password */
function confirmedPassword(): string | undefined {
  const pw1 = readPassword(msg.passwordPromptNew());
  const pw2 = readPassword(msg.passwordPromptRetype());
  if ((pw1 ?? '') !== (pw2 ?? '')) throw new PveError(`${msg.passwordsDoNotMatch()}\n`);
  return pw1;
}

// ---------------------------------------------------------------------------
// running a command

/** RESTHandler::cli_handler + handle: parse, validate, call, print */
export function runCommand(prefix: string, cmd: Command, argv: string[]): void {
  const props = commandProps(cmd);
  let result: unknown;
  const fmt: FormatOptions = {};
  try {
    const raw = getOptions(props, argv, cmd);
    if (cmd.output) {
      for (const k of Object.keys(OUTPUT_OPTIONS)) {
        if (raw[k] === undefined) continue;
        (fmt as Record<string, unknown>)[k] = OUTPUT_OPTIONS[k]!.type === 'boolean' ? Number(raw[k]) : raw[k];
        delete raw[k];
      }
      validateParams(Object.fromEntries(Object.entries(fmt).map(([k, v]) => [k, String(v)])), OUTPUT_OPTIONS);
    }
    validateParams(raw, cmd.method.parameters);
    result = cmd.method.handler(coerce(raw, cmd.method.parameters));
  } catch (err) {
    if (err instanceof PveError && err.isParamExc && !err.usage) err.usage = usageShort(prefix, cmd);
    throw err;
  }
  if (cmd.print) process.stdout.write(cmd.print(result, cmd.method, fmt));
  else if (cmd.output) process.stdout.write(formatApiResult(result, cmd.method.returns, fmt));
}

/** run_cli_handler: resolve the command line and run it; exits with Proxmox's status */
export function runCli(exe: string, tree: CmdTree, argv: string[]): never {
  try {
    if (argv.length === 0) abort(exe, tree, msg.noCommandSpecified());
    if (argv[0] === 'help') {
      const sub = argv.slice(1).filter((a) => !a.startsWith('-'));
      if (sub.length === 0) {
        process.stdout.write(`${msg.usageHeader(exe)}\n${allUsages(exe, tree).join('')}`);
      } else {
        const { def, cmdStr } = resolveCmd(exe, tree, sub);
        if (!def) abort(exe, tree, msg.unknownCommand(cmdStr));
        process.stdout.write(isCommand(def) ? `USAGE: ${usageShort(cmdStr, def)}` : `USAGE: ${allUsages(exe, def as CmdTree, cmdStr).join('').trimStart()}`);
      }
      process.exit(0);
    }
    const { def, args, cmdStr } = resolveCmd(exe, tree, argv);
    if (!def) abort(exe, tree, msg.unknownCommand(cmdStr));
    if (!isCommand(def)) abort(exe, def as CmdTree, msg.incompleteCommand(cmdStr), cmdStr);
    runCommand(cmdStr, def as Command, args);
    process.exit(0);
  } catch (err) {
    if (err instanceof PveError) process.stderr.write(err.stringify());
    else process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(DIE_EXIT_CODE);
  }
}
