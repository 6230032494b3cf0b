/**
 * TOTP enrolment for a Proxmox VE user: the otpauth URI exactly
 * as Proxmox's web UI builds it, and the code check Proxmox makes when the
 * entry is added. The arithmetic is the `otpauth` library's; this file only
 * fixes the parameters Proxmox uses and keeps the secret wrapped.
 */
import { Secret } from '../system/secret.ts';

/**
 * Proxmox's web UI fixes these (proxmox-widget-toolkit src/window/AddTotp.js,
 * hidden fields `step` and `digits`): Google Authenticator ignores other
 * values and would show wrong codes.
 */
export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;
export const TOTP_ALGORITHM = 'SHA1';
/** 20 bytes = 160 bits = 32 base32 characters, as AddTotp.js randomizeSecret makes (32 x 5 random bits). */
export const TOTP_SECRET_BYTES = 20;

const BASE32 = /^[A-Z2-7]+$/;

export interface TotpUriOptions {
  secret: Secret;
  /** The Proxmox user, e.g. `alice@pam`. */
  userid: string;
  /** What the authenticator app shows the entry under. */
  issuer?: string;
}

/**
 * The otpauth URI, built as AddTotp.js updateQrCode does: issuer and user
 * percent-encoded with encodeURIComponent, the secret as is, then period,
 * digits, algorithm and the issuer again. Wrapped: it holds the secret.
 * (The web UI's issuer field defaults to "Proxmox - HOSTNAME"; pass that as
 * `issuer` to match it.)
 */
export function proxmoxTotpUri({ secret, userid, issuer = 'Proxmox' }: TotpUriOptions): Secret {
  const problem = checkSecret(secret.reveal());
  if (problem) throw new Error(`not a TOTP secret: ${problem}`);
  const uri =
    'otpauth://totp/' +
    encodeURIComponent(issuer) +
    ':' +
    encodeURIComponent(userid) +
    '?secret=' +
    secret.reveal() +
    '&period=' +
    TOTP_PERIOD +
    '&digits=' +
    TOTP_DIGITS +
    '&algorithm=' +
    TOTP_ALGORITHM +
    '&issuer=' +
    encodeURIComponent(issuer);
  return new Secret(uri);
}

/**
 * The code as typed, without spaces: apps show "123 456" and people type it
 * so. Proxmox compares the exact string, so pass this form to it.
 */
export function normalizeCode(text: string): string {
  return text.replace(/\s+/g, '');
}

/** Why `text` cannot be a code, or undefined when it is 6 digits (spaces are ignored, see normalizeCode). */
export function checkCodeFormat(text: string): string | undefined {
  const code = normalizeCode(text);
  const wanted = `${TOTP_DIGITS} digits from the authenticator app`;
  if (code === '') return `enter the ${wanted}`;
  if (!/^[0-9]+$/.test(code)) return `only digits, please: the code is ${wanted}`;
  if (code.length !== TOTP_DIGITS) return `that is ${code.length} digit${code.length === 1 ? '' : 's'}; the code is ${wanted}`;
  return undefined;
}

/**
 * The base32 secret as Proxmox reads it (proxmox-tfa src/totp.rs, `Totp::from_str`:
 * base32 crate 0.4, `RFC4648 { padding: false }`). Stricter on one point:
 * that decoder skips trailing "=", but the URI Proxmox documents and this
 * tool makes has none, so padding is refused here.
 */
function checkSecret(secret: string): string | undefined {
  if (secret === '') return 'missing secret in otpauth url';
  if (secret.includes('=')) return 'the secret must be base32 without padding ("=")';
  // The base32 crate upper-cases each character before looking it up.
  if (!BASE32.test(secret.toUpperCase())) return 'the secret is not base32 (A-Z, 2-7)';
  // It decodes floor(length * 5 / 8) bytes; none is an empty secret.
  if (Math.floor((secret.length * 5) / 8) === 0) return 'missing secret in otpauth url';
  return undefined;
}

const ALGORITHMS = new Set(['sha1', 'sha256', 'sha512']);

/**
 * Why Proxmox would refuse `uri` as a TOTP entry, or undefined: the checks
 * of proxmox-tfa src/totp.rs `Totp::from_str` (the messages are Proxmox's
 * where it has one), plus the padding rule above.
 */
export function validateProxmoxTotpUri(uri: string): string | undefined {
  const prefix = 'otpauth://totp/';
  if (!uri.startsWith(prefix)) return 'not an otpauth uri';
  const rest = uri.slice(prefix.length);
  const qmark = rest.indexOf('?');
  if (qmark < 0) return "missing '?' in otp uri";
  let secret = '';
  for (const part of rest.slice(qmark + 1).split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) return 'bad value in otpauth uri';
    const key = decode(part.slice(0, eq));
    const value = decode(part.slice(eq + 1));
    if (key === undefined) return 'failed to decode key';
    if (value === undefined) return `failed to decode value '${key}'`;
    switch (key) {
      case 'secret':
        secret = value;
        {
          const problem = checkSecret(value);
          if (problem && problem !== 'missing secret in otpauth url') return `failed to decode otp secret in otpauth url: ${problem}`;
        }
        break;
      case 'digits':
        // Rust's u8 parse: optional '+', decimal digits, 0..=255.
        if (!/^\+?[0-9]+$/.test(value) || Number(value) > 255) return "failed to parse value 'digits'";
        break;
      case 'period':
        if (!/^\+?[0-9]+$/.test(value)) return "failed to parse value 'period'";
        break;
      case 'algorithm':
        if (!ALGORITHMS.has(value.toLowerCase())) return `unsupported algorithm: '${value}'`;
        break;
      case 'issuer':
        break;
      default:
        return `unknown otpauth uri parameter: '${key}'`;
    }
  }
  return checkSecret(secret) === 'missing secret in otpauth url' ? 'missing secret in otpauth url' : undefined;
}

/** Percent-decoding as strict UTF-8 (Rust's percent_decode().decode_utf8()), or undefined. */
function decode(text: string): string | undefined {
  const chars = Array.from(text);
  const bytes: number[] = [];
  for (let i = 0; i < chars.length; i++) {
    const hex = chars.slice(i + 1, i + 3).join('');
    // percent_decode leaves a '%' not followed by two hex digits as it is.
    if (chars[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(chars[i]!, 'utf8'));
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}
