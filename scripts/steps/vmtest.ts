// Pipeline step "vm test" (after export and lint): boot the exported artifact in QEMU and check it
// with the image's goss spec (<os>/goss.yaml). SKIP_VM_TEST=1 makes the pipeline skip it.
import type { ImageDef } from '../lib/image-def.ts';
import { runVmTest, type VmTestResult } from '../vm/check.ts';

export async function runStep(def: ImageDef, dir: string): Promise<VmTestResult | { skipped: string }> {
  return runVmTest(def, dir);
}
