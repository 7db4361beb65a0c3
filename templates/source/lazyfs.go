package source

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// maxKustomizeBytes bounds what a build copies into memory, as Helm bounds a chart.
const maxKustomizeBytes = 100 << 20

// lazyFS is Kustomize's in-memory file system, filled from an fs.FS as
// Kustomize first looks at each path: a file when it is read, a folder's
// entries when it is listed. Kustomize reads only what the kustomization
// names, so the fs.FS may be a whole repository, or the local disk.
type lazyFS struct {
	filesys.FileSystem // the copy, plus what shipbot writes
	src                fs.FS
	fetched            map[string]bool // fs.FS paths looked up
	listed             map[string]bool // fs.FS folders whose entries are copied
	size               int64
	err                error // the first copy that failed, which Kustomize saw as missing
}

func newLazyFS(src fs.FS) *lazyFS {
	return &lazyFS{FileSystem: filesys.MakeFsInMemory(), src: src, fetched: map[string]bool{}, listed: map[string]bool{}}
}

// srcPath turns Kustomize's path, absolute or relative to the root, into the fs.FS's.
func srcPath(p string) string {
	p = strings.TrimLeft(path.Clean(filepath.ToSlash(p)), "/")
	if p == "" {
		return "."
	}
	return p
}

// inSource reports whether p exists in the fs.FS.
func (l *lazyFS) inSource(p string) bool {
	_, err := fs.Stat(l.src, srcPath(p))
	return err == nil
}

// fetch copies p: a file with its content, a folder as an empty one.
func (l *lazyFS) fetch(p string) {
	sp := srcPath(p)
	if l.fetched[sp] {
		return
	}
	l.fetched[sp] = true
	fi, err := fs.Stat(l.src, sp)
	if err != nil {
		return // not in the source: only what shipbot wrote, if anything
	}
	if fi.IsDir() {
		l.fail(l.FileSystem.MkdirAll("/" + sp))
		return
	}
	if l.size += fi.Size(); l.size > maxKustomizeBytes {
		l.fail(fmt.Errorf("the kustomization reads more than %d bytes", maxKustomizeBytes))
		return
	}
	b, err := fs.ReadFile(l.src, sp)
	if err == nil {
		err = l.FileSystem.WriteFile("/"+sp, b)
	}
	l.fail(err)
}

// list copies a folder's entries, each as fetch does.
func (l *lazyFS) list(p string) {
	sp := srcPath(p)
	if l.listed[sp] {
		return
	}
	l.listed[sp] = true
	l.fetch(sp)
	entries, err := fs.ReadDir(l.src, sp)
	if err != nil {
		return
	}
	for _, e := range entries {
		l.fetch(path.Join(sp, e.Name()))
	}
}

// tree copies a folder and everything under it.
func (l *lazyFS) tree(p string) {
	l.list(p)
	entries, _ := fs.ReadDir(l.src, srcPath(p))
	for _, e := range entries {
		if child := path.Join(srcPath(p), e.Name()); l.FileSystem.IsDir("/" + child) {
			l.tree(child)
		}
	}
}

func (l *lazyFS) fail(err error) {
	if err != nil && l.err == nil {
		l.err = err
	}
}

// Open implements filesys.FileSystem.
func (l *lazyFS) Open(p string) (filesys.File, error) { l.fetch(p); return l.FileSystem.Open(p) }

// ReadFile implements filesys.FileSystem.
func (l *lazyFS) ReadFile(p string) ([]byte, error) { l.fetch(p); return l.FileSystem.ReadFile(p) }

// Exists implements filesys.FileSystem.
func (l *lazyFS) Exists(p string) bool { l.fetch(p); return l.FileSystem.Exists(p) }

// IsDir implements filesys.FileSystem.
func (l *lazyFS) IsDir(p string) bool { l.fetch(p); return l.FileSystem.IsDir(p) }

// CleanedAbs implements filesys.FileSystem.
func (l *lazyFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	l.fetch(p)
	return l.FileSystem.CleanedAbs(p)
}

// ReadDir implements filesys.FileSystem.
func (l *lazyFS) ReadDir(p string) ([]string, error) { l.list(p); return l.FileSystem.ReadDir(p) }

// Walk implements filesys.FileSystem.
func (l *lazyFS) Walk(p string, fn filepath.WalkFunc) error {
	l.tree(p)
	return l.FileSystem.Walk(p, fn)
}

// Glob implements filesys.FileSystem: it copies the tree under the
// pattern's longest folder without wildcards first.
func (l *lazyFS) Glob(pattern string) ([]string, error) {
	dir := path.Dir(filepath.ToSlash(pattern))
	for strings.ContainsAny(dir, `*?[\`) {
		dir = path.Dir(dir)
	}
	l.tree(dir)
	return l.FileSystem.Glob(pattern)
}
