package main

// PID 1 of the hammer VM: the hammer's Install() for one machine, step by step, each step
// reported to the test host (POST <events>), then its kexec into the installed kernel. On any
// failure the step, its error and its output are reported and the VM powers off.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

const (
	chrootPrefix       = "/rootfs"
	osImageDestination = "/tmp/os.tar.lz4"
	modulesList        = "/etc/rack-hammer/modules"
	hammerPath         = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Job is what the test host serves: the image, the layout and the machine to install.
type Job struct {
	Image     string     `json:"image"`
	Events    string     `json:"events"`
	Upload    string     `json:"upload"`
	Layout    Layout     `json:"layout"`
	Machine   Machine    `json:"machine"`
	Additions []Addition `json:"additions"`
	// Fail names a step at which to stop with an error (fault injection for the tests).
	Fail string `json:"fail"`
}

// Addition is a test-only file written into the installed system after the hammer's own writes.
type Addition struct {
	Path    string `json:"path"`
	Mode    string `json:"mode"`
	Content string `json:"content"`
}

type Bootinfo struct {
	Initrd       string `yaml:"initrd"`
	Cmdline      string `yaml:"cmdline"`
	Kernel       string `yaml:"kernel"`
	BootloaderID string `yaml:"bootloader_id"`
}

type event struct {
	Step    string  `json:"step"`
	Status  string  `json:"status"` // start | ok | failed
	Seconds float64 `json:"seconds,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	Output  string  `json:"output,omitempty"`
}

type hammerRun struct {
	job    Job
	events string
	start  time.Time
}

// reportClient posts events and files on a fresh connection each time: the test host's server
// closes idle connections, and a POST on a connection it just closed fails with EOF.
var reportClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

// post sends body, once more after a failure (the server may be busy serving the image).
func post(url, contentType string, body []byte) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var resp *http.Response
		resp, err = reportClient.Post(url, contentType, bytes.NewReader(body)) //nolint:noctx
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(time.Second)
	}
	return err
}

func logf(format string, a ...any) {
	fmt.Printf("rack-hammer: "+format+"\n", a...)
}

func (h *hammerRun) emit(e event) {
	logf("%s %s %s", e.Step, e.Status, e.Detail)
	if h.events == "" {
		return
	}
	body, _ := json.Marshal(e)
	if err := post(h.events, "application/json", body); err != nil {
		logf("cannot report to %s: %v", h.events, err)
	}
}

func (h *hammerRun) upload(name string, content []byte) {
	if h.job.Upload == "" {
		return
	}
	if err := post(h.job.Upload+name, "application/octet-stream", content); err != nil {
		logf("cannot upload %s: %v", name, err)
	}
}

type stepError struct {
	err    error
	output string
}

func (e *stepError) Error() string { return e.err.Error() }

// step runs fn as a named, timed step; a failure is reported with its output and powers off.
func (h *hammerRun) step(name string, fn func() (string, error)) {
	t0 := time.Now()
	h.emit(event{Step: name, Status: "start"})
	detail, err := fn()
	if err == nil && h.job.Fail == name {
		err = fmt.Errorf("fault injected by the test: the job asked step %s to fail", name)
	}
	secs := time.Since(t0).Seconds()
	if err != nil {
		out := ""
		if se, ok := err.(*stepError); ok {
			out = se.output
		}
		h.emit(event{Step: name, Status: "failed", Seconds: secs, Detail: err.Error(), Output: tail(out, 16000)})
		powerOff()
	}
	h.emit(event{Step: name, Status: "ok", Seconds: secs, Detail: detail})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func powerOff() {
	syscall.Sync()
	time.Sleep(500 * time.Millisecond)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func runInit() {
	h := &hammerRun{start: time.Now()}
	defer func() {
		if r := recover(); r != nil {
			h.emit(event{Step: "hammer", Status: "failed", Detail: fmt.Sprintf("panic: %v", r)})
			powerOff()
		}
	}()
	os.Setenv("PATH", hammerPath)
	if err := earlyMounts(); err != nil {
		logf("early mounts: %v", err)
		powerOff()
	}
	args := kernelArgs()
	if err := loadModules(); err != nil {
		logf("modules: %v", err)
		powerOff()
	}
	if err := network(args["rack.mac"], args["rack.ip"]); err != nil {
		logf("network: %v", err)
		powerOff()
	}
	if err := h.fetchJob(args["rack.job"]); err != nil {
		logf("job: %v", err)
		powerOff()
	}
	h.emit(event{Step: "hammer", Status: "ok", Seconds: uptime(), Detail: "booted, job fetched"})
	h.install(args["console"])
}

func uptime() float64 {
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return 0
	}
	return float64(info.Uptime)
}

func earlyMounts() error {
	for _, m := range []struct{ src, dst, fs string }{{"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}, {"dev", "/dev", "devtmpfs"}} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != syscall.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	return os.MkdirAll("/tmp", 0o1777)
}

// kernelArgs is the hammer's ParseCmdline: key=value words of /proc/cmdline, the last one wins.
func kernelArgs() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	out := map[string]string{}
	for _, w := range strings.Split(strings.TrimSpace(string(b)), " ") {
		kv := strings.Split(w, "=")
		if len(kv) == 2 {
			out[strings.TrimSpace(kv[0])] = strings.TrimSpace(kv[1])
		}
	}
	return out
}

// loadModules loads the modules the host listed, in dependency order.
func loadModules() error {
	b, err := os.ReadFile(modulesList)
	if err != nil {
		return err
	}
	for _, p := range strings.Fields(string(b)) {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// network brings up the management NIC (found by its MAC) with a static address.
func network(mac, cidr string) error {
	if mac == "" || cidr == "" {
		return fmt.Errorf("rack.mac and rack.ip must be on the kernel command line")
	}
	var ifname string
	for i := 0; i < 100 && ifname == ""; i++ {
		entries, _ := os.ReadDir("/sys/class/net")
		for _, e := range entries {
			a, _ := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "address"))
			if strings.EqualFold(strings.TrimSpace(string(a)), mac) {
				ifname = e.Name()
			}
		}
		if ifname == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if ifname == "" {
		return fmt.Errorf("no NIC with MAC %s", mac)
	}
	log := func(f string, a ...any) { logf(f, a...) }
	if err := run(log, "ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := run(log, "ip", "address", "add", cidr, "dev", ifname); err != nil {
		return err
	}
	return run(log, "ip", "link", "set", ifname, "up")
}

func (h *hammerRun) fetchJob(url string) error {
	var err error
	for i := 0; i < 60; i++ {
		var resp *http.Response
		resp, err = http.Get(url) //nolint:noctx
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			dec := json.NewDecoder(resp.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h.job); err != nil {
				return fmt.Errorf("job %s: %w", url, err)
			}
			h.events = h.job.Events
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

func waitFor(path string) error {
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear", path)
}

// install is the hammer's Install(): storage, image, installer, fstab, unmount, kexec.
func (h *hammerRun) install(console string) {
	if console == "" {
		console = "ttyS0"
	}
	var logBuf bytes.Buffer
	log := func(f string, a ...any) {
		line := fmt.Sprintf(f, a...)
		logBuf.WriteString(line + "\n")
		logf("%s", line)
	}
	out := func() string { s := logBuf.String(); logBuf.Reset(); return s }
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		return &stepError{err: err, output: out()}
	}
	s := &storage{layout: h.job.Layout, chroot: chrootPrefix, log: log}
	var rootUUID string

	h.step("partition", func() (string, error) {
		out()
		return fmt.Sprintf("%d disk(s)", len(s.layout.Disks)), fail(s.partition())
	})
	h.step("mkfs", func() (string, error) {
		out()
		return fmt.Sprintf("%d filesystem(s)", len(s.layout.Filesystems)), fail(s.mkfs())
	})
	h.step("mount", func() (string, error) {
		out()
		if err := s.mountAll(); err != nil {
			return "", fail(err)
		}
		for _, fs := range s.layout.Filesystems {
			if fs.Label == "root" {
				u, err := blkidUUID(fs.Device)
				if err != nil {
					return "", fail(err)
				}
				rootUUID = u
			}
		}
		return "root UUID " + rootUUID, nil
	})
	h.step("pull", func() (string, error) {
		if err := pull(h.job.Image, osImageDestination); err != nil {
			return "", err
		}
		st, _ := os.Stat(osImageDestination)
		return fmt.Sprintf("%s, %d bytes, md5 ok", h.job.Image, st.Size()), nil
	})
	h.step("burn", func() (string, error) {
		if err := burn(osImageDestination, h.job.Image, chrootPrefix); err != nil {
			return "", err
		}
		if err := os.Remove(osImageDestination); err != nil {
			logf("burn: unable to remove image source: %v", err)
		}
		return "untarred onto " + chrootPrefix, nil
	})
	var info Bootinfo
	h.step("install", func() (string, error) {
		out()
		if err := h.writeUserData(); err != nil {
			return "", fail(err)
		}
		if err := writeLVMLocalConf(); err != nil {
			return "", fail(err)
		}
		y, err := installYAML(h.job.Machine, rootUUID, time.Now().Format(time.RFC3339), console)
		if err != nil {
			return "", fail(err)
		}
		if err := os.MkdirAll(filepath.Join(chrootPrefix, "etc/metal"), 0o755); err != nil {
			return "", fail(err)
		}
		if err := os.WriteFile(filepath.Join(chrootPrefix, "etc/metal/install.yaml"), y, 0o600); err != nil {
			return "", fail(err)
		}
		h.upload("install.yaml", y)
		var output bytes.Buffer
		cmd := exec.Command("/install.sh")
		cmd.Dir = "/"
		cmd.Env = os.Environ()
		cmd.Stdout = io.MultiWriter(&output, os.Stdout)
		cmd.Stderr = cmd.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: chrootPrefix, Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0}}}
		err = cmd.Run()
		h.upload("installer.log", output.Bytes())
		if err != nil {
			return "", &stepError{err: fmt.Errorf("running install.sh in chroot failed: %v", err), output: output.String()}
		}
		if err := os.Remove(filepath.Join(chrootPrefix, "install.sh")); err != nil {
			logf("unable to remove install.sh, ignoring: %v", err)
		}
		bi, err := os.ReadFile(filepath.Join(chrootPrefix, "etc/metal/boot-info.yaml"))
		if err != nil {
			return "", fmt.Errorf("unable to read boot-info.yaml: %w", err)
		}
		h.upload("boot-info.yaml", bi)
		if err := yaml.Unmarshal(bi, &info); err != nil {
			return "", fmt.Errorf("unable to unmarshal boot-info.yaml: %w", err)
		}
		// EnsureBootOrder(info.BootloaderID): go-hal's vendor tooling; a VM has none (a no-op).
		for _, f := range []*string{&info.Kernel, &info.Initrd} {
			if *f == "" {
				continue
			}
			dst := filepath.Join("/tmp", filepath.Base(*f))
			if err := copyFile(filepath.Join(chrootPrefix, *f), dst); err != nil {
				return "", err
			}
			*f = dst
		}
		return fmt.Sprintf("bootloader_id %s", info.BootloaderID), nil
	})
	h.step("fstab", func() (string, error) {
		out()
		entries, err := fstabEntries(s.layout, blkidUUID)
		if err != nil {
			return "", fail(err)
		}
		text := renderFstab(entries)
		if err := os.WriteFile(filepath.Join(chrootPrefix, "etc/fstab"), []byte(text), 0o644); err != nil {
			return "", fail(err)
		}
		h.upload("fstab", []byte(text))
		var names []string
		for _, a := range h.job.Additions {
			mode, err := parseMode(a.Mode)
			if err != nil {
				return "", err
			}
			p := filepath.Join(chrootPrefix, a.Path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(p, []byte(a.Content), mode); err != nil {
				return "", err
			}
			if err := os.Chmod(p, mode); err != nil {
				return "", err
			}
			names = append(names, a.Path)
		}
		if lvm, err := os.ReadFile(filepath.Join(chrootPrefix, "etc/lvm/lvmlocal.conf")); err == nil {
			h.upload("lvmlocal.conf", lvm)
		}
		return fmt.Sprintf("%d entries; test-only additions: %s", len(entries), strings.Join(names, ", ")), nil
	})
	h.step("umount", func() (string, error) {
		out()
		return "", fail(s.umountAll())
	})
	h.step("kexec", func() (string, error) {
		k, err := os.Open(info.Kernel)
		if err != nil {
			return "", fmt.Errorf("could not open kernel %s: %w", info.Kernel, err)
		}
		defer k.Close()
		initrdFd := -1
		flags := 0
		if info.Initrd != "" {
			r, err := os.Open(info.Initrd)
			if err != nil {
				return "", fmt.Errorf("could not open initrd %s: %w", info.Initrd, err)
			}
			defer r.Close()
			initrdFd = int(r.Fd())
		} else {
			flags |= unix.KEXEC_FILE_NO_INITRAMFS
		}
		if err := unix.KexecFileLoad(int(k.Fd()), initrdFd, info.Cmdline, flags); err != nil {
			return "", fmt.Errorf("kexec_file_load of %s: %w", info.Kernel, err)
		}
		return fmt.Sprintf("loaded %s with cmdline %q", info.Kernel, info.Cmdline), nil
	})
	logf("kexec into the installed kernel after %.1fs", time.Since(h.start).Seconds())
	syscall.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		h.emit(event{Step: "kexec", Status: "failed", Detail: fmt.Sprintf("reboot(KEXEC): %v", err)})
		powerOff()
	}
}

func (h *hammerRun) writeUserData() error {
	if h.job.Machine.Userdata == "" {
		return nil
	}
	data, err := base64.StdEncoding.DecodeString(h.job.Machine.Userdata)
	if err != nil {
		data = []byte(h.job.Machine.Userdata)
	}
	if err := os.MkdirAll(filepath.Join(chrootPrefix, "etc/metal"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(chrootPrefix, "etc/metal/userdata"), data, 0o600)
}

// writeLVMLocalConf copies the hammer's own lvmlocal.conf when the image has /etc/lvm.
func writeLVMLocalConf() error {
	src := "/etc/lvm/lvmlocal.conf"
	if _, err := os.Stat(src); err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(chrootPrefix, "etc/lvm")); err != nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("unable to read lvmlocal.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(chrootPrefix, src), b, 0o600); err != nil {
		return fmt.Errorf("unable to write lvmlocal.conf: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func parseMode(s string) (os.FileMode, error) {
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil {
		return 0, fmt.Errorf("bad mode %q", s)
	}
	return os.FileMode(m), nil
}
