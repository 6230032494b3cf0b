/**
 * The Proxmox API of the node pve-baseline runs on, as the engine and the
 * steps use it: over HTTPS to the node itself, logged in as a user with their
 * password (and, when Proxmox asks, a second factor). The implementation is
 * src/pve/api-client.ts; tests use fakes.
 */
import type { Secret } from '../system/secret.ts';

export interface PveApi {
  /**
   * Log in as `as.user` with `as.password` and make one call; resolves with
   * the response's `data`. Refuses (PveApiError) when the login needs a
   * second factor or the call fails, with Proxmox's own message.
   */
  call(as: { user: string; password: Secret }, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, params?: Record<string, string | Secret>): Promise<unknown>;
  /**
   * The web UI's login flow: the password, then, when Proxmox asks for a
   * second factor (NeedTFA), `totp:CODE` from `secondFactor()`. Resolves when
   * Proxmox hands out a full ticket; refuses with Proxmox's message otherwise.
   */
  login(user: string, password: Secret, secondFactor?: () => Secret): Promise<{ user: string; secondFactor: boolean }>;
}

/** A refusal by the API: the HTTP status and Proxmox's message (never a secret). */
export class PveApiError extends Error {
  override readonly name = 'PveApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
