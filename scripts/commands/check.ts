// `make check`: the static checks of every OS folder (or the ones named), no archive, base image or
// docker daemon needed: image.yaml validates, each Dockerfile parses, every ARG it uses is declared
// and given, every COPY source exists in the staged context, each goss spec parses with known
// resource types, and the shipped shell scripts pass shellcheck.
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { MetalError, PreconditionError, UsageError } from '../lib/errors.ts';
import { listOsFolders } from '../lib/image-def.ts';
import { table, bold } from '../lib/log.ts';
import { which } from '../lib/shell.ts';
import { CHECKS, checkAll, formatFinding, type Finding } from '../static/checks.ts';
import { checkCi, type CiFinding } from '../static/ci.ts';

export async function main(args: Args): Promise<void> {
  const root = config().root;
  const known = listOsFolders(root);
  for (const os of args.positional) {
    if (!known.includes(os)) throw new UsageError(`unknown OS "${os}" (known: ${known.join(', ')})`, 'run make check');
  }
  if (!(await which('shellcheck'))) throw new PreconditionError('shellcheck is not installed', 'run make setup (installs shellcheck)');

  const { reports, shared } = await checkAll(root, args.positional);
  const all: Finding[] = [...reports.flatMap((r) => r.findings), ...shared];
  for (const f of all) console.log(`${f.check}: ${formatFinding(f)}`);
  // the CI definitions (not per folder: they are checked whole, also when folders are named)
  const ci = await checkCi(root);
  const ciAll: CiFinding[] = [...ci.github, ...ci.gitlab];
  for (const f of ci.github) console.log(`actionlint: ${f.file}${f.line !== null ? `:${f.line}` : ''}: ${f.message}`);
  for (const f of ci.gitlab) console.log(`gitlab-ci: ${f.file}${f.line !== null ? `:${f.line}` : ''}: ${f.message}`);
  if (all.length > 0) console.log('');

  const cell = (findings: Finding[], notRun: string | undefined): string => {
    if (notRun) return `not run (${notRun})`;
    return findings.length === 0 ? 'ok' : `${findings.length} finding${findings.length === 1 ? '' : 's'}`;
  };
  console.log(
    table([
      ['folder', ...CHECKS],
      ...reports.map((r) => [`${r.os}/`, ...CHECKS.map((c) => cell(r.findings.filter((f) => f.check === c), r.notRun[c]))]),
      ['shared: layers/, tests/goss/, scripts/{installer,image-lib}/', ...CHECKS.map((c) => (c === 'shellcheck' || c === 'goss' ? cell(shared.filter((f) => f.check === c), undefined) : '-'))],
    ]),
  );
  console.log('');
  console.log(
    table([
      ['CI definition', 'checked by', 'result'],
      [`.github/workflows/ (${ci.workflows} files)`, 'actionlint (with shellcheck on run: scripts)', ci.github.length === 0 ? 'ok' : `${ci.github.length} finding${ci.github.length === 1 ? '' : 's'}`],
      ['.gitlab-ci.yml', 'make check: YAML, stages, make targets, a job per image', ci.gitlab.length === 0 ? 'ok' : `${ci.gitlab.length} finding${ci.gitlab.length === 1 ? '' : 's'}`],
    ]),
  );
  const problems = all.length + ciAll.length;
  if (problems > 0) {
    throw new MetalError('tool', `static checks found ${problems} problem${problems === 1 ? '' : 's'} (listed above)`, 'fix the files named above and run make check');
  }
  console.log(bold(`static checks passed for ${reports.map((r) => r.os).join(', ')} and both CI definitions`));
}
