// The Debian-based firewall's artifact set (make firewall VARIANT=debian, VM test skipped), built
// by this named helper when a test needs it and it is missing or stale, so no test depends on
// another file having run first. It builds on the Debian body, which this builds too if missing.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { artifactDir } from '../../scripts/lib/artifacts.ts';
import { readRecord } from '../../scripts/lib/build-record.ts';
import { imageExists } from '../../scripts/lib/docker.ts';
import { imageTag, loadImageDef } from '../../scripts/lib/image-def.ts';
import { md5OfFile } from '../../scripts/lib/md5file.ts';
import { cli } from './cli.ts';

export const FIREWALL_DEBIAN = loadImageDef('firewall', 'debian');
export const FIREWALL_DEBIAN_TAG = imageTag(FIREWALL_DEBIAN);
export const FIREWALL_DEBIAN_DIR = artifactDir(FIREWALL_DEBIAN);

/** The artifact set images/firewall/3.0-debian is complete, linted, and its record names its bytes; returns the build's seconds (0 when it was there). */
export async function ensureFirewallDebianArtifact(): Promise<number> {
  const file = join(FIREWALL_DEBIAN_DIR, 'img.tar.lz4');
  const rec = readRecord(FIREWALL_DEBIAN_DIR);
  const fresh = existsSync(file) && existsSync(`${file}.md5`) && rec?.lint?.verdict === 'pass' && rec.export?.md5 === (await md5OfFile(file));
  if (fresh && (await imageExists(FIREWALL_DEBIAN_TAG))) return 0;
  const t0 = performance.now();
  const r = await cli(['build', 'firewall', '--variant=debian'], { env: { SKIP_VM_TEST: '1' }, echo: true });
  if (r.code !== 0) throw new Error(`building the Debian-based firewall failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return Math.round((performance.now() - t0) / 1000);
}
