// Step "check tools". Check before side effects: every tool and input the build needs, before anything
// is built or written.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PreconditionError } from '../lib/errors.ts';
import { requireBuildKit, requireDaemon } from '../lib/docker.ts';
import { config } from '../lib/config.ts';
import { requireTools } from '../lib/tools.ts';
import type { BuildContext } from '../lib/build-context.ts';

const PIPELINE_TOOLS = ['docker', 'lz4', 'mmdebstrap', 'qemu-system-x86_64', 'mke2fs', 'ssh', 'ssh-keygen'];

export async function checkTools(ctx: BuildContext): Promise<string> {
  const def = ctx.def;
  await requireTools(PIPELINE_TOOLS);
  for (const t of def.go_tools) {
    if (!existsSync(join(config().binDir, t))) throw new PreconditionError(`Go tool ${t} is not built`, 'run make setup');
  }
  const dockerfile = relative(config().root, def.dockerfile);
  if (!existsSync(def.dockerfile)) throw new PreconditionError(`${dockerfile} does not exist (${def.os} has no Dockerfile of its own and no layer with one)`, `create ${def.os}/Dockerfile or list a layer with one in ${def.os}/image.yaml`);
  if (!/^\s*FROM\s+\$\{?BASE_IMAGE\}?/m.test(readFileSync(def.dockerfile, 'utf8'))) {
    throw new PreconditionError(`${dockerfile} does not build FROM \${BASE_IMAGE}`, `start ${dockerfile} with: ARG BASE_IMAGE / FROM \${BASE_IMAGE}`);
  }
  // The VM test at the end needs the folder's goss spec: say so now, not after the build.
  if (!existsSync(join(def.dir, 'goss.yaml'))) throw new PreconditionError(`${def.os}/goss.yaml does not exist (the VM test runs it)`, `create ${def.os}/goss.yaml (see debian/goss.yaml)`);
  await requireDaemon();
  const b = await requireBuildKit();
  return `${PIPELINE_TOOLS.length} host tools, ${def.go_tools.length} Go tools, the docker daemon, BuildKit ${b.buildkit} (${b.name}, driver ${b.driver})`;
}
