// Pipeline step "lint" (after export, before the VM test): the contract lint of scripts/lint/, which
// prints its report and fails the build on any error finding.
import type { ImageDef } from '../lib/image-def.ts';
import { runLint, type LintReport } from '../lint/lint.ts';

export async function runStep(def: ImageDef, dir: string): Promise<LintReport> {
  return runLint(def, dir);
}
