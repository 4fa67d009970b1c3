// `make all`: every image whose base is available, in dependency order (an image built FROM another
// folder's image comes after it: debian → nvidia, ubuntu → firewall). Availability is decided for
// all of them first, so an image that cannot be built here is reported instead of failing half-way;
// one whose build fails does not stop the others, only its dependents. `--plan` prints the order
// and the availability and builds nothing.
//
// Exit: 0 when every available image was built; a tool error (1) when one of them failed.
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { MetalError, UsageError } from '../lib/errors.ts';
import { listOsFolders, loadImageDef, imageName, type ImageDef } from '../lib/image-def.ts';
import { bold, formatBytes, table } from '../lib/log.ts';
import { planBase } from '../steps/base.ts';
import { requireDaemon } from '../lib/docker.ts';
import { buildPipeline } from '../pipeline.ts';
import { readRecord } from '../lib/build-record.ts';

export type Availability = { available: true; how: string } | { available: false; reason: string; hint: string };

/** Pure: definitions ordered so that each comes after the folder its base is built from. */
export function dependencyOrder(defs: readonly ImageDef[]): ImageDef[] {
  const byOs = new Map(defs.map((d) => [d.os, d]));
  const out: ImageDef[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: ImageDef, path: string[]): void => {
    const s = state.get(d.os);
    if (s === 'done') return;
    if (s === 'visiting') throw new UsageError(`image dependency cycle: ${[...path, d.os].join(' → ')}`, 'fix base.from in the image.yaml files named');
    state.set(d.os, 'visiting');
    const dep = d.base.from ? byOs.get(d.base.from) : undefined;
    if (d.base.from && !dep) throw new UsageError(`${d.os}/image.yaml: base.from names "${d.base.from}", which is not an OS folder`, `edit ${d.os}/image.yaml`);
    if (dep) visit(dep, [...path, d.os]);
    state.set(d.os, 'done');
    out.push(d);
  };
  // alphabetical among independent images, so the order is stable
  for (const d of [...defs].sort((a, b) => a.os.localeCompare(b.os))) visit(d, []);
  return out;
}

/** Pure: an image built FROM another folder is available exactly when that folder's image is. */
export function inheritAvailability(def: ImageDef, dep: Availability): Availability {
  if (dep.available) return { available: true, how: `built FROM ${def.base.from}/ (${def.base.image})` };
  return { available: false, reason: `its base ${def.base.image} is built by ${def.base.from}/, which is unavailable here`, hint: dep.hint };
}

export interface Outcome {
  def: ImageDef;
  status: 'built' | 'failed' | 'unavailable' | 'skipped';
  seconds: number;
  detail: string;
}

/** Pure: the final report table. */
export function outcomeTable(outcomes: readonly Outcome[]): string {
  return table([
    ['image', 'status', 'seconds', 'detail'],
    ...outcomes.map((o) => [imageName(o.def), o.status, o.status === 'built' || o.status === 'failed' ? o.seconds.toFixed(1) : '-', o.detail]),
  ]);
}

async function availability(order: readonly ImageDef[]): Promise<Map<string, Availability>> {
  const env = config().env;
  const out = new Map<string, Availability>();
  for (const def of order) {
    if (def.base.from) {
      out.set(def.os, inheritAvailability(def, out.get(def.base.from)!));
      continue;
    }
    const plan = await planBase(def, env.DEBIAN_MIRROR);
    out.set(def.os, plan.kind === 'unavailable'
      ? { available: false, reason: plan.message, hint: plan.hint }
      : { available: true, how: plan.kind === 'bootstrap' ? `base ${plan.ref} bootstrappable from ${plan.mirror}` : `base ${plan.ref} ${plan.note}` });
  }
  return out;
}

export async function main(args: Args): Promise<void> {
  const order = dependencyOrder(listOsFolders().map((os) => loadImageDef(os)));
  if (order.length === 0) throw new UsageError('no OS folders (no */image.yaml)', 'run make help');
  // the base probes ask the docker daemon; each build checks its own tools
  await requireDaemon();
  const avail = await availability(order);

  console.log(bold(`make all: ${order.map((d) => d.os).join(' → ')}`));
  console.log(
    table([
      ['image', 'available', 'why'],
      ...order.map((d) => {
        const a = avail.get(d.os)!;
        return [imageName(d), a.available ? 'yes' : 'no', a.available ? a.how : a.reason];
      }),
    ]),
  );
  if (args.flags['plan']) return;

  const outcomes: Outcome[] = [];
  const failed = new Set<string>();
  for (const def of order) {
    const a = avail.get(def.os)!;
    if (!a.available) {
      outcomes.push({ def, status: 'unavailable', seconds: 0, detail: `${a.reason} (fix: ${a.hint})` });
      continue;
    }
    if (def.base.from && failed.has(def.base.from)) {
      failed.add(def.os);
      outcomes.push({ def, status: 'skipped', seconds: 0, detail: `its base ${def.base.from} failed to build` });
      continue;
    }
    console.log('');
    console.log(bold(`==== ${imageName(def)} ====`));
    const t0 = performance.now();
    try {
      const r = await buildPipeline(def.os);
      const e = readRecord(r.ctx.dir)?.export;
      outcomes.push({ def, status: 'built', seconds: (performance.now() - t0) / 1000, detail: e ? `img.tar.lz4 ${formatBytes(e.lz4_bytes)} (tar ${formatBytes(e.tar_bytes)})` : 'not exported' });
    } catch (e) {
      if (e instanceof MetalError && e.kind === 'interrupted') throw e;
      failed.add(def.os);
      const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      console.error(`error: ${imageName(def)}: ${msg}`);
      outcomes.push({ def, status: 'failed', seconds: (performance.now() - t0) / 1000, detail: msg });
    }
  }

  console.log('');
  console.log(bold('make all: summary'));
  console.log(outcomeTable(outcomes));
  const bad = outcomes.filter((o) => o.status === 'failed');
  if (bad.length > 0) {
    throw new MetalError('tool', `${bad.length} of ${outcomes.filter((o) => o.status !== 'unavailable').length} buildable images failed: ${bad.map((o) => imageName(o.def)).join(', ')}`, `see the errors above; rebuild one with make ${bad[0]!.def.os}`);
  }
  const unavailable = outcomes.filter((o) => o.status === 'unavailable').map((o) => imageName(o.def));
  console.log(bold(`built ${outcomes.filter((o) => o.status === 'built').length} image(s)${unavailable.length ? `; not buildable here: ${unavailable.join(', ')}` : ''}`));
}
