/**
 * The Proxmox API of this node over HTTPS (PveApi, src/pve/api.ts), logged in
 * as a user with their password as the web UI does it. Built once, by the
 * composition root (src/cli/runtime.ts).
 *
 * Trust: the node's certificate is checked against the cluster's own CA,
 * /etc/pve/pve-root-ca.pem, and nothing else (not the system's CAs). That CA
 * signs the nodes' pve-ssl.pem (pve-cluster PVE/Cluster/Setup.pm
 * gen_pve_ssl_cert; test/lab/build.ts makes it the same way), whose names are
 * IP:127.0.0.1, IP:::1, DNS:localhost, the node's name and its FQDN. Port
 * 8006 is above 1024, so while pveproxy is down any local user could listen
 * there: the pinned CA is what keeps a password from going to them.
 *
 * Secrets (the password, a second factor, Secret parameters, the ticket) go
 * into request bodies and the cookie header only, never into a URL (pveproxy
 * writes the request line to its access log: pve-http-server
 * PVE/APIServer/AnyEvent.pm log_request), an error, or a log.
 */
import { request, type RequestOptions } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { hostname } from 'node:os';
import { isSecret, type Secret } from '../system/secret.ts';
import { readRegularFile } from '../system/files.ts';
import { PveApiError, type PveApi } from './api.ts';

export interface LocalPveApiOptions {
  /** Where pveproxy listens; default the loopback, 127.0.0.1. */
  host?: string;
  /** Default 8006. */
  port?: number;
  /** The CA the node's certificate must chain to; default /etc/pve/pve-root-ca.pem. */
  caFile?: string;
  /**
   * Names the certificate may carry besides `host`; default "localhost" and
   * this machine's host name (Proxmox's node name), which pve-ssl.pem lists.
   */
  names?: string[];
  /** Per request; default 30 s. */
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Params = Record<string, string | Secret>;

interface Ticket {
  ticket: string;
  csrf: string;
  username: string;
  needTfa: boolean;
}

interface Reply {
  status: number;
  reason: string;
  body: unknown;
}

const DEFAULT_CA = '/etc/pve/pve-root-ca.pem';
const MAX_RESPONSE = 8 * 1024 * 1024;
const MAX_CA = 256 * 1024;
/** How long a login is reused for further calls (well inside Proxmox's 2-hour ticket). */
const SESSION_MS = 10 * 60_000;

export class LocalPveApi implements PveApi {
  readonly #host: string;
  readonly #port: number;
  readonly #caFile: string;
  readonly #names: string[];
  readonly #timeoutMs: number;
  #ca: Promise<Buffer> | undefined;
  /**
   * One login per user and password for the calls of one apply, as the web UI
   * keeps its session: a call that adds the user's first second factor must
   * not stop the next call (e.g. recovery keys) from logging in with the
   * password alone. A ticket Proxmox issued stays valid for 2 hours; it is
   * kept in memory only, for at most SESSION_MS.
   */
  readonly #sessions = new Map<string, { password: Secret; ticket: Ticket; at: number }>();

  constructor(options: LocalPveApiOptions = {}) {
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 8006;
    this.#caFile = options.caFile ?? DEFAULT_CA;
    this.#names = options.names ?? ['localhost', hostname()];
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** What errors call the server: "the Proxmox API at https://127.0.0.1:8006". */
  get #where(): string {
    return `the Proxmox API at https://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${this.#port}`;
  }

  async login(user: string, password: Secret, secondFactor?: () => Secret): Promise<{ user: string; secondFactor: boolean }> {
    const first = await this.#ticket(user, password, [password]);
    if (!first.needTfa) return { user: first.username, secondFactor: false };
    if (!secondFactor) throw new PveApiError(401, `${user} has a second factor; the login needs it`);
    const factor = secondFactor();
    // AccessControl.pm create_ticket: with tfa-challenge, the response goes in
    // `password` as TYPE:VALUE (proxmox-tfa: "totp:123456", "recovery:KEY").
    const response = /^[a-z]+:/.test(factor.reveal()) ? factor.reveal() : `totp:${factor.reveal()}`;
    const ticket = await this.#login({ username: user, 'tfa-challenge': first.ticket, password: response, 'new-format': '1' }, [password, factor, response, first.ticket]);
    if (ticket.needTfa) throw new PveApiError(401, `${user}: Proxmox asked for yet another factor; only TOTP is supported here`);
    return { user: ticket.username, secondFactor: true };
  }

  async call(as: { user: string; password: Secret }, method: Method, path: string, params: Params = {}): Promise<unknown> {
    const secrets: (Secret | string)[] = [as.password, ...Object.values(params).filter(isSecret)];
    if (method === 'GET' || method === 'DELETE') {
      // pve-http-server (AnyEvent.pm extract_params) reads GET and DELETE
      // parameters from the URL only, and log_request writes the URL to the access log.
      const secret = Object.entries(params).find(([, v]) => isSecret(v));
      if (secret) throw new PveApiError(0, `${method} ${path}: the secret parameter "${secret[0]}" would travel in the URL, which pveproxy logs; not sent`);
    }
    const ticket = await this.#session(as.user, as.password, secrets);
    secrets.push(ticket.ticket, ticket.csrf);
    const auth = { cookie: `PVEAuthCookie=${encodeURIComponent(ticket.ticket)}`, csrf: ticket.csrf };
    let reply: Reply;
    if (method === 'GET' || method === 'DELETE') {
      const query = form(params);
      reply = await this.#send(method, query ? `${path}?${query}` : path, undefined, auth, secrets);
    } else {
      reply = await this.#send(method, path, form(params), auth, secrets);
    }
    return dataOf(reply, `${method} ${path}`, secrets);
  }

  async #session(user: string, password: Secret, secrets: (Secret | string)[]): Promise<Ticket> {
    const kept = this.#sessions.get(user);
    if (kept && kept.password.reveal() === password.reveal() && Date.now() - kept.at < SESSION_MS) return kept.ticket;
    const ticket = await this.#ticket(user, password, secrets);
    if (ticket.needTfa) throw new PveApiError(401, `${user} has a second factor: this call cannot be made with the password alone`);
    this.#sessions.set(user, { password, ticket, at: Date.now() });
    return ticket;
  }

  async #ticket(user: string, password: Secret, secrets: (Secret | string)[]): Promise<Ticket> {
    return this.#login({ username: user, password: password.reveal(), 'new-format': '1' }, secrets);
  }

  /** POST /access/ticket, form-encoded (AccessControl.pm create_ticket). */
  async #login(body: Record<string, string>, secrets: (Secret | string)[]): Promise<Ticket> {
    const reply = await this.#send('POST', '/access/ticket', new URLSearchParams(body).toString(), undefined, secrets);
    return parseTicket(dataOf(reply, `login as ${body.username}`, secrets), this.#where);
  }

  #caPem(): Promise<Buffer> {
    this.#ca ??= readRegularFile(this.#caFile, { maxBytes: MAX_CA, what: "the node's CA certificate" }).catch((error: unknown) => {
      this.#ca = undefined;
      throw new PveApiError(0, `cannot check ${this.#where}: ${(error as Error).message}`);
    });
    return this.#ca;
  }

  async #send(method: Method, path: string, body: string | undefined, auth: { cookie: string; csrf: string } | undefined, secrets: (Secret | string)[]): Promise<Reply> {
    const ca = await this.#caPem();
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    if (auth) {
      headers.Cookie = auth.cookie;
      // pve-http-server checks it on every call but GET (AnyEvent.pm auth_handler).
      headers.CSRFPreventionToken = auth.csrf;
    }
    const names = [this.#host, ...this.#names];
    const options: RequestOptions = {
      host: this.#host,
      port: this.#port,
      method,
      path: `/api2/json${path}`,
      headers,
      ca,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      agent: false,
      // The chain is checked against the pinned CA first; then the
      // certificate must name this node as Proxmox names it (see above):
      // the address we dialled, localhost, or the node's name.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        let first: Error | undefined;
        for (const name of names) {
          const problem = checkServerIdentity(name, cert);
          if (!problem) return undefined;
          first ??= problem;
        }
        return first;
      },
    };
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error instanceof PveApiError ? error : new PveApiError(0, scrub(`cannot reach ${this.#where}: ${transportText(error, this.#caFile)}`, secrets)));
      };
      const req = request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE) return req.destroy(new PveApiError(0, `${this.#where} sent more than ${MAX_RESPONSE} bytes; stopped reading`));
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', body: parsed });
        });
      });
      const timer = setTimeout(() => req.destroy(new PveApiError(0, `${this.#where} did not answer within ${Math.round(this.#timeoutMs / 1000)} s`)), this.#timeoutMs);
      req.on('error', fail);
      req.end(body);
    });
  }
}

/** application/x-www-form-urlencoded, revealing each Secret into the body only. */
function form(params: Params): string {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) out.append(key, isSecret(value) ? value.reveal() : value);
  return out.toString();
}

function parseTicket(data: unknown, where: string): Ticket {
  const d = data as Record<string, unknown> | null;
  if (!d || typeof d.ticket !== 'string' || typeof d.CSRFPreventionToken !== 'string' || typeof d.username !== 'string') {
    throw new PveApiError(0, `${where} answered the login without a ticket`);
  }
  return { ticket: d.ticket, csrf: d.CSRFPreventionToken, username: d.username, needTfa: Boolean(d.NeedTFA) };
}

/**
 * `data` of a 2xx reply; otherwise Proxmox's words for the failure: the JSON
 * formatter writes {"data":null,"message":"...\n","errors":{PARAM:TEXT}} and
 * puts the message's first line in the status line (pve-http-server
 * PVE/APIServer/Formatter/Standard.pm, AnyEvent.pm).
 */
function dataOf(reply: Reply, what: string, secrets: (Secret | string)[]): unknown {
  const body = reply.body as { data?: unknown; message?: unknown; errors?: unknown } | undefined;
  if (reply.status >= 200 && reply.status < 300) return body?.data ?? null;
  const parts: string[] = [];
  const message = typeof body?.message === 'string' ? body.message.trim() : '';
  parts.push(message || reply.reason.trim() || `HTTP ${reply.status}`);
  if (body?.errors && typeof body.errors === 'object') {
    for (const [param, text] of Object.entries(body.errors as Record<string, unknown>)) parts.push(`${param}: ${String(text).trim()}`);
  }
  throw new PveApiError(reply.status, scrub(`${what}: ${parts.join('; ')}`, secrets));
}

/** Proxmox may quote a parameter's value in its message; a secret's never reaches ours. */
function scrub(text: string, secrets: (Secret | string)[]): string {
  let out = text;
  for (const s of secrets) {
    const value = typeof s === 'string' ? s : s.reveal();
    // Shorter values (a 1-2 character secret) would blank out ordinary words; no real secret is that short.
    if (value.length >= 3) out = out.split(value).join('[secret]');
    const encoded = encodeURIComponent(value);
    if (encoded !== value && encoded.length >= 3) out = out.split(encoded).join('[secret]');
  }
  return out;
}

function transportText(error: Error, caFile: string): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `its certificate does not name this node (${error.message})`;
  if (/CERT|SELF_SIGNED|UNABLE_TO|LEAF|SIGNATURE/.test(code)) return `its certificate is not signed by ${caFile} (${code})`;
  return error.message;
}
