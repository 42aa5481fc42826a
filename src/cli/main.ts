// The `forklm` command line: `forklm <command> [flags]`. bin/forklm.js calls main() and exits with its code, because
// Dawn can keep the Node process alive after the work is done.
//
// Errors: a ForkLMError prints `forklm: <message>` on stderr; exit code 2 for usage errors (InvalidArgumentError),
// 130 for a run cancelled by Ctrl-C (CancelledError), 1 for everything else. With --json anywhere among the flags, the
// error is printed on stdout instead, as {"error":{"code","message"}}, so a script reading stdout gets one JSON
// document either way.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, ForkLMError, InvalidArgumentError } from '../errors.js';
import { defineCommand, describeFlags, parseArgs, type CliContext, type CliIo, type Command } from './args.js';
import { doctorCommand } from './doctor.js';
import { generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { FAMILY_EXAMPLES } from '../model/families.js';
import { FAMILIES } from '../model/spec.js';
import { serveCommand } from './serve.js';
import { table } from './format.js';

/**
 * Every subcommand, by name. Add one by assigning `commands.name = defineCommand({...})` (see args.ts for the
 * shape); help, --help, flag parsing and error printing come with it.
 */
export const commands: Record<string, Command> = {
  doctor: doctorCommand,
  generate: generateCommand,
  info: infoCommand,
  serve: serveCommand,
};

let cachedVersion: string | undefined;

/**
 * forklm's version from its package.json, found by walking up from this module: the source lives at
 * src/cli/main.ts and the build at dist/src/cli/main.js, two and three levels below the package root.
 */
export function forklmVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'forklm' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    } catch {
      // No package.json at this level (or an unreadable one): keep walking up.
    }
    dir = dirname(dir);
  }
  return (cachedVersion = 'unknown');
}

function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
  };
}

/** Flags before a `--`: only those can be --json or --help. */
function flagsOf(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--');
  return end >= 0 ? argv.slice(0, end) : argv;
}

function wantsJson(argv: readonly string[]): boolean {
  return flagsOf(argv).some((a) => a === '--json' || a === '--json=true' || a === '--json=1');
}

function usage(): string {
  const rows = [
    ...Object.entries(commands).map(([name, c]) => [name, c.summary]),
    ['help [command]', "Show this help, or a command's flags"],
    ['--version', "Print forklm's version"],
  ];
  return (
    'Usage: forklm <command> [flags]\n\nCommands:\n' +
    table(rows, '  ') +
    '\nModel families (Hugging Face folders and GGUF files; MoE, multimodal and Mamba-style models are refused):\n' +
    table(FAMILIES.map((f) => [f, FAMILY_EXAMPLES[f]]), '  ') +
    '\nEnvironment: FORKLM_ADAPTER=auto|hardware|llvmpipe|swiftshader picks the WebGPU adapter (see `forklm doctor`).\n'
  );
}

function commandHelp(name: string, command: Command): string {
  const pos = command.positionals ? ` ${command.positionals.usage}` : '';
  const flags = describeFlags(command.flags, [{ name: 'help', description: 'Show this help' }]);
  return (
    `Usage: forklm ${name}${pos} [flags]\n\n${command.summary}.\n` +
    (command.details ? `\n${command.details}\n` : '') +
    `\nFlags:\n${flags}`
  );
}

function unknownCommand(name: string): InvalidArgumentError {
  const hint = name.startsWith('-') ? ' Put the command first: forklm <command> [flags].' : '';
  return new InvalidArgumentError(`Unknown command '${name}'.${hint} Commands: ${Object.keys(commands).join(', ')}; see \`forklm help\`.`);
}

function lookup(name: string): Command | undefined {
  return Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : undefined;
}

/** Runs the command line `argv` (without node and the script) and returns the process exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const json = wantsJson(argv);
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr(usage());
      return 2;
    }
    if (first === '--version' || first === '-v' || first === 'version') {
      io.stdout(json ? JSON.stringify({ version: forklmVersion() }) + '\n' : `${forklmVersion()}\n`);
      return 0;
    }
    if (first === 'help' || first === '--help' || first === '-h') {
      const topic = rest.find((a) => !a.startsWith('-'));
      if (topic === undefined) io.stdout(usage());
      else {
        const command = lookup(topic);
        if (!command) throw unknownCommand(topic);
        io.stdout(commandHelp(topic, command));
      }
      return 0;
    }
    const command = lookup(first);
    if (!command) throw unknownCommand(first);
    if (flagsOf(rest).some((a) => a === '--help' || a === '-h')) {
      io.stdout(commandHelp(first, command));
      return 0;
    }
    const args = parseArgs(rest, command.flags, { command: `forklm ${first}`, maxPositionals: command.positionals?.max ?? 0 });
    const ctx: CliContext = { stdout: io.stdout, stderr: io.stderr, env: io.env, signal: io.signal, version: forklmVersion() };
    return await command.run(args, ctx);
  } catch (e) {
    return reportError(e, io, json);
  }
}

function reportError(e: unknown, io: CliIo, json: boolean): number {
  const known = e instanceof ForkLMError;
  const code = known ? e.code : 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  if (json) io.stdout(JSON.stringify({ error: { code, message } }) + '\n');
  else if (known) io.stderr(`forklm: ${message}\n`);
  else {
    // Not a ForkLMError: a bug in forklm. The stack is what a bug report needs.
    const stack = e instanceof Error && e.stack ? e.stack : message;
    io.stderr(`forklm: internal error: ${message}\n${io.env.FORKLM_DEBUG ? stack + '\n' : 'Set FORKLM_DEBUG=1 for the stack trace.\n'}`);
  }
  // 130: the shell's code for a command ended by Ctrl-C (128 + SIGINT).
  return e instanceof InvalidArgumentError ? 2 : e instanceof CancelledError ? 130 : 1;
}
