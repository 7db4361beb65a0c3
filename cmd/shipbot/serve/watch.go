package serve

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce is how long the config's directory must be quiet before
// a change to it is read: an editor's save or a ConfigMap update is
// several events (a temporary file, a rename, the `..data` symlink swap).
const reloadDebounce = 250 * time.Millisecond

// watcher is what tells Main to reload: SIGHUP, and changes in the
// directory of the config file. The directory, not the file, is watched,
// since a ConfigMap volume replaces the file by swapping the symlink
// `..data`, and editors replace it by renaming a new file over it, so a
// watch on the file itself would be lost after the first change.
type watcher struct {
	fs  *fsnotify.Watcher
	hup chan os.Signal
}

// watchConfig is newWatcher when Main.Watch is set, and nil otherwise. A
// replica taking over (Embedded) whose watch cannot start leads without
// reloads rather than not at all, and says so.
func (m *Main) watchConfig() (*watcher, error) {
	if !m.Watch {
		return nil, nil
	}
	w, err := m.newWatcher()
	if err != nil && m.Embedded {
		m.Log.Error("config is not watched: reloads are off while this replica leads", "err", err)
		return nil, nil
	}
	return w, err
}

// newWatcher starts watching, then reads the file once: it may have
// changed since the config in force was loaded from it, a moment ago for a
// process that just started, or hours ago for an HA replica that has only
// now come to lead (it starts from the config it was started with). close
// stops it.
func (m *Main) newWatcher() (*watcher, error) {
	file := m.Config.File()
	m.reloads.sum = m.live.Load().Sum()
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	if err := fw.Add(filepath.Dir(file)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch config: %w", err)
	}
	w := &watcher{fs: fw, hup: make(chan os.Signal, 1)}
	signal.Notify(w.hup, syscall.SIGHUP)
	// Watched first, then read: a change in between is seen either way.
	_ = m.reload(true)
	return w, nil
}

func (w *watcher) close() {
	signal.Stop(w.hup)
	w.fs.Close()
}

// runWatcher reloads on SIGHUP, whatever the file holds, and once the directory
// has been quiet for reloadDebounce after a change, if the file's bytes
// changed, until ctx ends.
func (m *Main) runWatcher(ctx context.Context, w *watcher) {
	defer w.close()
	var quiet <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.hup:
			m.Log.Info("SIGHUP: reloading the config", "file", m.Config.File())
			_ = m.reload(false)
		case _, ok := <-w.fs.Events:
			if !ok {
				return
			}
			quiet = time.After(reloadDebounce)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			m.Log.Warn("config watch", "err", err)
		case <-quiet:
			quiet = nil
			_ = m.reload(true)
		}
	}
}

// OnHangup calls f on each SIGHUP until ctx ends. SIGHUP asks for a
// config reload; a process that reloads nothing (an HA follower, whose
// leader reloads, or an intake replica) must not die of it, as a Go program
// that takes no interest in the signal does: ops may send it to every pod.
// Main's own watcher, where there is one, reloads on it as well. The
// channel returned is closed once it no longer listens.
func OnHangup(ctx context.Context, f func()) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				f()
			}
		}
	}()
	return stopped
}
