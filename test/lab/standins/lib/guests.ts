/**
 * The lab's guests: QEMU VMs as Proxmox keeps them, one config file per VM
 * in /etc/pve/nodes/<node>/qemu-server/<vmid>.conf (qemu-server's format),
 * and a run state the stand-ins keep in /run/pve-lab/qemu/<vmid>.status
 * ("running" or "stopped", stopped when absent): there is no QEMU. The API
 * methods follow qemu-server PVE/API2/Qemu.pm (vmlist, vm_config, vm_status,
 * vm_start, vm_stop, vm_shutdown, vm_reboot, vncproxy) and pve-manager
 * PVE/API2/Cluster.pm (resources), each with its permission check done by the
 * caller's context (http-api.ts), as root@pam for pvesh/pveum.
 */
import { createHash, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem, uptime as hostUptime } from 'node:os';
import { join } from 'node:path';
import { msg } from '../../../../src/pve/messages.ts';
import { hasAnyPrivilege, hasPrivileges } from '../../../../src/pve/permissions.ts';
import type { UserCfg } from '../../../../src/pve/user-cfg.ts';
import type { ApiMethod } from './api.ts';
import { assembleRsaTicket } from './auth.ts';
import { ETC_PVE, nodename, readFile, readUserCfg } from './pmxcfs.ts';
import { die, opt, PveError, type Params, type Prop } from './schema.ts';

export const QEMU_STATE_DIR = process.env.PVE_LAB_QEMU_STATE ?? '/run/pve-lab/qemu';

/**
 * Who calls a method, and their permission checks (PVE::RPCEnvironment check
 * with and without noerr). pvesh and pveum run as root@pam.
 */
export interface CallContext {
  authid: string;
  cfg: UserCfg;
  /** $rpcenv->check($authid, $path, $privs, 1) (any = check_any) */
  can(path: string, privs: string[], any?: boolean): boolean;
  /** $rpcenv->check / check_any without noerr: 403 "Permission check failed (PATH, PRIV|PRIV)" */
  check(path: string, privs: string[], any?: boolean): void;
}

export function callContext(authid: string, cfg: UserCfg = readUserCfg()): CallContext {
  const can = (path: string, privs: string[], any = false) => (any ? hasAnyPrivilege(cfg, authid, path, privs) : hasPrivileges(cfg, authid, path, privs));
  return {
    authid,
    cfg,
    can,
    check: (path, privs, any = false) => {
      if (!can(path, privs, any)) throw new PveError(`${msg.permissionCheckFailed(`${path}, ${privs.join('|')}`)}\n`, { code: 403 });
    },
  };
}

/** RPCEnvironment check_perm_modify: Permissions.Modify, or the Allocate privilege of the path's kind */
export function checkPermModify(ctx: CallContext, path: string): void {
  const privs = ['Permissions.Modify'];
  if (/^\/storage\/.+$/.test(path)) privs.push('Datastore.Allocate');
  else if (/^\/vms\/.+$/.test(path)) privs.push('VM.Allocate');
  else if (/^\/pool\/.+$/.test(path)) privs.push('Pool.Allocate');
  ctx.check(path, privs, true);
}

// ---------------------------------------------------------------------------
// config files

/** PVE::QemuConfig cfs_config_path */
export const cfsConfigPath = (vmid: string | number, node = nodename()) => `nodes/${node}/qemu-server/${vmid}.conf`;

export interface VmListEntry {
  node: string;
  type: 'qemu';
}

/** PVE::Cluster::get_vmlist()->{ids}: every nodes/<node>/qemu-server/<vmid>.conf */
export function vmList(): Map<string, VmListEntry> {
  const out = new Map<string, VmListEntry>();
  let nodes: string[] = [];
  try {
    nodes = readdirSync(join(ETC_PVE, 'nodes'));
  } catch {
    return out;
  }
  for (const node of nodes.sort()) {
    let files: string[] = [];
    try {
      files = readdirSync(join(ETC_PVE, 'nodes', node, 'qemu-server'));
    } catch {
      continue;
    }
    for (const f of files) {
      const m = /^([1-9]\d{2,8})\.conf$/.exec(f);
      if (m && !out.has(m[1]!)) out.set(m[1]!, { node, type: 'qemu' });
    }
  }
  return out;
}

/** integer, number and boolean options as QemuServer::check_type returns them (the rest stay strings) [lab: the common keys only] */
const INTEGER_KEYS = new Set(['cores', 'sockets', 'vcpus', 'cpuunits', 'balloon', 'shares', 'startup-delay']);
const NUMBER_KEYS = new Set(['cpulimit', 'migrate_downtime']);
const BOOLEAN_KEYS = new Set(['onboot', 'protection', 'template', 'acpi', 'kvm', 'tablet', 'numa', 'freeze', 'localtime', 'reboot']);

/**
 * PVE::QemuServer::parse_vm_config, the main section only (snapshot and
 * [PENDING] sections end it): "key: value" lines, '#' lines (and
 * "description:") making the description, trailing space trimmed, and the
 * SHA1 digest of the whole file.
 */
export function parseQemuConfig(raw: string): Record<string, unknown> {
  const conf: Record<string, unknown> = {};
  let descr: string | undefined;
  for (const line of raw.split('\n')) {
    if (/^\s*$/.test(line)) continue;
    if (/^\[[^\]]*\]\s*$/.test(line)) break;
    let m = /^#(.*)$/.exec(line);
    if (m) {
      descr = `${descr ?? ''}${decodeText(m[1]!)}\n`;
      continue;
    }
    m = /^(description):\s*(.*\S)\s*$/.exec(line);
    if (m) {
      descr = `${descr ?? ''}${decodeText(m[2]!)}`;
      continue;
    }
    m = /^([a-z][a-z_-]*\d*):\s*(.+?)\s*$/.exec(line);
    if (!m) continue; // Proxmox warns "vm NNN - unable to parse config: LINE"
    const [key, value] = [m[1]!, m[2]!];
    if (INTEGER_KEYS.has(key) && /^-?\d+$/.test(value)) conf[key] = Number(value);
    else if (NUMBER_KEYS.has(key) && /^-?\d+(\.\d+)?$/.test(value)) conf[key] = Number(value);
    else if (BOOLEAN_KEYS.has(key) && /^(0|1|on|off|yes|no|true|false)$/i.test(value)) conf[key] = /^(1|on|yes|true)$/i.test(value) ? 1 : 0;
    else conf[key] = value;
  }
  if (descr !== undefined) conf.description = descr.replace(/\s+$/, '');
  conf.digest = createHash('sha1').update(raw).digest('hex');
  return conf;
}

/** PVE::Tools::decode_text (uri_unescape) */
function decodeText(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** PVE::AbstractConfig load_config: "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist" */
export function loadConfig(vmid: string | number, node = nodename()): Record<string, unknown> {
  const path = cfsConfigPath(vmid, node);
  const raw = readFile(path);
  if (raw === undefined) die(`Configuration file '${path}' does not exist`);
  return parseQemuConfig(raw!);
}

/** PVE::QemuConfig::assert_config_exists_on_node (guest_type "VM") */
function assertConfigExistsOnNode(vmid: string | number, node = nodename()): void {
  if (readFile(cfsConfigPath(vmid, node)) === undefined) die(`unable to find configuration file for VM ${vmid} on node '${node}'`);
}

// ---------------------------------------------------------------------------
// run state (no QEMU: a file per VM)

const statePath = (vmid: string | number) => join(QEMU_STATE_DIR, `${vmid}.status`);

export function vmRunning(vmid: string | number): boolean {
  try {
    return readFileSync(statePath(vmid), 'utf8').trim() === 'running';
  } catch {
    return false;
  }
}

function setVmState(vmid: string | number, state: 'running' | 'stopped'): void {
  mkdirSync(QEMU_STATE_DIR, { recursive: true });
  const tmp = `${statePath(vmid)}.tmp.${process.pid}`;
  writeFileSync(tmp, `${state}\n`);
  renameSync(tmp, statePath(vmid));
}

/** seconds since the VM was (re)started, from its state file */
function vmUptime(vmid: string | number): number {
  try {
    return Math.max(0, Math.floor((Date.now() - statSync(statePath(vmid)).mtimeMs) / 1000));
  } catch {
    return 0;
  }
}

/** QemuServer::get_current_memory: "memory: 2048" or "memory: current=2048", 512 MiB by default (load_defaults) */
function currentMemoryMiB(value: unknown): number {
  const m = /^(?:current=)?(\d+)/.exec(String(value ?? ''));
  return m ? Number(m[1]) : 512;
}

/**
 * One entry of PVE::QemuServer::vmstatus (not "full"): vmid, status, name,
 * cpus, maxmem, disk figures, uptime and zeroed counters (no QEMU to ask).
 */
export function vmStatus(vmid: string | number, conf: Record<string, unknown>): Record<string, unknown> {
  const running = vmRunning(vmid);
  let ncpus = (Number(conf.sockets) || 1) * (Number(conf.cores) || 1);
  ncpus = Math.min(ncpus, cpus().length || 1);
  if (conf.vcpus) ncpus = Number(conf.vcpus);
  const d: Record<string, unknown> = {
    vmid: Number(vmid),
    status: running ? 'running' : 'stopped',
    name: conf.name ? String(conf.name) : `VM ${vmid}`,
    cpus: ncpus,
    maxmem: currentMemoryMiB(conf.memory) * 1024 * 1024,
    disk: 0,
    maxdisk: 0,
    uptime: running ? vmUptime(vmid) : 0,
    cpu: 0,
    mem: 0,
    memhost: 0,
    netin: 0,
    netout: 0,
    diskread: 0,
    diskwrite: 0,
  };
  if (conf.template) d.template = 1;
  if (conf.lock) d.lock = conf.lock;
  if (conf.tags !== undefined) d.tags = conf.tags;
  return d;
}

/**
 * PVE::API2Tools::extract_vm_stats as pvestatd's RRD data would fill it on a
 * node (id "qemu/<vmid>", vmid, node, type, then name, status, uptime, ...).
 */
export function extractVmStats(vmid: string, entry: VmListEntry): Record<string, unknown> {
  const base: Record<string, unknown> = { id: `${entry.type}/${vmid}`, vmid: Number(vmid), node: entry.node, type: entry.type, status: 'unknown' };
  const raw = readFile(cfsConfigPath(vmid, entry.node));
  if (raw === undefined) return base;
  const s = vmStatus(vmid, parseQemuConfig(raw));
  return {
    ...base,
    uptime: s.uptime,
    name: s.name,
    status: s.status,
    template: s.template ? 1 : 0,
    maxcpu: s.cpus,
    cpu: 0,
    maxmem: s.maxmem,
    mem: 0,
    maxdisk: 0,
    disk: 0,
    netin: 0,
    netout: 0,
    diskread: 0,
    diskwrite: 0,
    memhost: 0,
  };
}

// ---------------------------------------------------------------------------
// tasks (PVE::RPCEnvironment fork_worker): the lab's workers finish at once

/** /proc/<pid>/stat field 22 (PVE::ProcFSTools::read_proc_starttime) */
function procStart(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) || 0;
  } catch {
    return 0;
  }
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/**
 * PVE::UPID::encode: "UPID:node:PID:PSTART:STARTTIME:type:id:user:". Proxmox
 * forks a worker per task; the lab forks none, so PID is a made-up worker pid
 * (unique per task) and PSTART the daemon's own start time.
 */
export function makeUpid(type: string, id: string, user: string): string {
  const pid = randomInt(1000, 4_194_304);
  return `UPID:${nodename()}:${hex8(pid)}:${hex8(procStart(process.pid))}:${hex8(Math.floor(Date.now() / 1000))}:${type}:${id}:${user}:`;
}

/** What a worker did, for the lab's eyes: one line per task in /run/pve-lab/qemu/tasks.log ("UPID OK" or "UPID ERROR: ...") */
function logTask(upid: string, error?: string): void {
  mkdirSync(QEMU_STATE_DIR, { recursive: true });
  writeFileSync(join(QEMU_STATE_DIR, 'tasks.log'), `${upid} ${error === undefined ? 'OK' : `ERROR: ${error}`}\n`, { flag: 'a' });
}

/** fork_worker: the UPID is returned whatever the worker does; its failure is only in the task's status */
function worker(type: string, vmid: string, ctx: CallContext, fn: () => void): string {
  const upid = makeUpid(type, vmid, ctx.authid);
  try {
    fn();
    logTask(upid);
  } catch (err) {
    logTask(upid, err instanceof Error ? err.message.trim() : String(err));
  }
  return upid;
}

// ---------------------------------------------------------------------------
// the API methods

const ROOT = (): CallContext => callContext('root@pam');

const nodeParam = (): Prop => opt.node();
const vmidParam = (): Prop => ({ type: 'integer', format: 'pve-vmid', minimum: 100, maximum: 999999999, description: 'The (unique) ID of the VM.' });

/** proxyto => 'node': a single-node lab answers for itself only */
function localNode(p: Params): string {
  const node = String(p.node);
  if (node !== nodename() && node !== 'localhost') die(`no such cluster node '${node}'`); // [derived] PVE::Cluster::remote_node_ip on a lone node
  return nodename();
}

const powerParams = (): Record<string, Prop> => ({
  node: nodeParam(),
  vmid: vmidParam(),
  skiplock: { type: 'boolean', optional: true, description: 'Ignore locks - only root is allowed to use this option.' },
  timeout: { type: 'integer', minimum: 0, optional: true, description: 'Wait maximal timeout seconds.' },
});

/** raise_param_exc({ skiplock => "Only root may use this option." }) for anyone but root@pam */
function rootOnlyParam(p: Params, ctx: CallContext, name: string): void {
  if (p[name] !== undefined && String(p[name]) !== '0' && ctx.authid !== 'root@pam') {
    throw new PveError('Parameter verification failed.\n', { code: 400, errors: { [name]: 'Only root may use this option.' } });
  }
}

export const guestMethods: ApiMethod[] = [
  {
    name: 'vmlist',
    path: '/nodes/{node}/qemu',
    method: 'GET',
    description: 'Virtual machine index (per node).',
    parameters: { node: nodeParam(), full: { type: 'boolean', optional: true, description: 'Determine the full status of active VMs.' } },
    returns: { type: 'array', items: { type: 'object', properties: { vmid: { type: 'integer' }, status: { type: 'string' }, name: { type: 'string', optional: true } } } },
    handler: (p, ctx = ROOT()) => {
      const node = localNode(p);
      const res: Record<string, unknown>[] = [];
      for (const [vmid, e] of [...vmList()].sort((a, b) => Number(a[0]) - Number(b[0]))) {
        if (e.node !== node) continue;
        // "Only list VMs where you have VM.Audit permissions on /vms/<vmid>."
        if (!ctx.can(`/vms/${vmid}`, ['VM.Audit'])) continue;
        res.push(vmStatus(vmid, loadConfig(vmid, node)));
      }
      return res;
    },
  },
  {
    name: 'vm_config',
    path: '/nodes/{node}/qemu/{vmid}/config',
    method: 'GET',
    description: 'Get the virtual machine configuration with pending configuration changes applied.',
    parameters: { node: nodeParam(), vmid: vmidParam(), current: { type: 'boolean', optional: true, default: 0 } },
    returns: { type: 'object' },
    handler: (p) => {
      const conf = loadConfig(String(p.vmid), localNode(p));
      if (conf.cipassword) conf.cipassword = '**********';
      return conf;
    },
  },
  {
    name: 'vm_status',
    path: '/nodes/{node}/qemu/{vmid}/status/current',
    method: 'GET',
    description: 'Get virtual machine status.',
    parameters: { node: nodeParam(), vmid: vmidParam() },
    returns: { type: 'object' },
    handler: (p) => {
      const vmid = String(p.vmid);
      const conf = loadConfig(vmid, localNode(p)); // "test if VM exists"
      const s = vmStatus(vmid, conf);
      // vmstatus($vmid, 1): the "full" fields QEMU would give
      if (s.status === 'running') s.qmpstatus = 'running';
      else s.qmpstatus = 'stopped';
      s.ha = { managed: 0 }; // PVE::HA::Config::get_service_status for an unmanaged guest
      return s;
    },
  },
  {
    name: 'vm_start',
    path: '/nodes/{node}/qemu/{vmid}/status/start',
    method: 'POST',
    description: 'Start virtual machine.',
    parameters: powerParams(),
    returns: { type: 'string' },
    handler: (p, ctx = ROOT()) => {
      rootOnlyParam(p, ctx, 'skiplock');
      const node = localNode(p);
      const vmid = String(p.vmid);
      return worker('qmstart', vmid, ctx, () => {
        // QemuServer::vm_start: load_config, then "VM $vmid already running"
        loadConfig(vmid, node);
        if (vmRunning(vmid)) die(`VM ${vmid} already running`);
        setVmState(vmid, 'running');
      });
    },
  },
  {
    name: 'vm_stop',
    path: '/nodes/{node}/qemu/{vmid}/status/stop',
    method: 'POST',
    description: 'Stop virtual machine.',
    parameters: { ...powerParams(), keepActive: { type: 'boolean', optional: true, default: 0 }, 'overrule-shutdown': { type: 'boolean', optional: true, default: 0 } },
    returns: { type: 'string' },
    handler: (p, ctx = ROOT()) => {
      rootOnlyParam(p, ctx, 'skiplock');
      rootOnlyParam(p, ctx, 'keepActive');
      const node = localNode(p);
      const vmid = String(p.vmid);
      return worker('qmstop', vmid, ctx, () => {
        loadConfig(vmid, node);
        setVmState(vmid, 'stopped');
      });
    },
  },
  {
    name: 'vm_shutdown',
    path: '/nodes/{node}/qemu/{vmid}/status/shutdown',
    method: 'POST',
    description: 'Shutdown virtual machine.',
    parameters: { ...powerParams(), forceStop: { type: 'boolean', optional: true, default: 0 }, keepActive: { type: 'boolean', optional: true, default: 0 } },
    returns: { type: 'string' },
    handler: (p, ctx = ROOT()) => {
      rootOnlyParam(p, ctx, 'skiplock');
      rootOnlyParam(p, ctx, 'keepActive');
      const node = localNode(p);
      const vmid = String(p.vmid);
      // vm_is_paused only warns about a missing config; the worker then fails on it
      return worker('qmshutdown', vmid, ctx, () => {
        loadConfig(vmid, node);
        setVmState(vmid, 'stopped');
      });
    },
  },
  {
    name: 'vm_reboot',
    path: '/nodes/{node}/qemu/{vmid}/status/reboot',
    method: 'POST',
    description: 'Reboot the VM by shutting it down, and starting it again. Applies pending changes.',
    parameters: { node: nodeParam(), vmid: vmidParam(), timeout: { type: 'integer', minimum: 0, optional: true } },
    returns: { type: 'string' },
    handler: (p, ctx = ROOT()) => {
      const node = localNode(p);
      const vmid = String(p.vmid);
      // before the worker: check_running asserts the config exists, then "VM $vmid not running"
      assertConfigExistsOnNode(vmid, node);
      if (!vmRunning(vmid)) die(`VM ${vmid} not running`);
      return worker('qmreboot', vmid, ctx, () => setVmState(vmid, 'running'));
    },
  },
  {
    name: 'vncproxy',
    path: '/nodes/{node}/qemu/{vmid}/vncproxy',
    method: 'POST',
    description: 'Creates a TCP VNC proxy connections.',
    parameters: {
      node: nodeParam(),
      vmid: vmidParam(),
      websocket: { type: 'boolean', optional: true },
      'generate-password': { type: 'boolean', optional: true, default: 0 },
    },
    returns: {
      type: 'object',
      properties: {
        user: { type: 'string' },
        ticket: { type: 'string' },
        password: { type: 'string', optional: true },
        cert: { type: 'string' },
        port: { type: 'integer' },
        upid: { type: 'string' },
      },
    },
    handler: (p, ctx = ROOT()) => {
      const node = localNode(p);
      const vmid = String(p.vmid);
      const conf = loadConfig(vmid, node); // "check if VM exists"
      const serial = /^(?:type=)?(serial\d+)/.exec(String(conf.vga ?? ''))?.[1];
      const authpath = `/vms/${vmid}`;
      const cert = readFile('pve-root-ca.pem') ?? '';
      const port = 5900; // PVE::Tools::next_vnc_port: the first free port from 5900 [lab: nothing listens]
      // AccessControl::assemble_vnc_ticket: "PVEVNC:<HEXTIME>::<sig>" over "user:path:port"
      let ticket = assembleRsaTicket('PVEVNC', undefined, `${ctx.authid}:${authpath}:${port}`);
      let password: string | undefined;
      if (truthyParam(p['generate-password']) || serial === undefined || truthyParam(p.websocket)) {
        // PVE::Ticket::generate_vnc_password: 8 characters from '!' to '`'
        password = Array.from({ length: 8 }, () => String.fromCharCode(randomInt(0x21, 0x61))).join('');
        ticket = `${password}:${ticket}`;
      }
      const upid = worker('vncproxy', vmid, ctx, () => {});
      const res: Record<string, unknown> = { user: ctx.authid, ticket, port, upid, cert };
      if (password !== undefined) res.password = password;
      return res;
    },
  },
];

const truthyParam = (v: unknown) => v !== undefined && v !== null && v !== '' && v !== 0 && v !== '0';

// ---------------------------------------------------------------------------
// GET /cluster/resources (pve-manager PVE/API2/Cluster.pm 'resources')

function storageEntries(): { id: string; type: string }[] {
  const out: { id: string; type: string }[] = [];
  for (const line of (readFile('storage.cfg') ?? '').split('\n')) {
    const m = /^(\w+):\s*(\S+)\s*$/.exec(line);
    if (m) out.push({ id: m[2]!, type: m[1]! });
  }
  return out;
}

/**
 * Pools (Pool.Audit) first, each summing its running VMs; then VMs (VM.Audit,
 * with their pool only where Pool.Audit allows it); then nodes (stats only
 * with Sys.Audit); then storages (Datastore.Audit or Datastore.AllocateSpace).
 */
export function clusterResources(type: string | undefined, ctx: CallContext): Record<string, unknown>[] {
  const res: Record<string, unknown>[] = [];
  const pooldata = new Map<string, Record<string, unknown>>();
  if (!type || type === 'pool') {
    for (const pool of [...ctx.cfg.pools.keys()].sort()) {
      if (!ctx.can(`/pool/${pool}`, ['Pool.Audit'])) continue;
      const entry: Record<string, unknown> = { id: `/pool/${pool}`, pool, type: 'pool' };
      pooldata.set(pool, entry);
      res.push(entry);
    }
  }
  if (!type || type === 'vm') {
    const list = vmList();
    for (const vmid of [...list.keys()].sort()) {
      const entry = extractVmStats(vmid, list.get(vmid)!);
      const pool = ctx.cfg.vms.get(vmid);
      if (pool !== undefined) {
        entry.pool = pool;
        const pe = pooldata.get(pool);
        if (pe && entry.uptime) {
          if (!pe.uptime || Number(entry.uptime) > Number(pe.uptime)) pe.uptime = entry.uptime;
          pe.mem = Number(pe.mem ?? 0) + Number(entry.mem);
          pe.maxmem = Number(pe.maxmem ?? 0) + Number(entry.maxmem);
          const [cpu, maxcpu] = [Number(pe.cpu ?? 0), Number(pe.maxcpu ?? 0)];
          pe.cpu = (cpu * maxcpu + Number(entry.cpu) * Number(entry.maxcpu)) / (maxcpu + Number(entry.maxcpu));
          pe.maxcpu = maxcpu + Number(entry.maxcpu);
        }
      }
      // "only skip now to next to ensure that the pool stats above are filled"
      if (!ctx.can(`/vms/${vmid}`, ['VM.Audit'])) continue;
      if (entry.pool !== undefined && !ctx.can(`/pool/${entry.pool}`, ['Pool.Audit'])) delete entry.pool;
      res.push(entry);
    }
  }
  const node = nodename();
  if (!type || type === 'node') {
    const entry: Record<string, unknown> = { id: `node/${node}`, node, type: 'node', status: 'online', level: '' };
    // extract_node_stats($node, $members, $rrd, !$can_audit)
    if (ctx.can(`/nodes/${node}`, ['Sys.Audit'])) {
      Object.assign(entry, { uptime: Math.floor(hostUptime()), cpu: 0.01, mem: totalmem() - freemem(), disk: 0, maxcpu: cpus().length, maxmem: totalmem(), maxdisk: 0 });
    }
    res.push(entry);
  }
  if (!type || type === 'storage') {
    for (const s of storageEntries()) {
      if (!ctx.can(`/storage/${s.id}`, ['Datastore.Audit', 'Datastore.AllocateSpace'], true)) continue;
      res.push({ id: `storage/${node}/${s.id}`, type: 'storage', storage: s.id, plugintype: s.type, node, status: 'available', shared: 0 });
    }
  }
  return res;
}

export const resourcesMethod: ApiMethod = {
  name: 'resources',
  path: '/cluster/resources',
  method: 'GET',
  description: 'Resources index (cluster wide).',
  parameters: { type: { type: 'string', optional: true, enum: ['vm', 'storage', 'node', 'sdn'], description: 'Resource type.' } },
  returns: {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        type: { type: 'string' },
        status: { type: 'string', optional: true },
        name: { type: 'string', optional: true },
        node: { type: 'string', optional: true },
        pool: { type: 'string', optional: true },
        vmid: { type: 'integer', optional: true },
      },
    },
  },
  handler: (p, ctx = ROOT()) => clusterResources(p.type !== undefined ? String(p.type) : undefined, ctx),
};
