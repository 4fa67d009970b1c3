// The one thing every pipeline step takes (scripts/steps/*): what is being built, where its
// artifact set lives, the commit's build metadata, and the build record the steps write.
import { relative } from 'node:path';
import { artifactDir } from './artifacts.ts';
import { readRecord, updateRecord, type BuildRecord, type DefinitionPart, type Part } from './build-record.ts';
import { config } from './config.ts';
import { imageName, type ImageDef } from './image-def.ts';

export interface BuildMeta {
  /** The commit's date (UTC); the clock only outside a git checkout. */
  date: string;
  commit: string;
  version: string;
}

export interface BuildContext {
  readonly def: ImageDef;
  /** images/<os>/<version>. */
  readonly dir: string;
  /** `make <os>` or `make <os> VARIANT=<v>`: the command that rebuilds this image. */
  readonly target: string;
  meta: BuildMeta | null;
  /** The finished image's tag once the build step ran (or the existing one, for make export). */
  tag: string | null;
}

export function buildContext(def: ImageDef): BuildContext {
  return { def, dir: artifactDir(def), target: makeTarget(def), meta: null, tag: null };
}

/** Pure: the make target of a definition, e.g. "debian" or "firewall VARIANT=debian". */
export function makeTarget(def: Pick<ImageDef, 'os' | 'variant'>): string {
  return def.variant ? `${def.os} VARIANT=${def.variant}` : def.os;
}

export function definitionPart(def: ImageDef): DefinitionPart {
  return {
    os: def.os,
    version: def.version,
    variant: def.variant,
    name: imageName(def),
    layers: def.layers,
    dockerfile: relative(config().root, def.dockerfile),
  };
}

/**
 * Write one part of the context's build record (build.json in its artifact set); `into` is a new
 * artifact set being written (the export's), which takes the current record with the new part.
 */
export function record<P extends Part>(ctx: BuildContext, part: P, value: NonNullable<BuildRecord[P]>, into = ctx.dir): BuildRecord {
  return updateRecord(ctx.dir, definitionPart(ctx.def), part, value, into);
}

export function currentRecord(ctx: BuildContext): BuildRecord | null {
  return readRecord(ctx.dir);
}
