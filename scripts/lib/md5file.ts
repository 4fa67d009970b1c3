// The `.md5` file beside every image, in md5sum's text format: "<32 lower-case hex>  <name>\n".
// Consumers (metal-hammer, metal-image-cache-sync) read the text up to the first space, and older
// parsers expect the two spaces and the name, so it is written exactly like md5sum writes it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { UsageError } from './errors.ts';

const HEX = /^[0-9a-f]{32}$/;

/** Pure: the md5sum line for `name`, e.g. formatMd5File(hex, 'img.tar.lz4'). */
export function formatMd5File(hex: string, name: string): string {
  if (!HEX.test(hex)) throw new UsageError(`"${hex}" is not an md5 (32 lower-case hex digits)`);
  if (name === '' || /[\n\r\\]/.test(name)) throw new UsageError(`"${name}" cannot be named in an md5sum line`);
  return `${hex}  ${name}\n`;
}

/**
 * Pure: the hash from an md5sum file holding one line "<hex>  <name>" (or "<hex> *<name>", md5sum's
 * binary mode), with or without the final newline. With `expectName` the name must match too.
 */
export function parseMd5File(text: string, expectName?: string): string {
  const m = /^([0-9a-f]{32}) [ *]([^\n\r\\]+)\n?$/.exec(text);
  if (!m) {
    const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
    throw new UsageError(`not an md5sum line ("<32 hex>  <name>\\n"): ${shown}`);
  }
  if (expectName !== undefined && m[2] !== expectName) {
    throw new UsageError(`md5sum line names "${m[2]}", expected "${expectName}"`);
  }
  return m[1]!;
}

/** md5 of a file as lower-case hex, streamed (images are larger than memory should hold). */
export async function md5OfFile(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
