// Host tools the pipeline needs: Debian packages (installed by `make setup` with apt-get) and
// pinned Go programs (built by `make setup` from scripts/tools/go.mod into .state/bin).
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { ROOT } from './config.ts';
import { PreconditionError } from './errors.ts';
import { which } from './shell.ts';

export interface AptTool {
  /** Executable that proves the package is there. */
  bin: string;
  pkg: string;
  why: string;
}

export const APT_TOOLS: readonly AptTool[] = [
  { bin: 'dockerd', pkg: 'docker.io', why: 'builds images (the project starts dockerd itself)' },
  { bin: 'mmdebstrap', pkg: 'mmdebstrap', why: 'bootstraps base images from the Debian mirror' },
  { bin: 'lz4', pkg: 'lz4', why: 'LZ4 compression of the image tar' },
  { bin: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'boots images for the goss test' },
  { bin: 'mke2fs', pkg: 'e2fsprogs', why: 'makes the VM test disk from the tarball' },
  { bin: 'ssh', pkg: 'openssh-client', why: 'runs goss inside the VM' },
  { bin: 'ssh-keygen', pkg: 'openssh-client', why: 'test-only key for the VM' },
  { bin: 'shellcheck', pkg: 'shellcheck', why: 'lints the shell scripts shipped in images' },
  { bin: 'gcc', pkg: 'gcc', why: 'cgo build of flatcar ignition; builds lz4 1.10' },
  { bin: 'make', pkg: 'make', why: 'builds lz4 1.10 (multithreaded) from Debian trixie\'s source package' },
  { bin: 'dpkg-source', pkg: 'dpkg-dev', why: 'unpacks the lz4 1.10 source package' },
  { bin: 'tar', pkg: 'tar', why: 'cuts container leftovers out of the export stream (GNU tar --delete)' },
  // the rack test (make provision-test): the hammer VM's tools, the leaves, QEMU's guestfwd
  { bin: 'sgdisk', pkg: 'gdisk', why: 'partitions the rack machine\'s disk (in the hammer VM)' },
  { bin: 'mkfs.vfat', pkg: 'dosfstools', why: 'makes the rack machine\'s ESP (in the hammer VM)' },
  { bin: 'vtysh', pkg: 'frr', why: 'the rack\'s leaf switches (zebra, bgpd in test namespaces)' },
  { bin: 'lldpd', pkg: 'lldpd', why: 'the rack\'s leaves see the machine\'s LLDP' },
  { bin: 'ping', pkg: 'iputils-ping', why: 'the rack\'s leaves ping the machine over the BGP route' },
  { bin: 'socat', pkg: 'socat', why: 'forwards the hammer VM\'s HTTP requests to the test host\'s loopback' },
  { bin: 'nft', pkg: 'nftables', why: 'the installer tests check and load the firewall rulesets (each in a throwaway network namespace)' },
];

/** Debian packages that provide no executable but are needed (headers, keyrings). */
export const APT_FILES: readonly { path: string; pkg: string; why: string }[] = [
  { path: '/usr/lib/x86_64-linux-gnu/libblkid.a', pkg: 'libblkid-dev', why: 'static cgo build of flatcar ignition' },
  { path: '/usr/share/keyrings/debian-archive-keyring.gpg', pkg: 'debian-archive-keyring', why: 'mmdebstrap verifies the Debian archive' },
  { path: '/usr/share/OVMF/OVMF_CODE_4M.fd', pkg: 'ovmf', why: 'QEMU\'s EFI firmware for the rack machine (grub-install, efibootmgr, the GRUB boot)' },
];

/** Packages whose maintainer scripts would start a daemon in the host namespace (the rack runs them in its own). */
export const APT_NO_START = ['frr', 'lldpd', 'nftables'];

export interface GoTool {
  name: string;
  /** Package path of the main package; its module version comes from scripts/tools/go.mod. */
  pkg: string;
  module: string;
  cgo: boolean;
  /** Extra -ldflags; {version} is replaced by the module version. */
  ldflags: string;
  /** The Go module under scripts/tools that pins it ('' for scripts/tools itself). */
  dir?: string;
  /**
   * Built on first use (ensureGoTool), not by every `make setup`: tools whose build takes minutes
   * and that only some commands need (syft for the export's SBOM, the registry for the release
   * tests, actionlint for make check).
   */
  lazy?: boolean;
}

export const GO_TOOLS: readonly GoTool[] = [
  { name: 'goss', pkg: 'github.com/goss-org/goss/cmd/goss', module: 'github.com/goss-org/goss', cgo: false, ldflags: '-X github.com/goss-org/goss/util.Version={version}' },
  // flatcar ignition speaks spec 2.x, as metal-stack's userdata expects; it needs libblkid via cgo,
  // linked statically so the same binary runs in Debian and Ubuntu images.
  { name: 'ignition', pkg: 'github.com/flatcar/ignition/internal', module: 'github.com/flatcar/ignition', cgo: true, ldflags: '-extldflags -static -X github.com/flatcar/ignition/internal/version.Raw={version}' },
  { name: 'crictl', pkg: 'sigs.k8s.io/cri-tools/cmd/crictl', module: 'sigs.k8s.io/cri-tools', cgo: false, ldflags: '-X sigs.k8s.io/cri-tools/pkg/version.Version={version}' },
  // NVIDIA Container Toolkit for the nvidia image (Debian packages none of it). go-nvml dlopens
  // libnvidia-ml at run time, which needs cgo; the binaries link only glibc.
  ...['nvidia-ctk', 'nvidia-container-runtime', 'nvidia-cdi-hook'].map((name) => ({
    name,
    pkg: `github.com/NVIDIA/nvidia-container-toolkit/cmd/${name}`,
    module: 'github.com/NVIDIA/nvidia-container-toolkit',
    cgo: true,
    ldflags: '-X github.com/NVIDIA/nvidia-container-toolkit/internal/info.version={version}',
  })),
  // S3-compatible server for the publish tests (Apache-2.0; MinIO is AGPL).
  { name: 'versitygw', pkg: 'github.com/versity/versitygw/cmd/versitygw', module: 'github.com/versity/versitygw', cgo: false, ldflags: '' },
  // The firewall's exporters and VPN (scripts/tools/firewall/go.mod, a module of its own so its
  // dependency trees do not move the versions above): node_exporter on 9100, tailscale for `vpn`.
  { name: 'node_exporter', pkg: 'github.com/prometheus/node_exporter', module: 'github.com/prometheus/node_exporter', cgo: false, dir: 'firewall', ldflags: '-X github.com/prometheus/common/version.Version={version}' },
  ...['tailscale', 'tailscaled'].map((name) => ({ name, pkg: `tailscale.com/cmd/${name}`, module: 'tailscale.com', cgo: false, dir: 'firewall', ldflags: '' })),
  // The docker CLI's BuildKit client (scripts/tools/buildx/go.mod, a module of its own: its graph
  // follows moby and BuildKit). Builds go through it; setup links it as a CLI plugin into the
  // project's DOCKER_CONFIG (scripts/lib/docker.ts buildxPluginPath).
  { name: 'docker-buildx', pkg: 'github.com/docker/buildx/cmd/buildx', module: 'github.com/docker/buildx', cgo: false, dir: 'buildx', ldflags: '-X github.com/docker/buildx/version.Version={version} -X github.com/docker/buildx/version.Package=github.com/docker/buildx' },
  // Each in a module of its own (their dependency trees are large and would move the versions
  // above), and built on first use. syft writes every artifact set's SPDX SBOM (scripts/export/sbom.ts).
  { name: 'syft', pkg: 'github.com/anchore/syft/cmd/syft', module: 'github.com/anchore/syft', cgo: false, dir: 'sbom', lazy: true, ldflags: '-X main.version={version}' },
  // The OCI registry the release tests push to (`registry serve`, htpasswd auth, on 127.0.0.1).
  { name: 'registry', pkg: 'github.com/distribution/distribution/v3/cmd/registry', module: 'github.com/distribution/distribution/v3', cgo: false, dir: 'registry', lazy: true, ldflags: '-X github.com/distribution/distribution/v3/version.version={version}' },
  // make check lints .github/workflows/ with it.
  { name: 'actionlint', pkg: 'github.com/rhysd/actionlint/cmd/actionlint', module: 'github.com/rhysd/actionlint', cgo: false, dir: 'actionlint', lazy: true, ldflags: '-X github.com/rhysd/actionlint.version={version}' },
];

export const GO_MODULE_DIR = join(ROOT, 'scripts', 'tools');

/** Pure: the version go.mod pins for a module, or undefined. */
export function pinnedVersion(goMod: string, module: string): string | undefined {
  const re = new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+(v\\S+)`, 'm');
  return re.exec(goMod)?.[1];
}

/** The directory of the Go module that pins a tool. */
export function goModuleDir(tool: GoTool): string {
  return tool.dir ? join(GO_MODULE_DIR, tool.dir) : GO_MODULE_DIR;
}

export function goToolVersion(tool: GoTool): string {
  const v = pinnedVersion(readFileSync(join(goModuleDir(tool), 'go.mod'), 'utf8'), tool.module);
  if (!v) throw new Error(`${join('scripts/tools', tool.dir ?? '', 'go.mod')} does not require ${tool.module}`);
  return v;
}

/** Is a host tool installed? On PATH, or in an sbin dir that a non-root PATH may lack. */
export async function toolInstalled(bin: string): Promise<boolean> {
  return Boolean(await which(bin)) || existsSync(`/usr/sbin/${bin}`) || existsSync(`/sbin/${bin}`);
}

/** Fail before side effects on the first missing tool, naming the Debian package that has it. */
export async function requireTools(bins: readonly string[], purpose = ''): Promise<void> {
  for (const bin of bins) {
    if (await toolInstalled(bin)) continue;
    const pkg = APT_TOOLS.find((t) => t.bin === bin)?.pkg ?? bin;
    throw new PreconditionError(`${bin} is not installed${purpose ? ` (${purpose})` : ''}`, `run make setup (installs ${pkg})`);
  }
}
