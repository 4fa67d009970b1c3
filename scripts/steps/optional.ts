// Steps provided by modules that may not exist in every checkout (lint, vm test) are looked up
// by name: scripts/steps/<module>.ts exporting `runStep(def, dir)`.
import { existsSync } from 'node:fs';
import type { Steps } from '../lib/log.ts';
import type { ImageDef } from '../lib/image-def.ts';

export async function optionalStep(steps: Steps, name: string, module: string, def: ImageDef, dir: string): Promise<void> {
  const file = new URL(`./${module}.ts`, import.meta.url);
  if (!existsSync(file)) {
    steps.skip(name, 'not part of this checkout');
    return;
  }
  const mod = (await import(file.href)) as { runStep: (def: ImageDef, dir: string) => Promise<unknown> };
  await steps.run(name, () => mod.runStep(def, dir));
}
