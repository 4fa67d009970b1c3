// Step "lint" (and `make lint OS=<os>`): the contract lint of the artifact (scripts/lint/), its
// report printed, its verdict recorded in build.json for the md5 it read; an error finding fails
// the step (exit 1).
import { record, type BuildContext } from '../lib/build-context.ts';
import { MetalError } from '../lib/errors.ts';
import { formatReport, lintArtifact } from '../lint/lint.ts';

export async function lint(ctx: BuildContext, opts: { all?: boolean } = {}): Promise<string> {
  const report = await lintArtifact(ctx.def, ctx.dir);
  console.log(formatReport(report, opts));
  record(ctx, 'lint', { verdict: report.errors > 0 ? 'fail' : 'pass', md5: report.md5, errors: report.errors, warnings: report.warnings, entries: report.entries });
  if (report.errors > 0) {
    throw new MetalError(
      'tool',
      `lint found ${report.errors} error${report.errors === 1 ? '' : 's'} in ${report.file}: the metal-hammer would fail to install it`,
      `fix the image (${ctx.def.os}/, its layers, image.yaml contract) and run make ${ctx.target}`,
    );
  }
  return `${report.errors} errors, ${report.warnings} warnings, ${report.entries} entries`;
}
