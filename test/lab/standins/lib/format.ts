/**
 * PVE::CLIFormatter (pve-common): print_api_result with the output formats
 * text (box-drawing tables, ASCII when the locale is not UTF-8), json
 * (canonical: sorted keys, one line), json-pretty (JSON::XS pretty: three
 * spaces, `"key" : value`) and yaml.
 */
import type { Prop } from './schema.ts';

export interface FormatOptions {
  'output-format'?: string;
  noborder?: number;
  noheader?: number;
  quiet?: number;
  'human-readable'?: number;
}

export interface TerminalOptions {
  columns?: number;
  utf8: boolean;
}

export function terminalOptions(): TerminalOptions {
  const locale = process.env.LC_ALL || process.env.LC_CTYPE || process.env.LANG || '';
  const t: TerminalOptions = { utf8: /\.utf-?8$/i.test(locale) };
  if (process.stdout.isTTY && process.stdout.columns) t.columns = process.stdout.columns;
  return t;
}

// --- JSON ---------------------------------------------------------------------

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort()
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}

/** to_json($data, {canonical => 1}) */
export const canonicalJson = (v: unknown): string => JSON.stringify(sortKeys(v) ?? null);

/** to_json($data, {canonical => 1, pretty => 1}) as JSON::XS writes it */
export function prettyJson(v: unknown, indent = ''): string {
  const inner = `${indent}   `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)} : ${prettyJson(o[k], inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v ?? null);
}

// --- YAML (enough for API results) ----------------------------------------------

function yamlScalar(v: unknown): string {
  if (v === null || v === undefined) return '~';
  if (typeof v === 'number') return String(v);
  const s = String(v);
  return /^[A-Za-z0-9_./@!+-][A-Za-z0-9_./@! +:-]*$/.test(s) && !/^(true|false|null|~|-?\d+(\.\d+)?)$/i.test(s) && !/:\s|\s$/.test(s) ? s : `'${s.replace(/'/g, "''")}'`;
}

function yaml(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return ' []\n';
    return '\n' + v.map((x) => `${indent}-${x && typeof x === 'object' ? yaml(x, `${indent}  `).replace(/^\n\s*/, ' ') : ` ${yamlScalar(x)}\n`}`).join('');
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    if (keys.length === 0) return ' {}\n';
    return '\n' + keys.map((k) => `${indent}${k}:${o[k] && typeof o[k] === 'object' ? yaml(o[k], `${indent}  `) : ` ${yamlScalar(o[k])}\n`}`).join('');
  }
  return ` ${yamlScalar(v)}\n`;
}

// --- text -------------------------------------------------------------------------

const pad2 = (n: number) => String(n).padStart(2, '0');

const RENDERERS: Record<string, (v: unknown) => string> = {
  timestamp: (v) => {
    const d = new Date(Number(v) * 1000);
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  },
  duration: (v) => {
    let rest = Number(v);
    const parts: string[] = [];
    for (const [unit, len] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
      const n = Math.floor(rest / len);
      if (n > 0) {
        parts.push(`${n}${unit}`);
        rest -= n * len;
      }
    }
    return parts.join(' ');
  },
  bytes: (v) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let value = Number(v);
    let u = 0;
    if (value > 1023) {
      u = Math.floor(Math.log(value) / Math.log(1024));
      value /= 1024 ** u;
    }
    return `${value.toFixed(2)} ${units[u]}`;
  },
  fraction_as_percentage: (v) => `${(Number(v) * 100).toFixed(2)}%`,
};

/** data_to_text */
function dataToText(data: unknown, prop: Prop | undefined, opts: FormatOptions): string {
  if (data === undefined || data === null) return '';
  const human = opts['human-readable'] ?? 1;
  if (human && prop) {
    if (prop.type === 'boolean') return data ? '1' : '0';
    if (prop.renderer) return RENDERERS[prop.renderer]!(data);
  }
  if (typeof data === 'object') return canonicalJson(data);
  return String(data);
}

/** extract_properties_to_print: required properties sorted, then optional ones sorted */
export function propertiesToPrint(props: Record<string, Prop> | undefined): string[] {
  if (!props) return [];
  const keys = Object.keys(props);
  return [...keys.filter((k) => !props[k]!.optional).sort(), ...keys.filter((k) => props[k]!.optional).sort()];
}

/** print_text_table */
export function textTable(
  data: Record<string, unknown>[],
  returnprops: Record<string, Prop>,
  props: string[],
  opts: FormatOptions,
  term: TerminalOptions,
): string {
  const border = !opts.noborder;
  const header = !opts.noheader;
  const sortKey = props[0];
  if (sortKey !== undefined) {
    const type = returnprops[sortKey]?.type ?? 'string';
    const numeric = type === 'integer' || type === 'number';
    data = [...data].sort((a, b) => {
      const x = a[sortKey];
      const y = b[sortKey];
      if (x === undefined && y === undefined) return 0;
      if (x === undefined) return -1;
      if (y === undefined) return 1;
      if (numeric) return Number(x) - Number(y);
      const sx = String(x);
      const sy = String(y);
      return sx < sy ? -1 : sx > sy ? 1 : 0;
    });
  }

  const rows = data.map((entry) => {
    let height = 1;
    const cells: Record<string, string[]> = {};
    for (const p of props) {
      const lines = dataToText(entry[p], returnprops[p], opts).split('\n');
      if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
      height = Math.max(height, lines.length);
      cells[p] = lines;
    }
    return { height, cells };
  });

  const width: Record<string, number> = {};
  const right: Record<string, boolean> = {};
  for (const p of props) {
    const info = returnprops[p] ?? ({ type: 'string' } as Prop);
    right[p] = info.type === 'integer' || info.type === 'number';
    const title = info.title ?? p;
    let longest = title.length;
    for (const r of rows) for (const l of r.cells[p]!) longest = Math.max(longest, [...l].length);
    const cutoff = info.print_width ?? info.maxLength;
    width[p] = cutoff === undefined || cutoff > longest ? longest : cutoff;
  }

  const cell = (p: string, text: string) => {
    const t = [...text].slice(0, width[p]).join('');
    const fill = ' '.repeat(Math.max(0, width[p]! - [...t].length));
    return right[p] ? fill + t : t + fill;
  };
  const u = term.utf8;
  const line = (parts: string[]) => {
    const sep = u ? '│' : '|';
    return `${sep} ${parts.join(` ${sep} `)} ${sep}`;
  };
  const rule = (l: string, m: string, r: string, f: string) => l + props.map((p) => f.repeat(width[p]! + 2)).join(m) + r;
  const ruleT = u ? rule('┌', '┬', '┐', '─') : rule('+', '+', '+', '-');
  const ruleH = u ? rule('╞', '╪', '╡', '═') : rule('+', '+', '+', '=');
  const ruleM = u ? rule('├', '┼', '┤', '─') : rule('+', '+', '+', '-');
  const ruleB = u ? rule('└', '┴', '┘', '─') : rule('+', '+', '+', '-');

  const out: string[] = [];
  const write = (s: string) => out.push(term.columns ? [...s].slice(0, term.columns).join('') : s);
  if (border) write(ruleT);
  let sep = ruleM;
  if (header) {
    const titles = props.map((p) => returnprops[p]?.title ?? p);
    write(border ? line(props.map((p, i) => cell(p, titles[i]!))) : noBorderLine(props, titles, width, right));
    sep = ruleH;
  }
  rows.forEach((r, i) => {
    if (border && (i !== 0 || header)) {
      write(sep);
      sep = ruleM;
    }
    for (let k = 0; k < r.height; k++) {
      const texts = props.map((p) => r.cells[p]![k] ?? '');
      write(border ? line(props.map((p, j) => cell(p, texts[j]!))) : noBorderLine(props, texts, width, right));
    }
  });
  if (border) write(ruleB);
  return out.map((l) => `${l}\n`).join('');
}

/** without border: columns padded, the last one neither aligned nor cut */
function noBorderLine(props: string[], texts: string[], width: Record<string, number>, right: Record<string, boolean>): string {
  return props
    .map((p, i) => {
      const t = texts[i]!;
      if (i === props.length - 1) return t;
      const cut = [...t].slice(0, width[p]).join('');
      const fill = ' '.repeat(Math.max(0, width[p]! - [...cut].length));
      return right[p] ? fill + cut : cut + fill;
    })
    .join(' ');
}

/** print_api_result: returns what Proxmox prints on stdout */
export function formatApiResult(data: unknown, schema: Prop | undefined, opts: FormatOptions, term: TerminalOptions = terminalOptions()): string {
  if (opts.quiet) return '';
  const format = opts['output-format'] ?? 'text';
  let s = schema;
  if (s) {
    if (s.type === 'null') return '';
    if (s.optional && (data === undefined || data === null)) return '';
  } else {
    const guess = (d: unknown): Prop['type'] => (d === undefined || d === null ? 'null' : Array.isArray(d) ? 'array' : typeof d === 'object' ? 'object' : 'string');
    s = { type: guess(data) };
    if (s.type === 'array') s.items = { type: guess((data as unknown[])[0]) };
  }
  if (format === 'json') return `${canonicalJson(data)}\n`;
  if (format === 'json-pretty') return `${prettyJson(data)}\n`;
  if (format === 'yaml') return `---${yaml(data)}`;
  // text
  if (s.type === 'object') {
    let props = propertiesToPrint(s.properties);
    const obj = (data ?? {}) as Record<string, unknown>;
    if (props.length === 0) props = Object.keys(obj).sort();
    const kv = props.filter((k) => obj[k] !== undefined && obj[k] !== null).map((k) => ({ key: k, value: dataToText(obj[k], s!.properties?.[k], opts) }));
    return textTable(kv, {}, ['key', 'value'], opts, term);
  }
  if (s.type === 'array') {
    const arr = (data ?? []) as unknown[];
    if (arr.length === 0) return '';
    if (s.items?.type === 'object') {
      let props = propertiesToPrint(s.items.properties);
      if (props.length === 0) props = [...new Set(arr.flatMap((o) => Object.keys(o as object)))].sort();
      return textTable(arr as Record<string, unknown>[], s.items.properties ?? {}, props, opts, term);
    }
    const items = s.items ?? ({ type: 'string' } as Prop);
    return textTable(arr.map((value) => ({ value })), { value: items }, ['value'], { ...opts, noheader: 1 }, term);
  }
  if (data === undefined || data === null) return '';
  return `${String(data)}\n`;
}
