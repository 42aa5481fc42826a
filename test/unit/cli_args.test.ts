import { describe, expect, expectTypeOf, it } from 'vitest';
import { parseArgs, kebabCase, describeFlags, type FlagSpecs } from '../../src/cli/args.js';
import { formatBytes, table } from '../../src/cli/format.js';
import { main, commands, forklmVersion } from '../../src/cli/main.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { readFileSync } from 'node:fs';

const specs = {
  json: { type: 'boolean', description: 'JSON output' },
  maxNewTokens: { type: 'integer', description: 'Tokens to generate', default: 64, min: 1, max: 4096 },
  temperature: { type: 'number', description: 'Sampling temperature', min: 0 },
  mode: { type: 'string', description: 'Sampling mode', choices: ['eab', 'naive'] as const, default: 'eab' },
  prompt: { type: 'string', description: 'The prompt' },
  model: { type: 'string', description: 'Model', required: true },
} satisfies FlagSpecs;

function capture(env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env }, out, err };
}

describe('parseArgs', () => {
  it('parses both value forms, kebab-case names, booleans and defaults, with types from the spec', () => {
    const r = parseArgs(['--model', 'stories', '--max-new-tokens=12', '--temperature', '0.7', '--json', '--prompt=a=b c'], specs);
    expect(r.flags).toEqual({ model: 'stories', maxNewTokens: 12, temperature: 0.7, json: true, mode: 'eab', prompt: 'a=b c' });
    expect(r.positionals).toEqual([]);
    expectTypeOf(r.flags.maxNewTokens).toEqualTypeOf<number>();
    expectTypeOf(r.flags.temperature).toEqualTypeOf<number | undefined>();
    expectTypeOf(r.flags.mode).toEqualTypeOf<'eab' | 'naive'>();
    expectTypeOf(r.flags.json).toEqualTypeOf<boolean>();
    expectTypeOf(r.flags.model).toEqualTypeOf<string>();
    const d = parseArgs(['--model', 'm'], specs);
    expect(d.flags.json).toBe(false);
    expect(d.flags.temperature).toBeUndefined();
  });

  it('accepts --no-flag and --flag=false for booleans, negative numbers as values, and last-wins repeats', () => {
    expect(parseArgs(['--model=m', '--json', '--no-json'], specs).flags.json).toBe(false);
    expect(parseArgs(['--model=m', '--json=false'], specs).flags.json).toBe(false);
    expect(parseArgs(['--model=m', '--json=true'], specs).flags.json).toBe(true);
    expect(() => parseArgs(['--model=m', '--json=maybe'], specs)).toThrow(/is a switch/);
    // A negative number after a numeric flag is its value, not a flag (rejected here by min: 0).
    expect(() => parseArgs(['--model=m', '--temperature', '-1'], specs)).toThrow(/--temperature must be at least 0; got -1/);
    expect(parseArgs(['--model=a', '--model=b'], specs).flags.model).toBe('b');
  });

  it('validates numbers: syntax, integers, ranges', () => {
    for (const bad of ['abc', '', ' ', '0x10', '1e', 'NaN', 'Infinity', '1,5']) {
      expect(() => parseArgs(['--model=m', `--temperature=${bad}`], specs), bad).toThrow(/needs a number/);
    }
    expect(parseArgs(['--model=m', '--temperature=1e-1'], specs).flags.temperature).toBe(0.1);
    expect(parseArgs(['--model=m', '--temperature=.5'], specs).flags.temperature).toBe(0.5);
    expect(() => parseArgs(['--model=m', '--max-new-tokens=1.5'], specs)).toThrow(/whole number; got '1.5'/);
    expect(() => parseArgs(['--model=m', '--max-new-tokens=0'], specs)).toThrow(/at least 1/);
    expect(() => parseArgs(['--model=m', '--max-new-tokens=5000'], specs)).toThrow(/at most 4096/);
    expect(() => parseArgs(['--model=m', '--mode=beam'], specs)).toThrow(/--mode=beam is not one of eab, naive/);
  });

  it('rejects unknown flags, listing the flags that exist and suggesting a near one', () => {
    const err = (() => {
      try {
        parseArgs(['--model=m', '--maxNewTokens=3'], specs, { command: 'forklm generate' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(
      'Unknown flag --maxNewTokens for `forklm generate`. Did you mean --max-new-tokens? ' +
        'Flags: --json, --max-new-tokens, --temperature, --mode, --prompt, --model.',
    );
    expect(() => parseArgs(['--tempreature=1', '--model=m'], specs)).toThrow(/Did you mean --temperature\?/);
    expect(() => parseArgs(['--zzz'], specs)).toThrow(/^Unknown flag --zzz\. Flags: /);
    expect(() => parseArgs(['-x'], specs)).toThrow(/Unknown flag -x/);
    expect(() => parseArgs(['--no-model'], specs)).toThrow(/Unknown flag --no-model/);
  });

  it('reports missing values and missing required flags', () => {
    expect(() => parseArgs(['--model'], specs)).toThrow(/--model needs a value/);
    expect(() => parseArgs(['--prompt', '--json', '--model=m'], specs)).toThrow(/--prompt needs a value/);
    expect(parseArgs(['--prompt=--json', '--model=m'], specs).flags.prompt).toBe('--json');
    expect(() => parseArgs(['--json'], specs)).toThrow(/--model is required/);
  });

  it('handles positionals and --', () => {
    expect(() => parseArgs(['--model=m', 'extra'], specs)).toThrow(/Unexpected argument 'extra'/);
    const r = parseArgs(['a', '--model=m', '--', '--json', 'b'], specs, { maxPositionals: 3 });
    expect(r.positionals).toEqual(['a', '--json', 'b']);
    expect(r.flags.json).toBe(false);
    expect(() => parseArgs(['a', 'b', '--model=m'], specs, { maxPositionals: 1 })).toThrow(/Too many arguments: 'b'/);
  });

  it('kebab-cases keys and renders help with defaults', () => {
    expect(kebabCase('maxNewTokens')).toBe('max-new-tokens');
    const help = describeFlags(specs);
    expect(help).toContain('--max-new-tokens <n>');
    expect(help).toMatch(/--mode <eab\|naive> +Sampling mode \(default: eab\)/);
    expect(help).toMatch(/--model <text> +Model \(required\)/);
  });
});

describe('format', () => {
  it('formats bytes and aligns tables', () => {
    expect(formatBytes(134217728)).toBe('128 MiB');
    expect(formatBytes(2 ** 31)).toBe('2 GiB');
    expect(formatBytes(32768)).toBe('32 KiB');
    expect(formatBytes(1000)).toBe('1000 B');
    expect(formatBytes(4294967292)).toBe('4.00 GiB');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(table([['a', 'bb'], ['ccc', 'd']])).toBe('a    bb\nccc  d\n');
  });
});

describe('main', () => {
  it('prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(forklmVersion()).toBe(pkg.version);
    const c = capture();
    expect(await main(['--version'], c.io)).toBe(0);
    expect(c.out.join('')).toBe(`${pkg.version}\n`);
    const j = capture();
    expect(await main(['--version', '--json'], j.io)).toBe(0);
    expect(JSON.parse(j.out.join(''))).toEqual({ version: pkg.version });
  });

  it('prints help, and usage with exit 2 when no command is given', async () => {
    const h = capture();
    expect(await main(['--help'], h.io)).toBe(0);
    expect(h.out.join('')).toMatch(/Usage: forklm <command>[\s\S]*doctor[\s\S]*generate/);
    const d = capture();
    expect(await main(['help', 'doctor'], d.io)).toBe(0);
    expect(d.out.join('')).toMatch(/Usage: forklm doctor[\s\S]*--json[\s\S]*--timeout <seconds>/);
    const d2 = capture();
    expect(await main(['doctor', '--help'], d2.io)).toBe(0);
    expect(d2.out.join('')).toBe(d.out.join(''));
    const none = capture();
    expect(await main([], none.io)).toBe(2);
    expect(none.err.join('')).toMatch(/Usage:/);
  });

  it('usage errors exit 2 as `forklm: <message>`, or as JSON with --json', async () => {
    const c = capture();
    expect(await main(['frobnicate'], c.io)).toBe(2);
    expect(c.err.join('')).toBe("forklm: Unknown command 'frobnicate'. Commands: doctor, generate, info, serve; see `forklm help`.\n");
    expect(c.out).toEqual([]);
    const j = capture();
    expect(await main(['doctor', '--json', '--bogus'], j.io)).toBe(2);
    const parsed = JSON.parse(j.out.join('')) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe('INVALID_ARGUMENT');
    expect(parsed.error.message).toMatch(/Unknown flag --bogus for `forklm doctor`.*--json, --timeout/);
    expect(j.err).toEqual([]);
  });

  it('other errors exit 1; a non-forklm error is reported as internal', async () => {
    const g = capture();
    // A model that does not exist: a ModelNotFoundError, not a usage error.
    expect(await main(['generate', '--model', 'no-such-model', '--prompt', 'hi'], g.io)).toBe(1);
    expect(g.err.join('')).toMatch(/^forklm: "no-such-model" is neither a known model/);
    const saved = commands.boom;
    commands.boom = { summary: 'test', flags: { json: { type: 'boolean', description: 'j' } }, run: async () => Promise.reject(new TypeError('x is undefined')) };
    try {
      const b = capture();
      expect(await main(['boom'], b.io)).toBe(1);
      expect(b.err.join('')).toMatch(/^forklm: internal error: x is undefined\nSet FORKLM_DEBUG=1/);
      const bj = capture();
      expect(await main(['boom', '--json'], bj.io)).toBe(1);
      expect(JSON.parse(bj.out.join(''))).toEqual({ error: { code: 'INTERNAL', message: 'x is undefined' } });
    } finally {
      if (saved) commands.boom = saved;
      else delete commands.boom;
    }
  });

  it('a registered command gets its parsed flags and the version', async () => {
    let seen: unknown;
    commands.echo = {
      summary: 'test',
      flags: { n: { type: 'integer', description: 'n' } },
      run: async (args, ctx) => {
        seen = { flags: args.flags, version: ctx.version };
        ctx.stdout('ok\n');
        return 3;
      },
    };
    try {
      const c = capture();
      expect(await main(['echo', '--n=4'], c.io)).toBe(3);
      expect(seen).toEqual({ flags: { n: 4 }, version: forklmVersion() });
      expect(c.out).toEqual(['ok\n']);
    } finally {
      delete commands.echo;
    }
  });
});
