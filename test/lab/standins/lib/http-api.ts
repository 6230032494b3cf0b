/**
 * The lab's HTTP API (/api2/json), served by the pvedaemon stand-in behind
 * the pveproxy one: pve-manager PVE/HTTPServer.pm auth_handler (tickets,
 * CSRF tokens, API tokens), API2/AccessControl.pm create_ticket with its
 * "authentication failure; rhost=..." log line, permission checks as
 * PVE::RPCEnvironment words them, and the method table of lib/api.ts (the
 * one pvesh and pveum use) for the rest. Responses as pve-http-server's JSON
 * formatter writes them: {"data": ...}, errors as status line plus
 * {"data":null,"message":...,"errors":...}.
 */
import { msg } from '../../../../src/pve/messages.ts';
import { splitTokenid } from '../../../../src/pve/names.ts';
import { effectivePermissions, hasAnyPrivilege, hasPrivileges, privilegeMap, privObject } from '../../../../src/pve/permissions.ts';
import type { UserCfg } from '../../../../src/pve/user-cfg.ts';
import { API, PVE_VERSION, type ApiMethod, type HttpMethod } from './api.ts';
import { AuthError, checkUserEnabled, createTicket, syslog, verifyCsrf, verifyTicketData, verifyToken } from './auth.ts';
import { callContext } from './guests.ts';
import { nodename, readFile, readUserCfg, writeFile } from './pmxcfs.ts';
import { coerce, PveError, validateParams, type Params } from './schema.ts';

export interface ApiRequest {
  method: string;
  /** the path after /api2/json, e.g. /nodes */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** the client's address as pveproxy passed it (PVEClientIP) */
  clientIp: string;
}

export interface ApiResponse {
  status: number;
  /** the HTTP reason phrase: Proxmox puts its error message there */
  reason: string;
  body: string;
  /** who was authenticated, for pveproxy's access log */
  userid?: string;
  /** pve-http-server delays answers to failed authentication by 3 s */
  delayMs?: number;
}

const ok = (data: unknown, userid?: string): ApiResponse => ({ status: 200, reason: 'OK', body: JSON.stringify({ data: data ?? null }), userid });

function failure(status: number, message: string, extra: { errors?: Record<string, string>; userid?: string; delayMs?: number } = {}): ApiResponse {
  const reason = message.split('\n')[0]!.trim() || String(status);
  const body: Record<string, unknown> = { data: null, message: message.endsWith('\n') ? message : `${message}\n` };
  if (extra.errors) body.errors = extra.errors;
  return { status, reason, body: JSON.stringify(body), userid: extra.userid, delayMs: extra.delayMs };
}

const header = (h: ApiRequest['headers'], name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/** PVE::APIServer::Formatter::extract_auth_value: "NAME=value" in a cookie or an Authorization header */
function extractAuthValue(text: string | undefined, name: string): string | undefined {
  if (!text) return undefined;
  const m = new RegExp(`(?:^|[\\s;])${name}(?:=|:)\\s*([^;]*)`).exec(text);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!.trim());
  } catch {
    return m[1]!.trim();
  }
}

function readParams(req: ApiRequest): Params {
  const out: Params = {};
  for (const [k, v] of req.query) out[k] = v;
  const ct = header(req.headers, 'content-type') ?? '';
  const text = req.body.toString('utf8');
  if (text.length) {
    if (ct.startsWith('application/json')) {
      const j = JSON.parse(text) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j)) out[k] = typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : String(v);
    } else for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// permissions (PVE::RPCEnvironment check / raise_perm_exc)

class PermError extends Error {}
const permDenied = (what: string): never => {
  throw new PermError(msg.permissionCheckFailed(what));
};

function checkPerm(cfg: UserCfg, authid: string, path: string, privs: string[], any = false): void {
  const okay = any ? hasAnyPrivilege(cfg, authid, path, privs) : hasPrivileges(cfg, authid, path, privs);
  if (!okay) permDenied(`${path}, ${privs.join('|')}`);
}

const isToken = (authid: string) => authid.includes('!');
const ownerOf = (authid: string) => splitTokenid(authid)?.[0] ?? authid;

type Check = (cfg: UserCfg, authid: string, p: Params) => void;

const all: Check = () => {};
const rootOnly: Check = (_cfg, authid) => {
  if (authid !== 'root@pam') permDenied('root@pam only in the lab');
};
/** allowtoken => 0, then ['or', ['userid-param', 'self'], ['userid-group', ['User.Modify']]] */
const tfaCheck: Check = (cfg, authid, p) => {
  if (isToken(authid)) throw new PveError('API tokens cannot access this API endpoint\n', { code: 403 });
  if (p.userid !== undefined && String(p.userid) === authid) return;
  if (p.userid === undefined && authid === 'root@pam') return;
  checkPerm(cfg, authid, '/access/groups', ['User.Modify']);
};

/**
 * ['userid-group', ['User.Modify']] simplified to User.Modify on /access/groups
 * (RPCEnvironment also accepts it on a group the user is in).
 */
const userSelfOrModify: Check = (cfg, authid, p) => {
  if (p.userid !== undefined && String(p.userid) === authid) return;
  checkPerm(cfg, authid, '/access/groups', ['User.Modify']);
};
/** check => ['perm', '/vms/{vmid}', [PRIV]] */
const vmPerm =
  (priv: string): Check =>
  (cfg, authid, p) =>
    checkPerm(cfg, authid, `/vms/${p.vmid}`, [priv]);
/** check => ['perm', '/pool/{poolid}', [PRIV]] */
const poolPerm =
  (priv: string): Check =>
  (cfg, authid, p) =>
    checkPerm(cfg, authid, `/pool/${p.poolid}`, [priv]);

/** the permission of each method the HTTP API serves (their register_method permissions) */
const CHECKS: Record<string, Check> = {
  'GET /version': all,
  'GET /nodes': all,
  'GET /access/domains': all,
  'GET /access/tfa': tfaCheck,
  'GET /access/tfa/{userid}': tfaCheck,
  'GET /access/tfa/{userid}/{id}': tfaCheck,
  'POST /access/tfa/{userid}': tfaCheck,
  'DELETE /access/tfa/{userid}/{id}': tfaCheck,
  'PUT /access/users/{userid}/unlock-tfa': (cfg, authid) => checkPerm(cfg, authid, '/access/groups', ['User.Modify']),
  'POST /access/users': (cfg, authid, p) => {
    const realm = String(p.userid ?? '').split('@')[1] ?? '';
    checkPerm(cfg, authid, `/access/realm/${realm}`, ['Realm.AllocateUser']);
    checkPerm(cfg, authid, '/access/groups', ['User.Modify']);
  },
  // User.pm token methods: ['or', ['userid-param', 'self'], ['userid-group', ['User.Modify']]]
  'GET /access/users/{userid}/token': userSelfOrModify,
  'GET /access/users/{userid}/token/{tokenid}': userSelfOrModify,
  'POST /access/users/{userid}/token/{tokenid}': userSelfOrModify,
  'PUT /access/users/{userid}/token/{tokenid}': userSelfOrModify,
  'DELETE /access/users/{userid}/token/{tokenid}': userSelfOrModify,
  // qemu-server API2/Qemu.pm: vmlist filters by VM.Audit itself; the rest check /vms/{vmid}
  'GET /nodes/{node}/qemu': all,
  'GET /nodes/{node}/qemu/{vmid}/config': vmPerm('VM.Audit'),
  'GET /nodes/{node}/qemu/{vmid}/status/current': vmPerm('VM.Audit'),
  'POST /nodes/{node}/qemu/{vmid}/status/start': vmPerm('VM.PowerMgmt'),
  'POST /nodes/{node}/qemu/{vmid}/status/stop': vmPerm('VM.PowerMgmt'),
  'POST /nodes/{node}/qemu/{vmid}/status/shutdown': vmPerm('VM.PowerMgmt'),
  'POST /nodes/{node}/qemu/{vmid}/status/reboot': vmPerm('VM.PowerMgmt'),
  'POST /nodes/{node}/qemu/{vmid}/vncproxy': vmPerm('VM.Console'),
  // pve-manager API2/Cluster.pm resources: user => 'all', filtered per entry
  'GET /cluster/resources': all,
  // pve-manager API2/Pool.pm
  'GET /pools': all,
  'GET /pools/{poolid}': poolPerm('Pool.Audit'),
  'POST /pools': poolPerm('Pool.Allocate'),
  'PUT /pools': poolPerm('Pool.Allocate'),
  'PUT /pools/{poolid}': poolPerm('Pool.Allocate'),
  'DELETE /pools': poolPerm('Pool.Allocate'),
  'DELETE /pools/{poolid}': poolPerm('Pool.Allocate'),
};

// ---------------------------------------------------------------------------
// methods only the HTTP API has (pve-manager API2/Nodes.pm, NodeConfig.pm, Cluster.pm; AccessControl.pm permissions)

function nodeConfigPath(node: string): string {
  return `nodes/${node}/config`;
}

const httpOnly: (ApiMethod & { check: Check })[] = [
  {
    name: 'set_options',
    path: '/nodes/{node}/config',
    method: 'PUT',
    description: 'Set node configuration options.',
    parameters: {
      node: { type: 'string', format: 'pve-node' },
      description: { type: 'string', optional: true, maxLength: 64 * 1024 },
      delete: { type: 'string', optional: true },
      digest: { type: 'string', optional: true, maxLength: 40 },
    },
    returns: { type: 'null' },
    check: (cfg, authid, p) => checkPerm(cfg, authid, `/nodes/${p.node}`, ['Sys.Modify']),
    handler: (p) => {
      if (String(p.node) !== nodename()) throw new PveError(`no such node '${p.node}'\n`);
      const desc = p.description !== undefined && !String(p.delete ?? '').split(/[,; ]/).includes('description') ? String(p.description) : undefined;
      const old = (readFile(nodeConfigPath(String(p.node))) ?? '').split('\n').filter((l) => l && !l.startsWith('#'));
      const lines = desc !== undefined ? desc.split('\n').map((l) => `#${encodeURIComponent(l).replace(/%20/g, ' ')}`) : [];
      writeFile(nodeConfigPath(String(p.node)), [...lines, ...old].map((l) => `${l}\n`).join(''));
      return null;
    },
  },
  {
    name: 'get_config',
    path: '/nodes/{node}/config',
    method: 'GET',
    description: 'Get node configuration options.',
    parameters: { node: { type: 'string', format: 'pve-node' } },
    returns: { type: 'object' },
    check: (cfg, authid, p) => checkPerm(cfg, authid, `/nodes/${p.node}`, ['Sys.Audit']),
    handler: (p) => {
      const raw = readFile(nodeConfigPath(String(p.node))) ?? '';
      const desc = raw
        .split('\n')
        .filter((l) => l.startsWith('#'))
        .map((l) => decodeURIComponent(l.slice(1)))
        .join('\n');
      return desc ? { description: desc } : {};
    },
  },
  {
    name: 'permissions',
    path: '/access/permissions',
    method: 'GET',
    description: 'Retrieve effective permissions of given user/token.',
    parameters: { userid: { type: 'string', optional: true }, path: { type: 'string', optional: true } },
    returns: { type: 'object' },
    check: all,
    handler: () => ({}),
  },
];

function permissionsFor(cfg: UserCfg, authid: string, p: Params): unknown {
  const userid = p.userid !== undefined ? String(p.userid) : authid;
  if (userid !== authid && ownerOf(userid) !== authid) checkPerm(cfg, authid, '/access', ['Sys.Audit']);
  if (p.path) return { [String(p.path)]: privObject(privilegeMap(cfg, userid, String(p.path))) };
  return effectivePermissions(cfg, userid);
}

// ---------------------------------------------------------------------------

function findMethod(method: HttpMethod, path: string): { info: ApiMethod; uriParams: Record<string, string>; check: Check } | undefined {
  const parts = path.split('/').filter(Boolean);
  for (const m of [...httpOnly, ...API]) {
    if (m.method !== method) continue;
    const t = m.path.split('/').filter(Boolean);
    if (t.length !== parts.length) continue;
    const uriParams: Record<string, string> = {};
    if (
      t.every((seg, i) => {
        const v = /^\{(.+)\}$/.exec(seg);
        if (v) uriParams[v[1]!] = decodeURIComponent(parts[i]!);
        return v !== null || seg === parts[i];
      })
    ) {
      const check = 'check' in m ? (m as { check: Check }).check : (CHECKS[`${method} ${m.path}`] ?? rootOnly);
      return { info: m, uriParams, check };
    }
  }
  return undefined;
}

/** create_ticket: every failure logged at err with the client's address, answered 401 "authentication failure" */
function ticket(req: ApiRequest, p: Params): ApiResponse {
  let username = String(p.username ?? '');
  if (p.realm) username += `@${p.realm}`;
  try {
    if (p.password === undefined) throw new AuthError('no password');
    checkUserEnabled(readUserCfg(), username);
    const res = createTicket(username, String(p.password), p.otp !== undefined ? String(p.otp) : undefined, p['tfa-challenge'] !== undefined ? String(p['tfa-challenge']) : undefined, req.clientIp);
    return ok(res, res.NeedTFA ? undefined : res.username);
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/\n+$/, '') : String(err);
    syslog('err', `authentication failure; rhost=${req.clientIp} user=${username} msg=${reason}`);
    return failure(401, 'authentication failure');
  }
}

export function handleApi(req: ApiRequest): ApiResponse {
  const method = req.method.toUpperCase() as HttpMethod;
  const rel = `/${req.path.split('/').filter(Boolean).join('/')}`;
  let params: Params;
  try {
    params = readParams(req);
  } catch {
    return failure(400, 'unable to parse request body');
  }

  if (rel === '/access/ticket' && method === 'POST') return ticket(req, params);
  if (rel === '/access/ticket' && method === 'GET') return ok(null);

  // auth_handler
  const cookieTicket = extractAuthValue(header(req.headers, 'cookie'), 'PVEAuthCookie');
  const authHeader = header(req.headers, 'authorization');
  const ticketValue = cookieTicket ?? extractAuthValue(authHeader, 'PVEAuthCookie');
  const apiToken = ticketValue ? undefined : extractAuthValue(authHeader, 'PVEAPIToken');
  const noAuth = rel === '/access/domains' && method === 'GET';
  let authid = '';
  if (!noAuth) {
    try {
      if (apiToken) authid = verifyToken(apiToken);
      else {
        if (!ticketValue) return failure(401, 'No ticket', { delayMs: 3000 });
        const data = verifyTicketData(ticketValue);
        if (data === null) throw new AuthError('permission denied - invalid PVE ticket');
        if (data.startsWith('!tfa!')) return failure(401, 'No ticket', { delayMs: 3000 });
        checkUserEnabled(readUserCfg(), data);
        authid = data;
      }
    } catch (err) {
      // HTTPServer.pm: warn "authentication failure: $err", then "Authentication failed!"
      syslog('warning', `authentication failure: ${err instanceof Error ? err.message.replace(/\n+$/, '') : String(err)}`);
      return failure(401, 'Authentication failed!', { delayMs: 3000 });
    }
    if (method !== 'GET' && !apiToken && !verifyCsrf(authid, header(req.headers, 'csrfpreventiontoken'))) {
      return failure(401, 'Permission denied - invalid csrf token', { userid: authid });
    }
  }

  const found = findMethod(method, rel);
  if (!found) {
    return failure(501, `Method '${method} ${rel}' not implemented`, { userid: authid || undefined });
  }
  const { info, uriParams } = found;
  const call: Params = { ...params, ...uriParams };
  try {
    validateParams(call, info.parameters);
    const p = coerce(call, info.parameters);
    const cfg = readUserCfg();
    if (!noAuth) found.check(cfg, authid, p);
    let data: unknown;
    if (info.path === '/access/permissions' && info.method === 'GET') data = permissionsFor(cfg, authid, p);
    else if (info.path === '/version') data = { ...PVE_VERSION };
    else data = info.handler(p, callContext(authid, cfg));
    return ok(data, authid || undefined);
  } catch (err) {
    if (err instanceof PermError) return failure(403, err.message, { userid: authid });
    if (err instanceof PveError) return failure(err.code ?? 500, err.message, { errors: err.errors, userid: authid });
    return failure(500, err instanceof Error ? err.message : String(err), { userid: authid });
  }
}
