// Step "export": the finished image as the artifact set img.tar.lz4 + .md5 + packages.txt, in one
// pass (scripts/export/export.ts), with the export recorded in the new set's build.json before the
// set is swapped in.
import { record, type BuildContext } from '../lib/build-context.ts';
import { config } from '../lib/config.ts';
import { imageTag } from '../lib/image-def.ts';
import { dockerImageId } from '../lib/docker.ts';
import { exportImage, exportOptionsFromEnv, type ExportResult } from '../export/export.ts';

export async function exportStep(ctx: BuildContext, opts: { quiet?: boolean } = {}): Promise<string> {
  const tag = ctx.tag ?? imageTag(ctx.def);
  const imageId = await dockerImageId(tag);
  const r: ExportResult = await exportImage(tag, ctx.def.packages_command, ctx.dir, {
    ...exportOptionsFromEnv(config().env),
    quiet: opts.quiet,
    sbomName: { name: ctx.def.publish_as, version: ctx.def.version },
    beforeCommit: (dir, e) => {
      record(ctx, 'export', {
        md5: e.md5, tar_bytes: e.tarBytes, lz4_bytes: e.lz4Bytes, packages: e.packages, docker_image_id: imageId,
        level: e.level, compressor: e.compressor, source: e.source, seconds: e.seconds,
        ...(e.sbom ? { sbom: { file: e.sbom.file, sha256: e.sbom.sha256, packages: e.sbom.packages, files: e.sbom.files, tool: e.sbom.tool } } : {}),
      }, dir);
    },
  });
  return `${(r.lz4Bytes / 2 ** 20).toFixed(1)} MiB, md5 ${r.md5}, ${r.packages} packages (${r.source}, ${r.compressor}), SBOM ${r.sbom?.packages ?? 0} packages`;
}
