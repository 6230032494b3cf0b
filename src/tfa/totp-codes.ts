/**
 * The TOTP arithmetic, from the `otpauth` library: a new secret, the code of
 * a moment, and the check Proxmox makes when an entry is added. Apart from
 * src/tfa/totp.ts (the URI and the code's form) so that the library is loaded
 * only when a step needs it (`await import`), not with the first frame.
 */
import { Secret as OtpSecret, TOTP } from 'otpauth';
import { Secret } from '../system/secret.ts';
import { checkCodeFormat, normalizeCode, TOTP_ALGORITHM, TOTP_DIGITS, TOTP_PERIOD, TOTP_SECRET_BYTES } from './totp.ts';

/** A new random TOTP secret: 32 unpadded RFC 4648 base32 characters, wrapped so it never prints. */
export function newTotpSecret(): Secret {
  // otpauth draws from node:crypto randomBytes and encodes base32 without padding.
  return new Secret(new OtpSecret({ size: TOTP_SECRET_BYTES }).base32);
}

function totp(secret: Secret): TOTP {
  return new TOTP({ secret: OtpSecret.fromBase32(secret.reveal()), algorithm: TOTP_ALGORITHM, digits: TOTP_DIGITS, period: TOTP_PERIOD });
}

/** The code the authenticator shows at `now` (milliseconds since the epoch). For tests and the lab. */
export function totpCode(secret: Secret, now: number = Date.now()): string {
  return totp(secret).generate({ timestamp: now });
}

/**
 * Whether `code` is the code of the step at `now`, the one before or the one
 * after: the window Proxmox accepts when an entry is added
 * (proxmox-tfa src/api/methods.rs add_totp: `verify(&value, now, -1..=1)`).
 */
export function verifyTotp(secret: Secret, code: string, now: number = Date.now()): boolean {
  if (checkCodeFormat(code) !== undefined) return false;
  return totp(secret).validate({ token: normalizeCode(code), timestamp: now, window: 1 }) !== null;
}

