package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// kwokModule is the kwok command the harness installs; bump the version here to rebuild it.
const kwokModule = "sigs.k8s.io/kwok/cmd/kwok@v0.8.0"

// Binaries holds the absolute paths of the control-plane executables.
type Binaries struct {
	Etcd              string
	APIServer         string
	ControllerManager string
	Scheduler         string
	Kwok              string
}

// tool is one build that produces one or more executables in its own cache directory.
type tool struct {
	name  string   // prefix of the cache directory, e.g. "kube"
	key   string   // hash of what the build depends on
	dir   string   // working directory of the go command
	args  []string // go command arguments; OUT is replaced by the output directory
	gobin bool     // whether the output directory is passed as GOBIN (go install)
	bins  []string // executables the build leaves in the output directory
}

// EnsureBinaries returns the control-plane executables, building them first if the
// cache does not hold them yet for the current tool versions. Concurrent callers,
// also in other processes, wait for a single build.
func EnsureBinaries(ctx context.Context, logw io.Writer) (Binaries, error) {
	if logw == nil {
		logw = io.Discard
	}
	cache, err := binCacheDir()
	if err != nil {
		return Binaries{}, err
	}
	tools, err := toolBuilds(cache)
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create binary cache: %w", err)
	}
	if !allBuilt(cache, tools) {
		if err := buildLocked(ctx, logw, cache, tools); err != nil {
			return Binaries{}, err
		}
	}
	out := func(t tool, bin string) string { return filepath.Join(cache, t.outDir(), bin) }
	return Binaries{
		Etcd:              out(tools[0], "etcd"),
		APIServer:         out(tools[1], "kube-apiserver"),
		ControllerManager: out(tools[1], "kube-controller-manager"),
		Scheduler:         out(tools[1], "kube-scheduler"),
		Kwok:              out(tools[2], "kwok"),
	}, nil
}

// binCacheDir is $SHIPBOT_TEST_BIN, else the user cache dir's shipbot-test/bin.
func binCacheDir() (string, error) {
	if d := os.Getenv("SHIPBOT_TEST_BIN"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locate binary cache (set SHIPBOT_TEST_BIN): %w", err)
	}
	return filepath.Join(d, "shipbot-test", "bin"), nil
}

// toolBuilds lists the three builds; their order is relied on by EnsureBinaries.
func toolBuilds(cache string) ([]tool, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	etcdDir := filepath.Join(root, "test", "tools", "etcd")
	kubeDir := filepath.Join(root, "test", "tools", "kube")
	etcdKey, err := hashFiles(etcdDir, "go.mod", "go.sum", "main.go")
	if err != nil {
		return nil, err
	}
	kubeKey, err := hashFiles(kubeDir, "go.mod", "go.sum")
	if err != nil {
		return nil, err
	}
	return []tool{
		{name: "etcd", key: etcdKey, dir: etcdDir, args: []string{"build", "-o", "OUT/etcd", "."}, bins: []string{"etcd"}},
		{name: "kube", key: kubeKey, dir: kubeDir, args: []string{"build", "-o", "OUT/", "tool"},
			bins: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}},
		{name: "kwok", key: hashString(kwokModule), dir: cache, args: []string{"install", kwokModule}, gobin: true, bins: []string{"kwok"}},
	}, nil
}

// outDir is the tool's directory inside the cache, named by its key.
func (t tool) outDir() string { return t.name + "-" + t.key }

func hashFiles(dir string, names ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", fmt.Errorf("hash tool sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(runtime.GOOS + "/" + runtime.GOARCH + "\n" + s))
	return hex.EncodeToString(sum[:])[:12]
}

func allBuilt(cache string, tools []tool) bool {
	for _, t := range tools {
		if !t.built(cache) {
			return false
		}
	}
	return true
}

func (t tool) built(cache string) bool {
	for _, b := range t.bins {
		if fi, err := os.Stat(filepath.Join(cache, t.outDir(), b)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// buildLocked builds the missing tools while holding the cache's file lock, so that
// parallel test binaries build once and the others reuse the result.
func buildLocked(ctx context.Context, logw io.Writer, cache string, tools []tool) error {
	unlock, err := lockFile(ctx, logw, filepath.Join(cache, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	for _, t := range tools {
		if t.built(cache) { // another process may have built it while we waited
			continue
		}
		if err := t.build(ctx, logw, cache); err != nil {
			return err
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can end the wait.
func lockFile(ctx context.Context, logw io.Writer, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	for said := false; ; said = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !said {
			fmt.Fprintf(logw, "cluster: waiting for another process building into %s\n", filepath.Dir(path))
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for build lock: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// build runs the go command into a temporary directory and renames it into place,
// so that a killed build never leaves a half-written tool directory behind.
func (t tool) build(ctx context.Context, logw io.Writer, cache string) error {
	final := filepath.Join(cache, t.outDir())
	tmp := filepath.Join(cache, ".tmp-"+t.outDir())
	// We hold the lock, so any temporary directory is a leftover of a killed build.
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	start := time.Now()
	fmt.Fprintf(logw, "cluster: building %s into %s (minutes on a cold Go build cache)\n", t.name, final)
	if err := t.runGo(ctx, logw, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	_ = os.RemoveAll(final) // an incomplete directory from an older layout
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("install %s: %w", t.name, err)
	}
	fmt.Fprintf(logw, "cluster: built %s in %s\n", t.name, time.Since(start).Round(time.Millisecond))
	return nil
}

func (t tool) runGo(ctx context.Context, logw io.Writer, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: go command not found: %w", t.name, err)
	}
	args := make([]string, len(t.args))
	for i, a := range t.args {
		args[i] = strings.Replace(a, "OUT", out, 1)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = t.dir
	// GOWORK=off: a go.work above the repo must not pull the tool modules into it.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if t.gobin {
		cmd.Env = append(cmd.Env, "GOBIN="+out)
	}
	tail := &tailBuffer{max: 8 << 10}
	cmd.Stdout = io.MultiWriter(logw, tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s (go %s in %s): %w\n%s", t.name, strings.Join(args, " "), t.dir, err, tail)
	}
	return nil
}

// repoRoot returns the shipbot repository root: $SHIPBOT_REPO_ROOT, else the
// directory two levels above this source file, else the nearest parent of the
// working directory whose go.mod declares shipbot's module.
func repoRoot() (string, error) {
	if d := os.Getenv("SHIPBOT_REPO_ROOT"); d != "" {
		return filepath.Abs(d)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if isRepoRoot(root) {
			return filepath.Clean(root), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locate repo root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if isRepoRoot(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("locate repo root: not found from this source file or the working directory; set SHIPBOT_REPO_ROOT")
		}
	}
}

func isRepoRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == "github.com/shipbot/shipbot"
		}
	}
	return false
}
