// Step "provision" (the VM test of machine images, and `make provision-test OS=<os>`): the rack
// (scripts/rack/): the artifact provisioned as the metal-hammer does it, booted by kexec and then
// through firmware and GRUB, checked with goss inside and from two leaf switches outside. The
// verdict goes into build.json twice: as the VM test (goss per boot and spec) and as the
// provisioning (provision.json's summary), both for the md5 that was provisioned.
import { join } from 'node:path';
import { IMAGE_FILE } from '../lib/artifacts.ts';
import { currentRecord, record, type BuildContext } from '../lib/build-context.ts';
import { MetalError } from '../lib/errors.ts';
import { warn } from '../lib/log.ts';
import { md5OfFile } from '../lib/md5file.ts';
import { runProvisionTest, type ProvisionOptions } from '../rack/provision.ts';
import type { FirewallReport } from '../rack/firewall.ts';
import { FIREWALL } from '../rack/plan.ts';

/** Pure: the firewall rack's findings for the build record: the leaves' EVPN routes from the firewall, the SNAT source, the drop counter. */
export function firewallSummary(f: FirewallReport): Record<string, unknown> {
  return {
    evpn: Object.fromEntries(f.evpn.map((e) => [e.leaf, e.routes.filter((x) => x.type === 5 && x.nextHop === FIREWALL.underlay.ip).map((x) => x.prefix)])),
    snatSourceSeen: f.snat.peersSeen[0] ?? null,
    dropCounter: [f.denied.counterBefore, f.denied.counterAfter],
    chronydVrf: f.vrf.chronyd,
    suricataAlert: f.vrf.suricata.alert !== '',
  };
}

export async function provision(ctx: BuildContext, opts: ProvisionOptions = {}): Promise<string> {
  const md5 = await md5OfFile(join(ctx.dir, IMAGE_FILE)).catch(() => '');
  const stillCurrent = (): boolean => {
    const now = currentRecord(ctx)?.export?.md5;
    if (now !== undefined && now !== md5) {
      warn(`the artifact set was re-exported during the provisioning (md5 ${now}); the result for ${md5} is not recorded`);
      return false;
    }
    return true;
  };
  try {
    const r = await runProvisionTest(ctx.def, ctx.dir, opts);
    if (md5 && stillCurrent()) {
      const goss = r.boots.flatMap((b) => b.goss.map((g) => ({ spec: `${g.spec} (${b.kind})`, passed: g.passed, failed: g.failed, skipped: g.skipped, total: g.total })));
      record(ctx, 'vmtest', { verdict: 'pass', md5, accel: r.accel.split(' ')[0], boot_seconds: r.boots[0]?.secondsToSsh, goss });
      record(ctx, 'provision', {
        verdict: 'pass', md5,
        summary: {
          boots: r.boots.map((b) => ({ kind: b.kind, secondsToSsh: b.secondsToSsh })), grubKernelLine: r.grubKernelLine, knownDefects: r.verdict.knownDefects.map((d) => d.id),
          // a firewall: what the traffic through it showed (provision.json has the whole of it)
          ...(r.boots[0]?.firewall ? { firewall: firewallSummary(r.boots[0].firewall) } : {}),
        },
      });
    }
    return r.note;
  } catch (e) {
    if (md5 && stillCurrent() && !(e instanceof MetalError && e.kind === 'interrupted')) {
      const reason = (e as Error).message.split('\n')[0];
      record(ctx, 'vmtest', { verdict: 'fail', reason, md5, goss: [] });
      record(ctx, 'provision', { verdict: 'fail', reason, md5, summary: {} });
    }
    throw e;
  }
}
