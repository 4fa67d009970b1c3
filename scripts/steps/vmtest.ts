// Step "vm test" (and `make vmtest OS=<os>`): boot the artifact in QEMU and check it with goss
// (scripts/vm/), the verdict recorded in build.json for the md5 that was booted. SKIP_VM_TEST=1
// records it as skipped, which `make release` refuses.
import { join } from 'node:path';
import { IMAGE_FILE } from '../lib/artifacts.ts';
import { currentRecord, record, type BuildContext } from '../lib/build-context.ts';
import { MetalError } from '../lib/errors.ts';
import { warn } from '../lib/log.ts';
import { md5OfFile } from '../lib/md5file.ts';
import { runVmTest, type VmTestOptions, type VmTestResult } from '../vm/check.ts';
import type { VmTestPart } from '../lib/build-record.ts';

function recordVerdict(ctx: BuildContext, md5: string, part: VmTestPart): void {
  // the set may have been replaced meanwhile (another export): these results are not about it
  const now = currentRecord(ctx)?.export?.md5;
  if (now !== undefined && now !== md5) {
    warn(`the artifact set was re-exported during the VM test (md5 ${now}); the result for ${md5} is not recorded`);
    return;
  }
  record(ctx, 'vmtest', part);
}

export async function vmtest(ctx: BuildContext, opts: VmTestOptions = {}): Promise<string> {
  const md5 = await md5OfFile(join(ctx.dir, IMAGE_FILE)).catch(() => '');
  let r: VmTestResult | { notRun: string };
  try {
    r = await runVmTest(ctx.def, ctx.dir, opts);
  } catch (e) {
    if (md5 && !(e instanceof MetalError && e.kind === 'interrupted')) {
      recordVerdict(ctx, md5, { verdict: 'fail', reason: (e as Error).message.split('\n')[0], md5, goss: [] });
    }
    throw e;
  }
  if ('notRun' in r) return r.notRun;
  recordVerdict(ctx, md5, {
    verdict: 'pass', md5, accel: r.accel, boot_seconds: r.bootSeconds,
    goss: [{ spec: r.spec, passed: r.passed, failed: r.failed, skipped: r.skipped, total: r.passed + r.failed + r.skipped }, ...r.more],
  });
  return r.note;
}

/** SKIP_VM_TEST=1: recorded, so release knows. */
export async function skipVmtest(ctx: BuildContext, reason: string): Promise<void> {
  const md5 = await md5OfFile(join(ctx.dir, IMAGE_FILE)).catch(() => '');
  if (md5) recordVerdict(ctx, md5, { verdict: 'skipped', reason, md5, goss: [] });
}
