package main

// The hammer's storage step for a filesystem layout as metal-api serves it: wipefs and sgdisk per
// disk, mkfs per filesystem, mounts sorted by depth under the root prefix, then the special file
// systems; after the installer, /etc/fstab from what was mounted (UUIDs from blkid, tmpfs as is).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

type Layout struct {
	Disks       []Disk       `json:"disks"`
	Filesystems []Filesystem `json:"filesystems"`
}

type Disk struct {
	Device     string      `json:"device"`
	Partitions []Partition `json:"partitions"`
}

type Partition struct {
	Number  int    `json:"number"`
	Label   string `json:"label"`
	Size    int    `json:"size"` // MiB, 0: to the end of the disk
	GPTType string `json:"gpttype"`
}

type Filesystem struct {
	Path          string   `json:"path"`
	Device        string   `json:"device"`
	Format        string   `json:"format"`
	Label         string   `json:"label"`
	CreateOptions []string `json:"createoptions"`
	MountOptions  []string `json:"mountoptions"`
}

// sgdiskArgs are the hammer's sgdisk options for one disk.
func sgdiskArgs(d Disk) []string {
	opts := []string{}
	for _, p := range d.Partitions {
		opts = append(opts, fmt.Sprintf("--new=%d:0:+%dM", p.Number, p.Size))
		opts = append(opts, fmt.Sprintf("--change-name=%d:%s", p.Number, p.Label))
		if p.GPTType != "" {
			opts = append(opts, fmt.Sprintf("--typecode=%d:%s", p.Number, p.GPTType))
		}
	}
	return append(opts, d.Device)
}

// mkfsCommand is the hammer's mkfs command line for one filesystem (nil: nothing to create).
func mkfsCommand(fs Filesystem) ([]string, error) {
	args := append([]string{}, fs.CreateOptions...)
	var mkfs string
	switch fs.Format {
	case "tmpfs", "none":
		return nil, nil
	case "ext3", "ext4":
		mkfs = "mkfs." + fs.Format
		args = append(args, "-F")
		if fs.Label != "" {
			args = append(args, "-L", fs.Label)
		}
	case "swap":
		mkfs = "mkswap"
		args = append(args, "-f")
		if fs.Label != "" {
			args = append(args, "-L", fs.Label)
		}
	case "vfat":
		mkfs = "mkfs.vfat"
		if fs.Label != "" {
			args = append(args, "-n", fs.Label)
		}
	default:
		return nil, fmt.Errorf("unsupported filesystem format: %q", fs.Format)
	}
	return append([]string{mkfs}, append(args, fs.Device)...), nil
}

func depth(path string) int {
	n := 0
	for p := filepath.Clean(path); p != "/"; n++ {
		p = filepath.Dir(p)
	}
	return n
}

// byDepth is the order the hammer mounts in (sort.Slice over few entries keeps equal depths in
// layout order).
func byDepth(fss []Filesystem) []Filesystem {
	out := []Filesystem{}
	for _, fs := range fss {
		if fs.Path != "" {
			out = append(out, fs)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Path) < depth(out[j].Path) })
	return out
}

type fstabEntry struct {
	spec, file, vfsType string
	mountOpts           []string
	freq, passno        int
}

// fstabEntries are the hammer's fstab lines for the mounted layout; uuid looks a device up.
func fstabEntries(l Layout, uuid func(device string) (string, error)) ([]fstabEntry, error) {
	var out []fstabEntry
	for _, fs := range byDepth(l.Filesystems) {
		passno := 2
		spec := ""
		if fs.Format == "tmpfs" {
			passno = 0
			spec = fs.Format
		} else {
			u, err := uuid(fs.Device)
			if err != nil {
				return nil, err
			}
			spec = "UUID=" + u
		}
		if fs.Path == "/" {
			passno = 1
		}
		opts := []string{"defaults"}
		if len(fs.MountOptions) > 0 {
			opts = fs.MountOptions
		}
		out = append(out, fstabEntry{spec: spec, file: fs.Path, vfsType: fs.Format, mountOpts: opts, passno: passno})
	}
	return out, nil
}

// hammerVersion stands in for the hammer's build version in the fstab header.
const hammerVersion = "rack-hammer (metal-images test bed)"

func renderFstab(entries []fstabEntry) string {
	lines := []string{}
	for _, e := range entries {
		lines = append(lines, fmt.Sprintf("%s %s %s %s %d %d", e.spec, e.file, e.vfsType, strings.Join(e.mountOpts, ","), e.freq, e.passno))
	}
	return fmt.Sprintf("# created by metal-hammer: %q\n", hammerVersion) + strings.Join(lines, "\n") + "\n"
}

// impossibleMountOptions are not passed to mount -o (the hammer's list, from man mount).
var impossibleMountOptions = map[string]bool{
	"defaults": true, "unbindable": true, "runbindable": true, "private": true, "rprivate": true, "slave": true, "rslave": true,
	"shared": true, "rshared": true, "auto": true, "noauto": true, "comment": true, "loop": true, "offset": true, "sizelimit": true,
}

func mountOptions(opts []string) string {
	var out []string
	for _, o := range opts {
		if impossibleMountOptions[o] || strings.HasPrefix(o, "x-") {
			continue
		}
		out = append(out, o)
	}
	return strings.Join(out, ",")
}

type specialMount struct {
	source, target, fstype string
	flags                  uintptr
}

// specialMounts are the hammer's, in its order.
var specialMounts = []specialMount{
	{"proc", "/proc", "proc", 0},
	{"sys", "/sys", "sysfs", 0},
	{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs", 0},
	{"tmpfs", "/tmp", "tmpfs", 0},
	{"/dev", "/dev", "", syscall.MS_BIND},
}

// storage runs the layout onto the disks and keeps what it mounted, for unmounting and fstab.
type storage struct {
	layout Layout
	chroot string
	mounts []string
	log    func(format string, a ...any)
}

func run(log func(string, ...any), argv ...string) error {
	log("$ %s", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		log("%s", strings.TrimRight(string(out), "\n"))
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLine(string(out)))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (s *storage) partition() error {
	for _, d := range s.layout.Disks {
		if err := run(s.log, "wipefs", "--all", d.Device); err != nil {
			return err
		}
		if err := run(s.log, append([]string{"sgdisk"}, sgdiskArgs(d)...)...); err != nil {
			return err
		}
		for _, p := range d.Partitions {
			if err := waitFor(partitionDevice(d.Device, p.Number)); err != nil {
				return err
			}
		}
	}
	return nil
}

func partitionDevice(disk string, n int) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

func (s *storage) mkfs() error {
	for _, fs := range s.layout.Filesystems {
		argv, err := mkfsCommand(fs)
		if err != nil {
			return err
		}
		if argv == nil {
			continue
		}
		if err := run(s.log, argv...); err != nil {
			return fmt.Errorf("unable to create filesystem on %s: %w", fs.Device, err)
		}
	}
	return nil
}

func (s *storage) mountAll() error {
	for _, fs := range byDepth(s.layout.Filesystems) {
		switch fs.Format {
		case "none", "swap", "tmpfs", "":
			continue
		}
		target := filepath.Join(s.chroot, fs.Path)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		argv := []string{"mount"}
		if o := mountOptions(fs.MountOptions); o != "" {
			argv = append(argv, "-o", o)
		}
		argv = append(argv, "-t", fs.Format, fs.Device, target)
		if err := run(s.log, argv...); err != nil {
			return fmt.Errorf("unable to mount filesystem %s on %s: %w", fs.Device, fs.Path, err)
		}
		s.mounts = append(s.mounts, target)
	}
	for _, m := range specialMounts {
		target := filepath.Join(s.chroot, m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		s.log("mount %s on %s (%s)", m.source, target, m.fstype)
		if err := syscall.Mount(m.source, target, m.fstype, m.flags, ""); err != nil {
			return fmt.Errorf("mounting %s to %s failed: %w", m.source, m.target, err)
		}
	}
	return nil
}

func (s *storage) umountAll() error {
	syscall.Sync()
	for i := len(specialMounts) - 1; i >= 0; i-- {
		m := filepath.Join(s.chroot, specialMounts[i].target)
		if err := syscall.Unmount(m, 0); err != nil {
			s.log("unmount %s failed (%v), detaching lazily", m, err)
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	var errs []string
	for i := len(s.mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(s.mounts[i], 0); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.mounts[i], err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("unable to unmount %s", strings.Join(errs, "; "))
	}
	return nil
}

// blkidUUID is what the hammer's FetchBlockIDProperties gives as UUID.
func blkidUUID(device string) (string, error) {
	out, err := exec.Command("blkid", "-o", "value", "-s", "UUID", device).Output()
	if err != nil {
		return "", fmt.Errorf("blkid %s: %v", device, err)
	}
	u := strings.TrimSpace(string(out))
	if u == "" {
		return "", fmt.Errorf("blkid %s: no UUID", device)
	}
	return u, nil
}
