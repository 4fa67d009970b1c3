// A small Dockerfile parser for the static checks: parser directives, comments, line
// continuations, instructions with their flags, ARG/ENV declarations, COPY/ADD sources and the
// `$VAR` / `${VAR}` references of every instruction. Pure: text in, data out.
//
// It follows the rules of the Dockerfile frontend the pipeline builds with: BuildKit's, as built
// into Debian's dockerd 20.10 (BuildKit 0.8, Dockerfile syntax 1.2), used without a `# syntax=`
// line (that line makes BuildKit pull the frontend image docker/dockerfile from a registry, and
// there is none here: it is an error). Comment lines are dropped even inside a continued
// instruction, a line ending in the escape character (optionally followed by blanks) continues on
// the next line. RUN takes --mount (bind, cache, tmpfs, secret, ssh), --network and --security;
// newer syntax (heredocs, Dockerfile 1.4) is reported as an error.

export const INSTRUCTIONS = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT',
  'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
] as const;
export type Keyword = (typeof INSTRUCTIONS)[number];

/** Instructions whose arguments the builder itself expands ($VAR from ARG/ENV in scope). */
export const EXPANDED: readonly Keyword[] = ['FROM', 'ADD', 'COPY', 'ENV', 'EXPOSE', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR', 'ARG'];

/** Build args every builder defines without an ARG line (docker's predefined proxy args). */
export const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

export interface Instruction {
  keyword: Keyword;
  /** Everything after the keyword, continuations joined with a space, flags included. */
  args: string;
  /** Arguments after the leading --flags. */
  rest: string;
  /** Leading --name=value flags (COPY --from=..., FROM --platform=...). */
  flags: Record<string, string>;
  /** RUN: the value of every --mount flag, in order (flags keeps only the last). */
  mounts: string[];
  /** Exec (JSON array) form, if the arguments are one. */
  json: string[] | null;
  /** 1-based line of the keyword. */
  line: number;
}

export interface ParseError {
  line: number;
  message: string;
}

export interface Dockerfile {
  instructions: Instruction[];
  errors: ParseError[];
  escape: string;
}

export interface VarRef {
  name: string;
  /** Text as written, e.g. "${KERNEL_PACKAGE}" or "$IMAGE_OS". */
  text: string;
}

/** Parse a Dockerfile. Never throws: syntax problems are returned in `errors`. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const errors: ParseError[] = [];
  const instructions: Instruction[] = [];
  let escape = '\\';

  // Parser directives: only at the very top, before any comment, blank line or instruction.
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') errors.push({ line: i + 1, message: `invalid escape directive "${m[2]}" (only \\ or \` are allowed)` });
      else escape = m[2];
    } else if (key === 'syntax') {
      errors.push({ line: i + 1, message: `syntax directive "${m[2]}": BuildKit would pull that frontend image from a registry; the Dockerfile frontend built into dockerd 20.10 needs none` });
    } else if (key !== 'check') break;
  }

  const continues = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let buf: string[] = [];
  let start = 0;
  const flush = (): void => {
    if (buf.length === 0) return;
    const joined = buf.join('').trim(); // docker removes escape + newline and adds nothing
    buf = [];
    if (joined) parseInstruction(joined, start, instructions, errors);
  };
  for (; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    const inInstruction = buf.length > 0;
    if (/^#/.test(trimmed)) continue; // comment lines vanish, also inside a continuation
    if (trimmed === '') continue; // blank lines too (inside a continuation docker only warns)
    if (!inInstruction) start = i + 1;
    if (continues.test(raw)) {
      buf.push(raw.replace(continues, ''));
      continue;
    }
    buf.push(raw);
    flush();
  }
  if (buf.length > 0) {
    errors.push({ line: start, message: 'the last instruction ends with a line continuation and no next line' });
    flush();
  }
  if (!instructions.some((x) => x.keyword === 'FROM')) errors.push({ line: 1, message: 'no FROM instruction' });
  const firstNonArg = instructions.find((x) => x.keyword !== 'ARG');
  if (firstNonArg && firstNonArg.keyword !== 'FROM') {
    errors.push({ line: firstNonArg.line, message: `${firstNonArg.keyword} before the first FROM (only ARG may come before it)` });
  }
  return { instructions, errors, escape };
}

function parseInstruction(text: string, line: number, out: Instruction[], errors: ParseError[]): void {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text)!;
  const word = m[1]!.toUpperCase();
  const args = m[2]!.trim();
  if (!(INSTRUCTIONS as readonly string[]).includes(word)) {
    errors.push({ line, message: `unknown instruction "${m[1]}"` });
    return;
  }
  const keyword = word as Keyword;
  if (args === '' && keyword !== 'CMD' && keyword !== 'ENTRYPOINT') {
    errors.push({ line, message: `${keyword} needs arguments` });
    return;
  }
  const flags: Record<string, string> = {};
  const mounts: string[] = [];
  let rest = args;
  if (['FROM', 'COPY', 'ADD', 'RUN', 'HEALTHCHECK'].includes(keyword)) {
    for (;;) {
      const f = /^--([a-z][a-z-]*)(?:=(\S*))?\s*/.exec(rest);
      if (!f) break;
      flags[f[1]!] = f[2] ?? 'true';
      if (keyword === 'RUN' && f[1] === 'mount') mounts.push(f[2] ?? '');
      rest = rest.slice(f[0].length);
    }
  }
  if (keyword === 'RUN') {
    for (const f of Object.keys(flags)) {
      if (!RUN_FLAGS.includes(f)) errors.push({ line, message: `RUN --${f} is not a flag of the Dockerfile frontend built into dockerd 20.10 (RUN takes --${RUN_FLAGS.join(', --')})` });
    }
    for (const m of mounts) {
      const type = mountOptions(m).type ?? 'bind';
      if (!MOUNT_TYPES.includes(type)) errors.push({ line, message: `RUN --mount type "${type}" is not one of ${MOUNT_TYPES.join(', ')}` });
      if (!mountOptions(m).target && !mountOptions(m).dst && !mountOptions(m).destination) errors.push({ line, message: `RUN --mount=${m} has no target` });
    }
  }
  let json: string[] | null = null;
  if (rest.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v as string[];
    } catch {
      // not JSON: shell form, as docker treats it
    }
  }
  if ((keyword === 'RUN' || keyword === 'COPY' || keyword === 'ADD') && /(^|\s)<<-?["']?[A-Za-z_]\w*["']?(\s|$)/.test(rest)) {
    errors.push({ line, message: `${keyword} uses a heredoc (<<WORD): Dockerfile 1.4 syntax, which the frontend built into dockerd 20.10 does not have` });
  }
  if (keyword === 'SHELL' && !json) errors.push({ line, message: 'SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]' });
  out.push({ keyword, args, rest, flags, mounts, json, line });
}

/** RUN flags of the Dockerfile frontend in dockerd 20.10 (Dockerfile 1.2). */
export const RUN_FLAGS = ['mount', 'network', 'security'];
export const MOUNT_TYPES = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

/** Pure: the key=value options of a --mount value (`type=cache,target=/x,sharing=locked`). */
export function mountOptions(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    out[(eq < 0 ? part : part.slice(0, eq)).toLowerCase()] = eq < 0 ? 'true' : part.slice(eq + 1);
  }
  return out;
}

/**
 * `$NAME` and `${NAME...}` references in a text. `shell` mode (RUN) skips single-quoted spans,
 * which the shell does not expand; builder mode expands everywhere except after the escape char.
 */
export function varRefs(text: string, opts: { shell?: boolean; escape?: string } = {}): VarRef[] {
  const escape = opts.escape ?? '\\';
  const out: VarRef[] = [];
  let inSingle = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === escape && !inSingle) {
      i++;
      continue;
    }
    if (opts.shell && c === "'") {
      inSingle = !inSingle;
      continue;
    }
    if (inSingle || c !== '$') continue;
    const rest = text.slice(i + 1);
    const braced = /^\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}/.exec(rest);
    const bare = braced ? null : /^([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
    const m = braced ?? bare;
    if (!m) continue;
    out.push({ name: m[1]!, text: `$${m[0]}` });
    i += m[0].length;
  }
  return out;
}

/** Pure: `NAME[=default]` pairs of an ARG instruction (docker allows several on one line). */
export function parseArg(rest: string): { name: string; value: string | null }[] {
  return splitWords(rest).map((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? { name: w, value: null } : { name: w.slice(0, eq), value: unquote(w.slice(eq + 1)) };
  });
}

/** Pure: names (and values) an ENV instruction sets: `K=V [K2=V2...]` or the legacy `K V`. */
export function parseEnv(rest: string): { name: string; value: string }[] {
  const words = splitWords(rest);
  if (words.length > 0 && !words[0]!.includes('=')) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(rest.trim());
    return m ? [{ name: m[1]!, value: m[2]! }] : [{ name: rest.trim(), value: '' }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    return { name: eq < 0 ? w : w.slice(0, eq), value: eq < 0 ? '' : unquote(w.slice(eq + 1)) };
  });
}

/** Pure: sources and destination of a COPY/ADD instruction (exec or shell form). */
export function copyOperands(ins: Instruction): { sources: string[]; dest: string } {
  const words = ins.json ?? splitWords(ins.rest).map(unquote);
  return { sources: words.slice(0, -1), dest: words[words.length - 1] ?? '' };
}

/** Split on unquoted whitespace, keeping quotes (values are unquoted by the callers). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      cur += c;
      if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

function unquote(s: string): string {
  if (s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'")))) return s.slice(1, -1);
  return s;
}

/** A build stage: its FROM instruction and the instructions up to the next FROM. */
export interface Stage {
  from: Instruction;
  /** `AS name`, lower-cased, or '' */
  name: string;
  /** The image reference as written (before expansion). */
  image: string;
  body: Instruction[];
}

/** Pure: global ARGs (before the first FROM) and the stages. */
export function stages(df: Dockerfile): { globalArgs: Instruction[]; stages: Stage[] } {
  const globalArgs: Instruction[] = [];
  const out: Stage[] = [];
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const w = splitWords(ins.rest);
      const name = w.length >= 3 && w[1]!.toUpperCase() === 'AS' ? w[2]!.toLowerCase() : '';
      out.push({ from: ins, name, image: w[0] ?? '', body: [] });
    } else if (out.length === 0) globalArgs.push(ins);
    else out[out.length - 1]!.body.push(ins);
  }
  return { globalArgs, stages: out };
}
