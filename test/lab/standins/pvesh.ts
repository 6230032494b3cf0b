/**
 * pvesh stand-in (pve-manager PVE/CLI/pvesh.pm): get|set|create|delete map to
 * GET|PUT|POST|DELETE on the lab's API (lib/api.ts); the target method's
 * parameters become options, its return schema drives the output format.
 */
import { msg, DIE_EXIT_CODE } from '../../../src/pve/messages.ts';
import { findDir, findHandler, type ApiMethod, type HttpMethod } from './lib/api.ts';
import { runCommand, usageShort, type Command } from './lib/cli.ts';
import { die, PveError, type Prop } from './lib/schema.ts';

const METHODS: Record<string, HttpMethod> = { get: 'GET', set: 'PUT', create: 'POST', delete: 'DELETE' };

const API_PATH: Prop = { type: 'string', description: 'API path.' };
const NOPROXY: Prop = { type: 'boolean', optional: true, description: 'Disable automatic proxying.' };

function pathArg(argv: string[]): string | undefined {
  return argv.slice(1).find((a) => !a.startsWith('-'));
}

/** the method pvesh builds for "<cmd> <path>": target parameters minus the path's own, plus api_path */
function pveshCommand(cmd: string, argv: string[]): Command {
  const http = METHODS[cmd]!;
  const path = pathArg(argv);
  const found = path !== undefined ? findHandler(http, path) : undefined;
  const dir = http === 'GET' && path !== undefined && !found ? findDir(path) : undefined;
  const params: Record<string, Prop> = {};
  if (found) for (const [k, v] of Object.entries(found.info.parameters)) if (!(k in found.uriParams)) params[k] = v;
  params.api_path = API_PATH;
  params.noproxy = NOPROXY;
  const returns: Prop = found
    ? found.info.returns
    : dir
      ? { type: 'array', items: { type: 'object', properties: { subdir: { type: 'string' } } } }
      : { type: 'null' };
  const method: ApiMethod = {
    name: cmd,
    path: '',
    method: http,
    description: 'Call API on <api_path>.',
    parameters: params,
    returns,
    handler: (p) => {
      const apiPath = String(p.api_path);
      if (found) {
        const call = { ...p, ...found.uriParams };
        delete call.api_path;
        delete call.noproxy;
        return found.info.handler(call);
      }
      if (dir) return dir.children.map((subdir) => ({ subdir }));
      return die(msg.noHandler(cmd, apiPath));
    },
  };
  return { method, args: ['api_path'], output: true };
}

function ls(argv: string[]): void {
  const path = pathArg(argv) ?? '/';
  const dir = findDir(path);
  if (!dir) die(msg.noHandler('get', path));
  for (const name of dir!.children) {
    const child = `${path.replace(/\/+$/, '')}/${name}`;
    const has = (m: HttpMethod) => !!findHandler(m, child);
    const isDir = !!findDir(child);
    const perm = `${isDir ? 'D' : '-'}${has('GET') || isDir ? 'r' : '-'}${has('PUT') ? 'w' : '-'}${has('POST') ? 'c' : '-'}${has('DELETE') ? 'd' : '-'}`;
    process.stdout.write(`${perm}        ${name}\n`); // [derived] column layout
  }
}

function usage(): string {
  return [
    'USAGE: pvesh <COMMAND> [ARGS] [OPTIONS]',
    ...['create', 'delete', 'get', 'set'].map((c) => `       ${usageShort(`pvesh ${c}`, pveshCommand(c, [c, '/'])).trimEnd()}`),
    '       pvesh ls <api_path> [OPTIONS] [FORMAT_OPTIONS]',
    '       pvesh usage <api_path> [OPTIONS]',
    '',
  ].join('\n');
}

const argv = process.argv.slice(2);
try {
  const cmd = argv[0];
  if (cmd === undefined) {
    process.stderr.write(`${msg.errorPrefix(msg.noCommandSpecified())}\n${usage()}`);
    process.exit(DIE_EXIT_CODE);
  }
  if (cmd === 'help') {
    process.stdout.write(usage());
    process.exit(0);
  }
  if (cmd === 'ls') {
    ls(argv);
    process.exit(0);
  }
  if (!(cmd in METHODS)) {
    process.stderr.write(`${msg.errorPrefix(msg.unknownCommand(`pvesh ${cmd}`))}\n${usage()}`);
    process.exit(DIE_EXIT_CODE);
  }
  runCommand(`pvesh ${cmd}`, pveshCommand(cmd, argv), argv.slice(1));
  process.exit(0);
} catch (err) {
  process.stderr.write(err instanceof PveError ? err.stringify() : `${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(DIE_EXIT_CODE);
}

