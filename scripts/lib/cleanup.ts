// Cleanups registered by steps that create things outside the artifact (containers, VMs, scratch
// dirs, temp files). They run on success, on failure and on Ctrl-C, newest first, exactly once.
import { debug } from './log.ts';

type Fn = () => Promise<void> | void;
const stack: { name: string; fn: Fn }[] = [];

/** Register a cleanup; returns a function that runs it now and unregisters it. */
export function onCleanup(name: string, fn: Fn): () => Promise<void> {
  const entry = { name, fn };
  stack.push(entry);
  return async () => {
    const i = stack.indexOf(entry);
    if (i >= 0) {
      stack.splice(i, 1);
      await fn();
    }
  };
}

export async function runCleanups(): Promise<void> {
  while (stack.length > 0) {
    const { name, fn } = stack.pop()!;
    try {
      debug(`cleanup: ${name}`);
      await fn();
    } catch (e) {
      console.error(`cleanup "${name}" failed: ${(e as Error).message}`);
    }
  }
}
