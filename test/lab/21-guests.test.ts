/**
 * Guests, pools and tokens over HTTPS from the workstation side, with
 * Proxmox's permission enforcement (issue 15, least privilege): VMs are
 * config files in /etc/pve/nodes/pve1/qemu-server (no QEMU, the run state is
 * the stand-ins' /run/pve-lab/qemu/<vmid>.status), the methods and their
 * checks those of qemu-server API2/Qemu.pm and pve-manager API2/Pool.pm and
 * API2/Cluster.pm. Accounts and ACLs are made with pveum on the node, as the
 * steps make them.
 *
 * The model (seed 004's shape): pool "web" holds VMs 101 and 102, pool "db"
 * holds 201, VM 301 is in no pool. Betty has a console role on /pool/web,
 * Nancy PVEVMUser on both pools, Jim the console role on /pool/db only.
 *
 * Everything this file creates is removed at the end: later files share the node.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiCall, apiLogin, labOrSkip, sh, waitUntil, type ApiAnswer } from './helpers.ts';
import type { Lab } from './lab.ts';

const lab = await labOrSkip();

const USERS = ['betty@pve', 'nancy@pve', 'jim@pve', 'svc-monitor@pve'];
const PASSWORD = { 'betty@pve': 'Betty-Lab-Pw-21', 'nancy@pve': 'Nancy-Lab-Pw-21', 'jim@pve': 'Jim-Lab-Pw-21' } as const;
const VMS: Record<string, string> = { '101': 'web1', '102': 'web2', '201': 'db1', '301': 'scratch' };

if (lab) {
  const node: Lab = lab;
  const N = node.hostname;
  const data = <T>(r: ApiAnswer) => r.json?.data as T;
  const ids = (r: ApiAnswer) => data<{ vmid: number }[]>(r).map((v) => v.vmid).sort((a, b) => a - b);

  await waitUntil(async () => (await node.tcpProbe(8006, { timeoutMs: 800 })) === 'connected', 'pveproxy listening on 8006', 30_000);

  async function cleanUp(): Promise<void> {
    for (const u of USERS) await node.exec(['pveum', 'user', 'delete', u]);
    await node.exec(['pveum', 'role', 'delete', 'PoolConsole']);
    for (const vmid of Object.keys(VMS)) await node.exec(['rm', '-f', `/etc/pve/nodes/${N}/qemu-server/${vmid}.conf`]);
    // the VMs are gone, so the pools are empty (Pool.pm ignores destroyed guests)
    for (const pool of ['web', 'db']) await node.exec(['pveum', 'pool', 'delete', pool]);
    await node.exec(['rm', '-rf', '/run/pve-lab/qemu']);
  }
  after(cleanUp);

  const sessions: Record<string, { ticket: string; csrf: string }> = {};
  const as = (user: keyof typeof PASSWORD) => sessions[user]!;
  const get = (user: keyof typeof PASSWORD, path: string) => apiCall(node, 'GET', path, { ticket: as(user).ticket });
  const post = (user: keyof typeof PASSWORD, path: string, form: Record<string, string> = {}) => apiCall(node, 'POST', path, { ticket: as(user).ticket, csrf: as(user).csrf, form });

  test('the model: VMs as config files, pools, a role, users with pve-realm passwords set by pveum passwd from stdin', async () => {
    await cleanUp();
    for (const [vmid, name] of Object.entries(VMS)) {
      await sh(node, `printf 'name: ${name}\\nmemory: 512\\ncores: 1\\n' > /etc/pve/nodes/${N}/qemu-server/${vmid}.conf`);
    }
    await sh(
      node,
      [
        'pveum pool add web --comment "Web servers"',
        'pveum pool add db',
        'pveum pool modify web --vms 101,102',
        'pveum pool modify db --vms 201',
        'pveum role add PoolConsole --privs VM.Audit,VM.Console,Pool.Audit',
        ...Object.keys(PASSWORD).map((u) => `pveum user add ${u}`),
        'pveum acl modify /pool/web --users betty@pve --roles PoolConsole',
        'pveum acl modify /pool/web --users nancy@pve --roles PVEVMUser',
        'pveum acl modify /pool/db --users nancy@pve --roles PVEVMUser',
        'pveum acl modify /pool/db --users jim@pve --roles PoolConsole',
      ].join(' && '),
    );
    for (const [u, pw] of Object.entries(PASSWORD)) {
      // PVE::PTY::get_confirmed_password: both lines from stdin when it is not a terminal
      const r = await node.exec(['pveum', 'passwd', u], { input: `${pw}\n${pw}\n` });
      assert.equal(r.exitCode, 0, r.stderr);
    }
    const mismatch = await node.exec(['pveum', 'passwd', 'betty@pve'], { input: 'Betty-Lab-Pw-21\nsomething-else\n' });
    assert.equal(mismatch.exitCode, 255);
    assert.equal(mismatch.stderr, 'passwords do not match\n');
    assert.match(await sh(node, 'cat /etc/pve/priv/shadow.cfg'), /^betty:\$5\$[^$]{8}\$[A-Za-z0-9./]{43}:$/m);
    assert.match(await sh(node, 'cat /etc/pve/user.cfg'), /^pool:web:Web servers:101,102::$/m);

    for (const u of Object.keys(PASSWORD) as (keyof typeof PASSWORD)[]) sessions[u] = await apiLogin(node, u, PASSWORD[u]);
    const wrong = await apiCall(node, 'POST', '/access/ticket', { form: { username: 'betty@pve', password: 'not-her-password' } });
    assert.equal(wrong.status, 401);
  });

  test('Betty sees exactly her pool: /nodes/pve1/qemu and /cluster/resources', async () => {
    const list = await get('betty@pve', `/nodes/${N}/qemu`);
    assert.equal(list.status, 200, list.reason);
    assert.deepEqual(ids(list), [101, 102]);
    const web1 = data<Record<string, unknown>[]>(list).find((v) => v.vmid === 101)!;
    assert.deepEqual(
      { name: web1.name, status: web1.status, maxmem: web1.maxmem, cpus: web1.cpus },
      { name: 'web1', status: 'stopped', maxmem: 512 * 1024 * 1024, cpus: 1 },
    );

    const res = data<Record<string, unknown>[]>(await get('betty@pve', '/cluster/resources'));
    const vms = res.filter((r) => r.type === 'qemu');
    assert.deepEqual(vms.map((v) => [v.id, v.vmid, v.pool, v.name]), [
      ['qemu/101', 101, 'web', 'web1'],
      ['qemu/102', 102, 'web', 'web2'],
    ]);
    assert.deepEqual(res.filter((r) => r.type === 'pool').map((p) => [p.id, p.pool]), [['/pool/web', 'web']]);
    // a node entry for everyone, its figures only with Sys.Audit (Cluster.pm extract_node_stats)
    const n = res.find((r) => r.type === 'node')!;
    assert.equal(n.node, N);
    assert.equal(n.maxmem, undefined);
    // type=vm: guests only
    const onlyVm = data<Record<string, unknown>[]>(await get('betty@pve', '/cluster/resources?type=vm'));
    assert.deepEqual(onlyVm.map((r) => r.id), ['qemu/101', 'qemu/102']);

    // root sees every VM, 301 without a pool
    const root = await apiLogin(node, 'root@pam', node.rootPassword);
    const all = data<Record<string, unknown>[]>(await apiCall(node, 'GET', '/cluster/resources?type=vm', { ticket: root.ticket }));
    assert.deepEqual(all.map((r) => [r.vmid, r.pool]), [[101, 'web'], [102, 'web'], [201, 'db'], [301, undefined]]);
  });

  test("Betty: config and console on her pool's VMs, 403 with Proxmox's text elsewhere", async () => {
    const conf = await get('betty@pve', `/nodes/${N}/qemu/101/config`);
    assert.equal(conf.status, 200, conf.reason);
    const c = data<Record<string, unknown>>(conf);
    assert.deepEqual({ name: c.name, memory: c.memory, cores: c.cores }, { name: 'web1', memory: '512', cores: 1 });
    assert.match(String(c.digest), /^[0-9a-f]{40}$/);

    for (const [path, text] of [
      [`/nodes/${N}/qemu/201/config`, 'Permission check failed (/vms/201, VM.Audit)'],
      [`/nodes/${N}/qemu/301/status/current`, 'Permission check failed (/vms/301, VM.Audit)'],
    ] as const) {
      const r = await get('betty@pve', path);
      assert.equal(r.status, 403, path);
      assert.equal(r.reason, text);
      assert.equal(r.json?.message, `${text}\n`);
    }
    const outside = await post('betty@pve', `/nodes/${N}/qemu/201/vncproxy`);
    assert.equal(outside.status, 403);
    assert.equal(outside.reason, 'Permission check failed (/vms/201, VM.Console)');

    const vnc = await post('betty@pve', `/nodes/${N}/qemu/101/vncproxy`);
    assert.equal(vnc.status, 200, vnc.reason);
    const v = data<{ user: string; ticket: string; port: number; upid: string; cert: string; password?: string }>(vnc);
    assert.deepEqual(Object.keys(v).sort(), ['cert', 'password', 'port', 'ticket', 'upid', 'user']);
    assert.equal(v.user, 'betty@pve');
    assert.ok(v.port >= 5900 && v.port < 6000, String(v.port));
    assert.match(v.ticket, /^.{8}:PVEVNC:[0-9A-F]{8}::\S+$/);
    assert.equal(v.ticket.slice(0, 8), v.password);
    assert.match(v.upid, new RegExp(`^UPID:${N}:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vncproxy:101:betty@pve:$`));
    assert.equal(v.cert, readFileSync(join(node.rootDir, 'etc/pve/pve-root-ca.pem'), 'utf8'));
  });

  test('power management: VM.PowerMgmt (Nancy) starts, reboots, shuts down; without it (Betty) 403', async () => {
    const denied = await post('betty@pve', `/nodes/${N}/qemu/101/status/start`);
    assert.equal(denied.status, 403);
    assert.equal(denied.reason, 'Permission check failed (/vms/101, VM.PowerMgmt)');
    assert.equal((await post('betty@pve', `/nodes/${N}/qemu/101/status/reboot`)).reason, 'Permission check failed (/vms/101, VM.PowerMgmt)');
    assert.equal((await post('nancy@pve', `/nodes/${N}/qemu/301/status/start`)).status, 403, 'VM 301 is in neither pool');

    const notRunning = await post('nancy@pve', `/nodes/${N}/qemu/201/status/reboot`);
    assert.equal(notRunning.status, 500);
    assert.equal(notRunning.reason, 'VM 201 not running');

    for (const vmid of ['101', '201']) {
      const start = await post('nancy@pve', `/nodes/${N}/qemu/${vmid}/status/start`);
      assert.equal(start.status, 200, start.reason);
      assert.match(data<string>(start), new RegExp(`^UPID:${N}:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:${vmid}:nancy@pve:$`));
    }
    assert.equal((await sh(node, 'cat /run/pve-lab/qemu/101.status')).trim(), 'running');
    const cur = data<{ status: string; name: string }>(await get('betty@pve', `/nodes/${N}/qemu/101/status/current`));
    assert.deepEqual([cur.status, cur.name], ['running', 'web1']);

    const reboot = await post('nancy@pve', `/nodes/${N}/qemu/201/status/reboot`);
    assert.equal(reboot.status, 200, reboot.reason);
    assert.match(data<string>(reboot), /:qmreboot:201:nancy@pve:$/);

    // a second start is a failed task, not an error of the call (fork_worker returns the UPID first)
    const again = data<string>(await post('nancy@pve', `/nodes/${N}/qemu/101/status/start`));
    assert.match(await sh(node, 'cat /run/pve-lab/qemu/tasks.log'), new RegExp(`^${again.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ERROR: VM 101 already running$`, 'm'));

    assert.match(data<string>(await post('nancy@pve', `/nodes/${N}/qemu/101/status/shutdown`)), /:qmshutdown:101:nancy@pve:$/);
    assert.match(data<string>(await post('nancy@pve', `/nodes/${N}/qemu/201/status/stop`)), /:qmstop:201:nancy@pve:$/);
    const after = data<{ vmid: number; status: string }[]>(await get('nancy@pve', `/nodes/${N}/qemu`));
    assert.deepEqual(after.map((v) => [v.vmid, v.status]), [[101, 'stopped'], [102, 'stopped'], [201, 'stopped']]);
  });

  test("a VM that does not exist: Proxmox's texts", async () => {
    const root = await apiLogin(node, 'root@pam', node.rootPassword);
    const conf = await apiCall(node, 'GET', `/nodes/${N}/qemu/999/config`, { ticket: root.ticket });
    assert.equal(conf.status, 500);
    assert.equal(conf.reason, `Configuration file 'nodes/${N}/qemu-server/999.conf' does not exist`);
    const vnc = await apiCall(node, 'POST', `/nodes/${N}/qemu/999/vncproxy`, { ticket: root.ticket, csrf: root.csrf });
    assert.equal(vnc.reason, `Configuration file 'nodes/${N}/qemu-server/999.conf' does not exist`);
    const reboot = await apiCall(node, 'POST', `/nodes/${N}/qemu/999/status/reboot`, { ticket: root.ticket, csrf: root.csrf });
    assert.equal(reboot.status, 500);
    assert.equal(reboot.reason, `unable to find configuration file for VM 999 on node '${N}'`);
    // the permission check comes first
    assert.equal((await get('betty@pve', `/nodes/${N}/qemu/999/config`)).reason, 'Permission check failed (/vms/999, VM.Audit)');
  });

  test("pools: GET /pools lists only Pool.Audit pools (Jim never sees Betty's); GET /pools/{poolid} is checked, ?poolid= is not (Pool.pm)", async () => {
    const jim = data<{ poolid: string }[]>(await get('jim@pve', '/pools'));
    assert.deepEqual(jim.map((p) => p.poolid), ['db']);
    assert.deepEqual(data<{ poolid: string }[]>(await get('betty@pve', '/pools')).map((p) => p.poolid), ['web']);
    assert.deepEqual(data<unknown[]>(await get('nancy@pve', '/pools')), [], 'PVEVMUser has no Pool.Audit');

    const web = await get('jim@pve', '/pools/web');
    assert.equal(web.status, 403);
    assert.equal(web.reason, 'Permission check failed (/pool/web, Pool.Audit)');
    const jimRes = data<Record<string, unknown>[]>(await get('jim@pve', '/cluster/resources'));
    assert.deepEqual(jimRes.filter((r) => r.type === 'pool' || r.type === 'qemu').map((r) => r.id), ['/pool/db', 'qemu/201']);

    const own = await get('betty@pve', '/pools/web');
    assert.equal(own.status, 200, own.reason);
    const p = data<{ poolid: string; comment: string; members: Record<string, unknown>[] }>(own);
    assert.equal(p.poolid, 'web');
    assert.equal(p.comment, 'Web servers');
    assert.deepEqual(p.members.map((m) => [m.id, m.vmid, m.type, m.node, m.name, m.status]), [
      ['qemu/101', 101, 'qemu', N, 'web1', 'stopped'],
      ['qemu/102', 102, 'qemu', N, 'web2', 'stopped'],
    ]);
    // Pool.pm index: $rpcenv->check(..., ['Pool.Audit'], 1) with noerr, its answer unused
    const leak = await get('jim@pve', '/pools?poolid=web');
    assert.equal(leak.status, 200, leak.reason);
    assert.deepEqual(data<{ poolid: string }[]>(leak).map((x) => x.poolid), ['web']);
  });

  test('pool --vms: a VMID that does not exist is stored (Pool.pm checks no guest), listed nowhere; modifying needs VM.Allocate', async () => {
    const add = await node.exec(['pveum', 'pool', 'modify', 'web', '--vms', '999']);
    assert.equal(add.exitCode, 0, add.stderr);
    assert.match(await sh(node, 'cat /etc/pve/user.cfg'), /^pool:web:Web servers:101,102,999::$/m);
    const members = data<{ members: { vmid?: number }[] }[]>(await get('betty@pve', '/pools?poolid=web'))[0]!.members;
    assert.deepEqual(members.map((m) => m.vmid), [101, 102]);
    assert.equal((await node.exec(['pveum', 'pool', 'modify', 'web', '--vms', '999', '--delete', '1'])).exitCode, 0);

    const dup = await node.exec(['pveum', 'pool', 'modify', 'db', '--vms', '101']);
    assert.equal(dup.exitCode, 255);
    assert.equal(dup.stderr, "update pools failed: VM 101 belongs already to pool 'web' and 'allow-move' is not set\n");

    // over HTTPS: Pool.Allocate on the pool first, then check_perm_modify on each /vms/<vmid>
    const noAlloc = await apiCall(node, 'PUT', '/pools', { ticket: as('betty@pve').ticket, csrf: as('betty@pve').csrf, form: { poolid: 'web', vms: '301' } });
    assert.equal(noAlloc.status, 403);
    assert.equal(noAlloc.reason, 'Permission check failed (/pool/web, Pool.Allocate)');
  });

  test('a monitoring token (PVEAuditor, privsep): reads /nodes, 403 on a write; regenerated: old secret 401, new one works, ACL kept; expired: 401', async () => {
    await sh(node, 'pveum user add svc-monitor@pve && pveum acl modify / --users svc-monitor@pve --roles PVEAuditor');
    const add = JSON.parse(await sh(node, 'pveum user token add svc-monitor@pve mon --privsep 1 --expire 1798675200 --comment monitoring --output-format json')) as {
      'full-tokenid': string;
      value: string;
    };
    await sh(node, "pveum acl modify / --tokens 'svc-monitor@pve!mon' --roles PVEAuditor");
    const oldToken = `${add['full-tokenid']}=${add.value}`;
    const nodes = await apiCall(node, 'GET', '/nodes', { token: oldToken });
    assert.equal(nodes.status, 200, nodes.reason);
    assert.deepEqual(data<{ node: string }[]>(nodes).map((n) => n.node), [N]);
    assert.deepEqual(ids(await apiCall(node, 'GET', `/nodes/${N}/qemu`, { token: oldToken })), [101, 102, 201, 301], 'VM.Audit on /');
    const write = await apiCall(node, 'POST', `/nodes/${N}/qemu/101/status/start`, { token: oldToken });
    assert.equal(write.status, 403);
    assert.equal(write.reason, 'Permission check failed (/vms/101, VM.PowerMgmt)');

    // User.pm update_token_info with regenerate (pve-access-control 9.1+), from pveum on the node
    const aclBefore = await sh(node, 'pveum acl list --output-format json');
    const r = await node.exec(['pveum', 'user', 'token', 'modify', 'svc-monitor@pve', 'mon', '--regenerate', '1', '--output-format', 'json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const regen = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(regen).sort(), ['comment', 'expire', 'full-tokenid', 'privsep', 'value']);
    assert.deepEqual([regen.comment, regen.expire, regen.privsep, regen['full-tokenid']], ['monitoring', 1798675200, 1, 'svc-monitor@pve!mon']);
    assert.match(String(regen.value), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(regen.value, add.value);
    assert.equal(await sh(node, 'pveum acl list --output-format json'), aclBefore, 'ACL entries untouched');
    assert.match(await sh(node, 'cat /etc/pve/priv/token.cfg'), new RegExp(`^svc-monitor@pve!mon ${regen.value}$`, 'm'));

    const old = await apiCall(node, 'GET', '/nodes', { token: oldToken });
    assert.equal(old.status, 401);
    assert.equal(old.reason, 'Authentication failed!');
    const newToken = `${add['full-tokenid']}=${regen.value}`;
    assert.equal((await apiCall(node, 'GET', '/nodes', { token: newToken })).status, 200);
    assert.equal((await apiCall(node, 'PUT', `/nodes/${N}/config`, { token: newToken, form: { description: 'x' } })).status, 403, 'still privilege-separated');

    // the same over HTTPS as root: PUT with regenerate=1
    const root = await apiLogin(node, 'root@pam', node.rootPassword);
    const put = await apiCall(node, 'PUT', '/access/users/svc-monitor@pve/token/mon', { ticket: root.ticket, csrf: root.csrf, form: { regenerate: '1' } });
    assert.equal(put.status, 200, put.reason);
    const third = data<{ value: string; 'full-tokenid': string }>(put);
    assert.equal(third['full-tokenid'], 'svc-monitor@pve!mon');
    assert.equal((await apiCall(node, 'GET', '/nodes', { token: newToken })).status, 401);
    const thirdToken = `${third['full-tokenid']}=${third.value}`;
    assert.equal((await apiCall(node, 'GET', '/nodes', { token: thirdToken })).status, 200);
    // without regenerate: no value, no full-tokenid
    const plain = await apiCall(node, 'PUT', '/access/users/svc-monitor@pve/token/mon', { ticket: root.ticket, csrf: root.csrf, form: { comment: 'monitoring' } });
    assert.deepEqual(Object.keys(data<object>(plain)).sort(), ['comment', 'expire', 'privsep']);
    // another user may not regenerate it (User.Modify)
    const betty = await apiCall(node, 'PUT', '/access/users/svc-monitor@pve/token/mon', { ticket: as('betty@pve').ticket, csrf: as('betty@pve').csrf, form: { regenerate: '1' } });
    assert.equal(betty.status, 403);
    assert.equal(betty.reason, 'Permission check failed (/access/groups, User.Modify)');

    // expired: the expiry set in the past
    await sh(node, `pveum user token modify svc-monitor@pve mon --expire ${Math.floor(Date.now() / 1000) - 60}`);
    assert.equal((await apiCall(node, 'GET', '/nodes', { token: thirdToken })).status, 401);
    assert.match(await sh(node, 'journalctl -u pvedaemon.service -o cat --no-pager -n 20'), /authentication failure: token 'mon' access expired/);
    await sh(node, "pveum acl delete / --tokens 'svc-monitor@pve!mon' --roles PVEAuditor && pveum user token delete svc-monitor@pve mon");
  });
}
