package fakegitlab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SetCommit makes the project's repository hold files (path → content) at
// sha, as GET /projects/:id/repository/archive.tar.gz?sha= then serves them.
func (s *Server) SetCommit(projectID int64, sha string, files map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projectByID(projectID)
	if p.trees == nil {
		p.trees = map[string]map[string]string{}
	}
	p.trees[sha] = maps.Clone(files)
}

// Archives is how many archives the fake has served, for tests of caching.
func (s *Server) Archives() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.callLog {
		if strings.HasSuffix(c, "/repository/archive.tar.gz") {
			n++
		}
	}
	return n
}

// archive answers GET /projects/:id/repository/archive.tar.gz?sha= as
// GitLab does: a tar.gz whose entries sit under <name>-<sha>-<sha>/, with
// the folders as entries of their own; an unknown commit is a 404.
func (s *Server) archive(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, ok := s.projectID(r.PathValue("id"))
	var files map[string]string
	var name string
	sha := r.URL.Query().Get("sha")
	if ok {
		files = s.projectByID(id).trees[sha]
		full := s.projectPath(id)
		name = full[strings.LastIndex(full, "/")+1:]
	}
	s.mu.Unlock()
	switch {
	case !ok:
		apiError(w, http.StatusNotFound, "404 Project Not Found")
		return
	case files == nil:
		apiError(w, http.StatusNotFound, "404 File Not Found")
		return
	}
	b, err := tarGz(name+"-"+sha+"-"+sha, files)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// projectID resolves :id, a numeric id or a full path set with
// SetProjectPath. Callers hold s.mu.
func (s *Server) projectID(raw string) (int64, bool) {
	if id, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return id, id > 0
	}
	id, ok := s.dir.paths[strings.ToLower(raw)]
	return id, ok
}

// tarGz writes files under top, each folder once before what it holds.
func tarGz(top string, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	dir := func(d string) error {
		if dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime})
	}
	if err := dir(top); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			if err := dir(top + "/" + strings.Join(parts[:i], "/")); err != nil {
				return nil, err
			}
		}
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
