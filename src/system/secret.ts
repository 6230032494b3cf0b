/**
 * A value that must never persist: passwords, TOTP secrets, token values,
 * private keys. It renders as a fixed marker everywhere (string conversion,
 * JSON, util.inspect), so a plan, an answer set or an event that carries one
 * can be journaled, logged or printed without leaking it. Only `reveal()`
 * gives the value back, and only the code that hands it to a process's
 * standard input should call it.
 */
const MARK = '[secret]';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return MARK;
  }

  toJSON(): string {
    return MARK;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return MARK;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}
