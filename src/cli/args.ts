// A small typed flag parser and the shape of a subcommand. Flags are declared once, with camelCase keys; on the
// command line they are kebab-case (`maxNewTokens` is `--max-new-tokens`). Accepted forms: `--flag value`,
// `--flag=value`, booleans as `--flag`, `--flag=true|false` or `--no-flag`; `--` ends the flags. A flag given twice
// takes its last value (so a script can append an override). Anything malformed is an InvalidArgumentError that
// names the flag and lists the ones that exist.
import { InvalidArgumentError } from '../errors.js';
import { flagHelp } from './format.js';

interface FlagBase {
  description: string;
  /** The value's name in help text: `--model <name>`. */
  placeholder?: string;
  /** Reject the command line when the flag is missing (and has no default). */
  required?: boolean;
}
export interface BooleanFlag extends FlagBase {
  type: 'boolean';
}
export interface StringFlag extends FlagBase {
  type: 'string';
  default?: string;
  /** The only accepted values; declare with `as const` to get a union type. */
  choices?: readonly string[];
}
export interface NumberFlag extends FlagBase {
  /** `integer` rejects 1.5; both reject NaN, Infinity, hex and empty strings. */
  type: 'number' | 'integer';
  default?: number;
  min?: number;
  max?: number;
}
export type FlagSpec = BooleanFlag | StringFlag | NumberFlag;
export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<F> = F extends BooleanFlag
  ? boolean
  : F extends { choices: readonly (infer C extends string)[] }
    ? C
    : F extends StringFlag
      ? string
      : number;
type AlwaysSet<F> = F extends BooleanFlag ? true : F extends { default: unknown } | { required: true } ? true : false;

/** Parsed flag values: booleans default to false; others are undefined unless given, defaulted or required. */
export type Flags<S extends FlagSpecs> = { [K in keyof S]: AlwaysSet<S[K]> extends true ? ValueOf<S[K]> : ValueOf<S[K]> | undefined };

export interface ParsedArgs<S extends FlagSpecs = FlagSpecs> {
  flags: Flags<S>;
  positionals: string[];
}

export interface ParseOptions {
  /** How the command is called in messages, e.g. `forklm doctor`. */
  command?: string;
  /** Most positional arguments accepted (default 0). */
  maxPositionals?: number;
}

/** `maxNewTokens` -> `max-new-tokens`. */
export function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}

const NUMBER_SYNTAX = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S, options: ParseOptions = {}): ParsedArgs<S> {
  const where = options.command ? ` for \`${options.command}\`` : '';
  const byName = new Map<string, string>();
  for (const key of Object.keys(specs)) byName.set(kebabCase(key), key);
  const known = (): string => (byName.size ? [...byName.keys()].map((n) => `--${n}`).join(', ') : 'none');
  const unknown = (flag: string): InvalidArgumentError => {
    const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
    const typed = flag.replace(/^-+/, '');
    const near = [...byName.keys()].find((n) => squash(n) === squash(typed) || editDistance(n, typed) <= 2);
    return new InvalidArgumentError(
      `Unknown flag ${flag}${where}.${near ? ` Did you mean --${near}?` : ''} Flags: ${known()}.`,
    );
  };

  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw unknown(arg);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const key = byName.get(name);
    if (key === undefined && name.startsWith('no-') && inline === undefined) {
      const positive = byName.get(name.slice(3));
      if (positive !== undefined && specs[positive].type === 'boolean') {
        values[positive] = false;
        continue;
      }
    }
    if (key === undefined) throw unknown(`--${name}`);
    const spec = specs[key];
    if (spec.type === 'boolean') {
      if (inline === undefined || inline === 'true' || inline === '1') values[key] = true;
      else if (inline === 'false' || inline === '0') values[key] = false;
      else throw new InvalidArgumentError(`--${name}${where} is a switch; give it alone, or as --${name}=true or --${name}=false (got '${inline}').`);
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      // A following `--other` flag means this one's value was forgotten; `--prompt=--x` passes such a value.
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new InvalidArgumentError(`--${name}${where} needs a value: --${name} <${spec.placeholder ?? spec.type}>.`);
      }
      raw = next;
      i++;
    }
    values[key] = convert(name, raw, spec, where);
  }

  for (const [key, spec] of Object.entries(specs)) {
    if (values[key] !== undefined) continue;
    if (spec.type === 'boolean') values[key] = false;
    else if (spec.default !== undefined) values[key] = spec.default;
    else if (spec.required) {
      throw new InvalidArgumentError(`--${kebabCase(key)} is required${where}: ${spec.description}`);
    }
  }
  const maxPositionals = options.maxPositionals ?? 0;
  if (positionals.length > maxPositionals) {
    const extra = positionals.slice(maxPositionals).map((p) => `'${p}'`).join(' ');
    throw new InvalidArgumentError(
      maxPositionals === 0
        ? `Unexpected argument ${extra}${where}; it takes flags only (${known()}).`
        : `Too many arguments${where}: ${extra} (at most ${maxPositionals}).`,
    );
  }
  return { flags: values as Flags<S>, positionals };
}

/** Levenshtein distance, for "did you mean" (flag names are short, so the O(n*m) table is nothing). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function convert(name: string, raw: string, spec: StringFlag | NumberFlag, where: string): string | number {
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new InvalidArgumentError(`--${name}=${raw}${where} is not one of ${spec.choices.join(', ')}.`);
    }
    return raw;
  }
  const t = raw.trim();
  const n = NUMBER_SYNTAX.test(t) ? Number(t) : Number.NaN;
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`--${name}${where} needs a number; got '${raw}'.`);
  if (spec.type === 'integer' && !Number.isInteger(n)) {
    throw new InvalidArgumentError(`--${name}${where} needs a whole number; got '${raw}'.`);
  }
  if (spec.min !== undefined && n < spec.min) throw new InvalidArgumentError(`--${name}${where} must be at least ${spec.min}; got ${raw}.`);
  if (spec.max !== undefined && n > spec.max) throw new InvalidArgumentError(`--${name}${where} must be at most ${spec.max}; got ${raw}.`);
  return n;
}

/** The help lines for a flag set, plus `extra` lines in the same columns (e.g. --help). */
export function describeFlags(specs: FlagSpecs, extra: readonly { name: string; description: string }[] = []): string {
  return flagHelp([
    ...Object.entries(specs).map(([key, spec]) => ({
      name: kebabCase(key),
      placeholder: spec.type === 'boolean' ? undefined : (spec.placeholder ?? (spec.type === 'string' && spec.choices ? spec.choices.join('|') : spec.type === 'string' ? 'text' : 'n')),
      description: spec.description + (spec.required ? ' (required)' : ''),
      default: spec.type === 'boolean' ? undefined : spec.default,
    })),
    ...extra,
  ]);
}

/** Where a command writes, and the environment it reads (injected so tests can capture and control both). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Cancels a running command (tests; the process's Ctrl-C is handled by the commands that make requests). */
  signal?: AbortSignal;
}

/** What a command gets besides its flags. */
export interface CliContext extends CliIo {
  /** forklm's version, from package.json. */
  version: string;
}

/** A subcommand: `forklm <name> [flags]`. Registered in `commands` in main.ts. */
export interface Command<S extends FlagSpecs = FlagSpecs> {
  /** One line for `forklm help`. */
  summary: string;
  /** Longer text for `forklm <name> --help`, after the usage line. */
  details?: string;
  flags: S;
  /** Positional arguments accepted, for the usage line (e.g. `[prompt]`) and the parser's limit. */
  positionals?: { usage: string; max: number };
  /** Returns the exit code. Throw a ForkLMError for failures; main prints it and picks the code. */
  run(args: ParsedArgs<S>, ctx: CliContext): Promise<number>;
}

/** Types a command against its own flags and erases that type for the `commands` registry. */
export function defineCommand<S extends FlagSpecs>(command: Command<S>): Command {
  return command as unknown as Command;
}
