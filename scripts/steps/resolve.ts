// Step "resolve definition": <os>/image.yaml with its layers, its base and a variant, validated; an
// unknown field or a wrong type is a one-line error naming file and field.
import { relative } from 'node:path';
import { buildContext, type BuildContext } from '../lib/build-context.ts';
import { config } from '../lib/config.ts';
import { loadImageDef } from '../lib/image-def.ts';

export function resolveDefinition(os: string, variant = ''): BuildContext {
  return buildContext(loadImageDef(os, variant));
}

/** The step's note: what the definition resolved to. */
export function describeDefinition(ctx: BuildContext): string {
  const d = ctx.def;
  const layers = d.layers.length ? `layers ${d.layers.join(', ')}; ` : '';
  const base = d.base.from ? `on ${d.base.from}'s body` : `base ${d.base.image}`;
  return `${layers}${relative(config().root, d.dockerfile)}; ${base}`;
}
