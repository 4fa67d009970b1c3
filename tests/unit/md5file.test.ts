import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { throwsUsage as usage } from '../helpers/assert.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatMd5File, md5OfFile, parseMd5File } from '../../scripts/lib/md5file.ts';

const HEX = '0123456789abcdef0123456789abcdef';


test('format is md5sum text mode', () => {
  assert.is(formatMd5File(HEX, 'img.tar.lz4'), `${HEX}  img.tar.lz4\n`);
  usage(() => formatMd5File(HEX.toUpperCase(), 'img.tar.lz4'), `"${HEX.toUpperCase()}" is not an md5 (32 lower-case hex digits)`);
  usage(() => formatMd5File(HEX.slice(1), 'img.tar.lz4'), `"${HEX.slice(1)}" is not an md5 (32 lower-case hex digits)`);
  usage(() => formatMd5File(HEX, 'a\nb'), '"a\nb" cannot be named in an md5sum line');
});

test('parse accepts what md5sum writes, and only that', () => {
  assert.is(parseMd5File(`${HEX}  img.tar.lz4\n`), HEX);
  assert.is(parseMd5File(`${HEX}  img.tar.lz4`), HEX);
  assert.is(parseMd5File(`${HEX} *img.tar.lz4\n`), HEX);
  assert.is(parseMd5File(`${HEX}  img.tar.lz4\n`, 'img.tar.lz4'), HEX);
  assert.is(parseMd5File(formatMd5File(HEX, 'x y.bin')), HEX);
  usage(() => parseMd5File(`${HEX}  other.tar\n`, 'img.tar.lz4'), 'md5sum line names "other.tar", expected "img.tar.lz4"');
  usage(() => parseMd5File(HEX), `not an md5sum line ("<32 hex>  <name>\\n"): "${HEX}"`);
  usage(() => parseMd5File(`${HEX}\n`), `not an md5sum line ("<32 hex>  <name>\\n"): "${HEX}\\n"`);
  usage(() => parseMd5File(`${HEX.toUpperCase()}  img.tar.lz4\n`), `not an md5sum line ("<32 hex>  <name>\\n"): "${HEX.toUpperCase()}  img.tar.lz4\\n"`);
  usage(() => parseMd5File(`${HEX}  img.tar.lz4\r\n`), `not an md5sum line ("<32 hex>  <name>\\n"): "${HEX}  img.tar.lz4\\r\\n"`);
  usage(() => parseMd5File(`${HEX}  a\n${HEX}  b\n`), `not an md5sum line ("<32 hex>  <name>\\n"): "${HEX}  a\\n${HEX}  b\\n"`);
  usage(() => parseMd5File(''), 'not an md5sum line ("<32 hex>  <name>\\n"): ""');
});

test('md5 of a file, streamed, equals md5sum', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'md5file-'));
  try {
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'abc'), 'abc');
    writeFileSync(join(dir, 'big'), Buffer.alloc(3 * 1024 * 1024 + 1, 0x61));
    assert.is(await md5OfFile(join(dir, 'empty')), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.is(await md5OfFile(join(dir, 'abc')), '900150983cd24fb0d6963f7d28e17f72');
    // python3 -c "import hashlib;print(hashlib.md5(b'a'*(3*1024*1024+1)).hexdigest())"
    assert.is(await md5OfFile(join(dir, 'big')), '9aa778d728a1108a6e8457026db5a877');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
