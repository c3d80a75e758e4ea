/**
 * Network namespaces for end-to-end tests (`ip netns`, veth pairs): a "server" namespace, and a
 * "laptop" namespace that reaches only the server; this process stays in the root namespace and
 * plays the phone, which reaches only the server too (no route to the laptop, and the server
 * namespace does not forward). Needs root (CI's `.ci/run` is); where namespaces cannot be made,
 * the caller falls back to loopback and says why.
 */
import { execFileSync } from 'node:child_process';

export interface Namespaces {
  /** Run a command in the namespace: a prefix for spawn (`ip netns exec NAME`). */
  serverExec: string[];
  laptopExec: string[];
  /** The server's address as the phone reaches it. */
  serverForPhone: string;
  /** The server's address as the laptop reaches it. */
  serverForLaptop: string;
  /** The laptop's address on its link to the server (the phone must not reach it). */
  laptopAddress: string;
  /** Removes the namespaces and links (kill the processes inside first). Never throws. */
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

/** Makes the namespaces, or throws with the reason (e.g. not root); whatever was made is removed first. */
export function makeNamespaces(tag = String(process.pid)): Namespaces {
  const server = `mgr${tag}s`;
  const laptop = `mgr${tag}l`;
  const phoneVeth = `mgr${tag}p`;
  const laptopVeth = `mgr${tag}c`;
  const block = Number(tag) % 250;
  const phoneNet = `10.214.${block}`;
  const laptopNet = `10.213.${block}`;
  const remove = () => {
    for (const args of [['link', 'del', phoneVeth], ['netns', 'del', server], ['netns', 'del', laptop]]) {
      try {
        ip(...args);
      } catch {
        // not made, or already gone
      }
    }
  };
  try {
    ip('netns', 'add', server);
    ip('netns', 'add', laptop);
    // phone (root namespace) ⇄ server
    ip('link', 'add', phoneVeth, 'type', 'veth', 'peer', 'name', `${phoneVeth}x`);
    ip('link', 'set', `${phoneVeth}x`, 'netns', server);
    ip('addr', 'add', `${phoneNet}.2/30`, 'dev', phoneVeth);
    ip('link', 'set', phoneVeth, 'up');
    ip('-n', server, 'addr', 'add', `${phoneNet}.1/30`, 'dev', `${phoneVeth}x`);
    ip('-n', server, 'link', 'set', `${phoneVeth}x`, 'up');
    ip('-n', server, 'link', 'set', 'lo', 'up');
    // server ⇄ laptop
    ip('link', 'add', laptopVeth, 'type', 'veth', 'peer', 'name', `${laptopVeth}x`);
    ip('link', 'set', laptopVeth, 'netns', server);
    ip('link', 'set', `${laptopVeth}x`, 'netns', laptop);
    ip('-n', server, 'addr', 'add', `${laptopNet}.1/30`, 'dev', laptopVeth);
    ip('-n', server, 'link', 'set', laptopVeth, 'up');
    ip('-n', laptop, 'addr', 'add', `${laptopNet}.2/30`, 'dev', `${laptopVeth}x`);
    ip('-n', laptop, 'link', 'set', `${laptopVeth}x`, 'up');
    ip('-n', laptop, 'link', 'set', 'lo', 'up');
  } catch (error) {
    remove();
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(stderr || (error as Error).message);
  }
  return {
    serverExec: ['ip', 'netns', 'exec', server],
    laptopExec: ['ip', 'netns', 'exec', laptop],
    serverForPhone: `${phoneNet}.1`,
    serverForLaptop: `${laptopNet}.1`,
    laptopAddress: `${laptopNet}.2`,
    remove,
  };
}
