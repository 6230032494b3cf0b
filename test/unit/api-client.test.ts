/**
 * LocalPveApi against a local HTTPS server that answers as Proxmox does
 * (pve-access-control API2/AccessControl.pm create_ticket; errors as
 * pve-http-server's JSON formatter writes them), with throwaway CAs made by
 * openssl: the login, the TFA two-step login, a call with the cookie, the
 * CSRF token and a form body, Proxmox's messages on 401 and 403, a server
 * the pinned CA did not sign (or that does not name this node) refused, and
 * no secret in any error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { execa } from 'execa';
import { LocalPveApi } from '../../src/pve/api-client.ts';
import { PveApiError } from '../../src/pve/api.ts';
import { Secret } from '../../src/system/secret.ts';

const PASSWORD = 'Corr3ct-Horse-Battery';
const CODE = '492039';
const TICKET = 'PVE:alice@pve:66AA0000::c2lnbmF0dXJl';
const TFA_TICKET = 'PVE:!tfa!%7B%22totp%22%3Atrue%7D:66AA0000::dGZh';
const CSRF = '66AA0000:Y3NyZi10b2tlbg';

let dir: string;
const pem = (name: string) => join(dir, name);

async function openssl(...args: string[]) {
  await execa('openssl', args, { stdin: 'ignore' });
}

async function makeCa(name: string) {
  await openssl('req', '-batch', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}/O=PVE Cluster Manager CA/`, '-keyout', pem(`${name}.key`), '-out', pem(`${name}.pem`));
}

/** A server certificate signed by `ca`, with these subjectAltNames (as pve-ssl.pem has them). */
async function makeCert(name: string, ca: string, san: string) {
  await openssl('req', '-batch', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=${name}/`, '-keyout', pem(`${name}.key`), '-out', pem(`${name}.csr`));
  writeFileSync(pem(`${name}.ext`), `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  await openssl('x509', '-req', '-days', '2', '-in', pem(`${name}.csr`), '-CA', pem(`${ca}.pem`), '-CAkey', pem(`${ca}.key`), '-CAcreateserial', '-extfile', pem(`${name}.ext`), '-out', pem(`${name}.pem`));
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: Seen) => { status: number; reason?: string; body: unknown };

const servers: Server[] = [];

async function serve(cert: string, handler: Handler): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer({ key: readFileSync(pem(`${cert}.key`)), cert: readFileSync(pem(`${cert}.pem`)) }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const r = handler(s);
      res.writeHead(r.status, r.reason ?? 'OK', { 'Content-Type': 'application/json;charset=UTF-8' });
      res.end(JSON.stringify(r.body));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, seen };
}

function client(port: number, ca = 'pinned') {
  return new LocalPveApi({ port, caFile: pem(`${ca}.pem`), names: ['pve1'], timeoutMs: 5000 });
}

const form = (body: string) => Object.fromEntries(new URLSearchParams(body));
const fail = (status: number, message: string, errors?: Record<string, string>) => ({
  status,
  reason: message,
  body: { data: null, message: `${message}\n`, ...(errors ? { errors } : {}) },
});

/** Proxmox's create_ticket: NeedTFA and a "!tfa!" ticket when `tfa`, the full ticket after the second step. */
function proxmox(opts: { tfa?: boolean } = {}): Handler {
  return (req) => {
    if (req.url === '/api2/json/access/ticket' && req.method === 'POST') {
      const p = form(req.body);
      if (p['tfa-challenge'] !== undefined) {
        if (p['tfa-challenge'] !== TFA_TICKET || p.password !== `totp:${CODE}`) return fail(401, 'authentication failure');
        return { status: 200, body: { data: { ticket: TICKET, CSRFPreventionToken: CSRF, username: p.username } } };
      }
      if (p.username !== 'alice@pve' || p.password !== PASSWORD) return fail(401, 'authentication failure');
      if (opts.tfa) return { status: 200, body: { data: { ticket: TFA_TICKET, CSRFPreventionToken: CSRF, username: p.username, NeedTFA: 1 } } };
      return { status: 200, body: { data: { ticket: TICKET, CSRFPreventionToken: CSRF, username: p.username } } };
    }
    const cookie = String(req.headers.cookie ?? '');
    if (cookie !== `PVEAuthCookie=${encodeURIComponent(TICKET)}`) return fail(401, 'No ticket');
    if (req.method !== 'GET' && req.headers.csrfpreventiontoken !== CSRF) return fail(401, 'Permission denied - invalid csrf token');
    if (req.url === '/api2/json/access/tfa/alice%40pve' && req.method === 'POST') return { status: 200, body: { data: { id: 'totp-1', recovery: [] } } };
    if (req.url === '/api2/json/access/users' && req.method === 'POST') return fail(403, 'Permission check failed (/access/groups, User.Modify)');
    if (req.url?.startsWith('/api2/json/access/tfa/alice%40pve?')) return { status: 200, body: { data: [{ type: 'totp', id: 'totp-1' }] } };
    if (req.url === '/api2/json/echo' && req.method === 'PUT') {
      // Proxmox's schema errors may quote the value they refuse.
      const p = form(req.body);
      return fail(400, 'Parameter verification failed.', { value: `value '${p.value}' does not look like a valid code` });
    }
    return fail(501, `Method '${req.method} ${req.url}' not implemented`);
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pve-baseline-api-'));
  await makeCa('pinned');
  await makeCa('rogue');
  await makeCert('node', 'pinned', 'IP:127.0.0.1,IP:0:0:0:0:0:0:0:1,DNS:localhost,DNS:pve1,DNS:pve1.example.com');
  await makeCert('impostor', 'rogue', 'IP:127.0.0.1,DNS:localhost,DNS:pve1');
  await makeCert('othernode', 'pinned', 'DNS:pve2.example.com');
});

after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

const alice = () => ({ user: 'alice@pve', password: new Secret(PASSWORD) });

test('login with the password alone: one form-encoded POST to /access/ticket', async () => {
  const { port, seen } = await serve('node', proxmox());
  const result = await client(port).login('alice@pve', new Secret(PASSWORD));
  assert.deepEqual(result, { user: 'alice@pve', secondFactor: false });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(seen[0]!.url, '/api2/json/access/ticket');
  assert.equal(seen[0]!.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(form(seen[0]!.body), { username: 'alice@pve', password: PASSWORD, 'new-format': '1' });
});

test('login with a second factor: the challenge ticket back with totp:CODE as the password', async () => {
  const { port, seen } = await serve('node', proxmox({ tfa: true }));
  let asked = 0;
  const result = await client(port).login('alice@pve', new Secret(PASSWORD), () => (asked++, new Secret(CODE)));
  assert.deepEqual(result, { user: 'alice@pve', secondFactor: true });
  assert.equal(asked, 1);
  assert.equal(seen.length, 2);
  assert.deepEqual(form(seen[1]!.body), { username: 'alice@pve', 'tfa-challenge': TFA_TICKET, password: `totp:${CODE}`, 'new-format': '1' });
});

test('login: a wrong code is Proxmox\'s 401, without the code or the password', async () => {
  const { port } = await serve('node', proxmox({ tfa: true }));
  await assert.rejects(client(port).login('alice@pve', new Secret(PASSWORD), () => new Secret('000000')), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 401);
    assert.match(error.message, /authentication failure/);
    assert.ok(!inspect(error).includes('000000') && !inspect(error).includes(PASSWORD));
    return true;
  });
});

test('login: a second factor asked for and none given is refused', async () => {
  const { port, seen } = await serve('node', proxmox({ tfa: true }));
  await assert.rejects(client(port).login('alice@pve', new Secret(PASSWORD)), (error: unknown) => error instanceof PveApiError && /second factor/.test(error.message));
  assert.equal(seen.length, 1);
});

test('call: logs in, then sends the cookie, the CSRF token and the parameters as a form body; resolves with data', async () => {
  const { port, seen } = await serve('node', proxmox());
  const data = await client(port).call(alice(), 'POST', '/access/tfa/alice%40pve', {
    type: 'totp',
    totp: new Secret('otpauth://totp/Proxmox:alice%40pve?secret=JBSWY3DPEHPK3PXP'),
    value: new Secret(CODE),
    description: 'phone',
  });
  assert.deepEqual(data, { id: 'totp-1', recovery: [] });
  assert.equal(seen.length, 2);
  const call = seen[1]!;
  assert.equal(call.method, 'POST');
  assert.equal(call.url, '/api2/json/access/tfa/alice%40pve');
  assert.equal(call.headers.cookie, `PVEAuthCookie=${encodeURIComponent(TICKET)}`);
  assert.equal(call.headers.csrfpreventiontoken, CSRF);
  assert.equal(call.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(form(call.body), { type: 'totp', totp: 'otpauth://totp/Proxmox:alice%40pve?secret=JBSWY3DPEHPK3PXP', value: CODE, description: 'phone' });
});

test('call: GET parameters go in the query; a secret there is refused before anything is sent', async () => {
  const { port, seen } = await serve('node', proxmox());
  assert.deepEqual(await client(port).call(alice(), 'GET', '/access/tfa/alice%40pve', { type: 'totp' }), [{ type: 'totp', id: 'totp-1' }]);
  assert.equal(seen[1]!.url, '/api2/json/access/tfa/alice%40pve?type=totp');
  assert.equal(seen[1]!.body, '');
  const before = seen.length;
  await assert.rejects(client(port).call(alice(), 'DELETE', '/access/tfa/alice%40pve/totp-1', { password: new Secret(PASSWORD) }), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.match(error.message, /secret parameter "password" would travel in the URL/);
    assert.ok(!error.message.includes(PASSWORD));
    return true;
  });
  assert.equal(seen.length, before, 'nothing was sent');
});

test('call: a wrong password is Proxmox\'s 401 "authentication failure", and the password is nowhere in the error', async () => {
  const { port, seen } = await serve('node', proxmox());
  const wrong = 'Wrong-Horse-Battery';
  await assert.rejects(client(port).call({ user: 'alice@pve', password: new Secret(wrong) }, 'POST', '/access/users', { userid: 'bob@pve' }), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 401);
    assert.equal(error.message, 'login as alice@pve: authentication failure');
    for (const text of [error.message, String(error.stack), inspect(error), JSON.stringify(error)]) assert.ok(!text.includes(wrong), text);
    return true;
  });
  assert.equal(seen.length, 1, 'no call after a failed login');
});

test('call: a 403 carries Proxmox\'s permission message', async () => {
  const { port } = await serve('node', proxmox());
  await assert.rejects(client(port).call(alice(), 'POST', '/access/users', { userid: 'bob@pve' }), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 403);
    assert.equal(error.message, 'POST /access/users: Permission check failed (/access/groups, User.Modify)');
    return true;
  });
});

test('call: a user with a second factor cannot call with the password alone', async () => {
  const { port, seen } = await serve('node', proxmox({ tfa: true }));
  await assert.rejects(client(port).call(alice(), 'POST', '/access/users', { userid: 'bob@pve' }), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 401);
    assert.match(error.message, /alice@pve has a second factor/);
    assert.ok(!error.message.includes(TFA_TICKET));
    return true;
  });
  assert.equal(seen.length, 1);
});

test('call: Proxmox quoting a secret parameter back never puts it in the error', async () => {
  const { port } = await serve('node', proxmox());
  await assert.rejects(client(port).call(alice(), 'PUT', '/echo', { value: new Secret('s3cret-value') }), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 400);
    assert.match(error.message, /Parameter verification failed\.; value: value '\[secret\]' does not look like a valid code/);
    assert.ok(!inspect(error).includes('s3cret-value'));
    return true;
  });
});

test('a server whose certificate the pinned CA did not sign is refused before the password is sent', async () => {
  const { port, seen } = await serve('impostor', proxmox());
  await assert.rejects(client(port).call(alice(), 'POST', '/access/users', {}), (error: unknown) => {
    assert.ok(error instanceof PveApiError);
    assert.equal(error.status, 0);
    assert.match(error.message, /certificate is not signed by .*pinned\.pem/);
    assert.ok(!inspect(error).includes(PASSWORD));
    return true;
  });
  assert.equal(seen.length, 0, 'no request reached the impostor');
});

test('a certificate from the pinned CA that does not name this node is refused', async () => {
  const { port, seen } = await serve('othernode', proxmox());
  await assert.rejects(client(port).login('alice@pve', new Secret(PASSWORD)), (error: unknown) => error instanceof PveApiError && /does not name this node/.test(error.message));
  assert.equal(seen.length, 0);
});

test('the node\'s certificate is accepted under its node name too (no loopback address in it)', async () => {
  await makeCert('named', 'pinned', 'DNS:pve1,DNS:pve1.example.com');
  const { port } = await serve('named', proxmox());
  assert.deepEqual(await client(port).login('alice@pve', new Secret(PASSWORD)), { user: 'alice@pve', secondFactor: false });
});

test('a missing CA file is refused with its name, and nothing is sent', async () => {
  const { port, seen } = await serve('node', proxmox());
  await assert.rejects(client(port, 'absent').login('alice@pve', new Secret(PASSWORD)), (error: unknown) => error instanceof PveApiError && /absent\.pem: no such file/.test(error.message));
  assert.equal(seen.length, 0);
});

test('a server that never answers times out', async () => {
  const { createServer: createTcp } = await import('node:net');
  const silent = createTcp(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const api = new LocalPveApi({ port: (silent.address() as AddressInfo).port, caFile: pem('pinned.pem'), timeoutMs: 300 });
    await assert.rejects(api.login('alice@pve', new Secret(PASSWORD)), (error: unknown) => error instanceof PveApiError && /did not answer within/.test(error.message));
  } finally {
    silent.close();
  }
});
