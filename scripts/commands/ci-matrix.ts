// `make ci-matrix`: the images CI fans out over, as one line of JSON ({"include":[{os, variant,
// version, name}, ...]}, a GitHub Actions matrix): every OS folder and variant of the checkout.
import type { Args } from '../cli.ts';
import { config } from '../lib/config.ts';
import { ciMatrix } from '../static/ci.ts';

export async function main(_args: Args): Promise<void> {
  console.log(JSON.stringify(ciMatrix(config().root)));
}
