// The Debian 12 image and artifact set the integration tests share, built by this named helper
// (the make debian path, VM test skipped) when a test needs them and they are missing, so no test
// depends on another file having run first. Cheap when present: docker's cache and the record.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { artifactDir } from '../../scripts/lib/artifacts.ts';
import { readRecord } from '../../scripts/lib/build-record.ts';
import { imageExists } from '../../scripts/lib/docker.ts';
import { imageTag, loadImageDef } from '../../scripts/lib/image-def.ts';
import { md5OfFile } from '../../scripts/lib/md5file.ts';
import { cli } from './cli.ts';

export const DEBIAN = loadImageDef('debian');
export const DEBIAN_TAG = imageTag(DEBIAN);
export const DEBIAN_DIR = artifactDir(DEBIAN);

async function build(): Promise<void> {
  const r = await cli(['build', 'debian'], { env: { SKIP_VM_TEST: '1' }, echo: true });
  if (r.code !== 0) throw new Error(`building the shared Debian image failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
}

/** The image metal-images/debian:12 exists. */
export async function ensureDebianImage(): Promise<string> {
  if (!(await imageExists(DEBIAN_TAG))) await build();
  return DEBIAN_TAG;
}

/** The artifact set images/debian/12 is complete, linted, and its record names its bytes. */
export async function ensureDebianArtifact(): Promise<string> {
  const file = join(DEBIAN_DIR, 'img.tar.lz4');
  const rec = readRecord(DEBIAN_DIR);
  const fresh = existsSync(file) && existsSync(`${file}.md5`) && rec?.lint?.verdict === 'pass' && rec.export?.md5 === (await md5OfFile(file));
  if (!fresh || !(await imageExists(DEBIAN_TAG))) await build();
  return DEBIAN_DIR;
}
