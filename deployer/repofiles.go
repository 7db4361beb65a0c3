package deployer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"golang.org/x/sync/singleflight"
)

// Archives reads a project's repository at a commit, as GitLab's
// GET /projects/:id/repository/archive.tar.gz?sha= serves it: a tar.gz
// whose entries sit under one top folder.
type Archives interface {
	Archive(ctx context.Context, project, sha string) ([]byte, error)
}

// Limits of one repository archive: shipbot keeps the files of a few
// commits in memory, so a huge repository must fail rather than exhaust it.
const (
	maxArchiveBytes = 256 << 20
	maxArchiveFiles = 20000
	// repoCacheSize is how many commits' files are kept: a release renders
	// two revisions over and over, and a few apps deploy at once.
	repoCacheSize = 16
	// fetchTimeout bounds one archive download.
	fetchTimeout = 2 * time.Minute
)

// ErrRepoFiles marks a failure to read a repository at a commit.
var ErrRepoFiles = errors.New("repository files")

// Repos gives the files of projects' repositories at a commit. The files at
// a sha never change, so each commit is downloaded once and kept, the most
// recently used first; concurrent readers of one commit share one download.
type Repos struct {
	archives Archives
	group    singleflight.Group
	mu       sync.Mutex
	cache    map[string]fs.FS
	order    []string // keys, least recently used first
}

// NewRepos returns Repos reading archives from a, which may be nil when
// GitLab is not configured: every read then fails, saying so.
func NewRepos(a Archives) *Repos {
	return &Repos{archives: a, cache: map[string]fs.FS{}}
}

// Files returns the project's repository at sha.
func (r *Repos) Files(ctx context.Context, project, sha string) (fs.FS, error) {
	if r == nil || r.archives == nil {
		return nil, fmt.Errorf("%w: %s at %s: shipbot reads repositories through the GitLab API, and gitlab.token is not set", ErrRepoFiles, project, short(sha))
	}
	if sha == "" {
		return nil, fmt.Errorf("%w: %s: no commit to read", ErrRepoFiles, project)
	}
	key := project + "@" + sha
	if f, ok := r.cached(key); ok {
		return f, nil
	}
	ch := r.group.DoChan(key, func() (any, error) {
		// Another caller's download may have finished, and left the group,
		// since this one looked in the cache.
		if f, ok := r.cached(key); ok {
			return f, nil
		}
		// Detached from the caller: the download is shared with others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		b, err := r.archives.Archive(ctx, project, sha)
		if err != nil {
			return nil, err
		}
		f, err := untar(b)
		if err != nil {
			return nil, err
		}
		r.keep(key, f)
		return f, nil
	})
	// A caller out of time leaves; the download goes on, and is kept for
	// the next reader of this commit.
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		res.Err = ctx.Err()
	}
	if res.Err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrRepoFiles, project, short(sha), res.Err)
	}
	return res.Val.(fs.FS), nil
}

func (r *Repos) cached(key string) (fs.FS, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.cache[key]
	if ok {
		r.touch(key)
	}
	return f, ok
}

func (r *Repos) keep(key string, f fs.FS) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[key] = f
	r.touch(key)
	for len(r.order) > repoCacheSize {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
}

// touch moves key to the most recently used end; r.mu is held.
func (r *Repos) touch(key string) {
	for i, k := range r.order {
		if k == key {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	r.order = append(r.order, key)
}

// untar reads a repository archive into memory, without its top folder.
// fstest.MapFS is the standard library's read-only in-memory fs.FS; it has
// no test-only behaviour.
func untar(b []byte) (fs.FS, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	tr := tar.NewReader(zr)
	out := fstest.MapFS{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		name, ok := inRepo(h.Name)
		if !ok || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir) {
			continue // the top folder, pax headers, links: nothing a source reads
		}
		if len(out) >= maxArchiveFiles {
			return nil, fmt.Errorf("archive: more than %d files", maxArchiveFiles)
		}
		if h.Typeflag == tar.TypeDir {
			out[name] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: h.ModTime}
			continue
		}
		if total += h.Size; total > maxArchiveBytes {
			return nil, fmt.Errorf("archive: larger than %d bytes", maxArchiveBytes)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("archive: %s: %w", name, err)
		}
		out[name] = &fstest.MapFile{Data: data, Mode: 0o644, ModTime: h.ModTime}
	}
}

// inRepo turns an archive entry's name into its path in the repository:
// GitLab puts every entry under <project>-<sha>-<sha>/.
func inRepo(name string) (string, bool) {
	_, rest, ok := strings.Cut(strings.TrimPrefix(name, "./"), "/")
	if !ok {
		return "", false
	}
	rest = path.Clean(strings.TrimSuffix(rest, "/"))
	if rest == "." || rest == ".." || strings.HasPrefix(rest, "../") || !fs.ValidPath(rest) {
		return "", false
	}
	return rest, true
}
