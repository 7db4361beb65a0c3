package mergerequest_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/bot/mergerequest"
	"github.com/shipbot/shipbot/deployer/store"
	"github.com/shipbot/shipbot/test/fakegitlab"
	"github.com/shipbot/shipbot/test/fixtures"
)

// worker is a command worker on st running the rig's commands.
func (r *rig) worker(st *store.Store, edit func(*mergerequest.CommandWorker)) *mergerequest.CommandWorker {
	w := mergerequest.CommandWorker{Commands: r.cmds, Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clock.Now}
	if edit != nil {
		edit(&w)
	}
	return mergerequest.NewCommandWorker(w)
}

// queue posts body on MR !5 as user and records it in st as the inbox
// does, as a Note Hook received at; it returns the note's id.
func (r *rig) queue(w *mergerequest.CommandWorker, st *store.Store, user gitlabevent.User, body string, at time.Time) int64 {
	r.t.Helper()
	id := r.gl.AddNote(projectID, mrIID, fakegitlab.Note{Body: body, Author: user.Username, AuthorID: user.ID})
	raw := fixtures.Note(r.t, fixtures.MR{ProjectID: projectID, Project: project, IID: mrIID, UserID: user.ID, Username: user.Username}, id, body, "create")
	ev, err := gitlabevent.Decode("Note Hook", raw)
	if err != nil {
		r.t.Fatal(err)
	}
	changes := w.Record(store.Delivery{Key: fmt.Sprint("note-", id), Event: "Note Hook", Body: raw, ReceivedAt: at}, ev.(*gitlabevent.Note))
	if changes == nil {
		r.t.Fatalf("%q is not recorded as a command", body)
	}
	if _, err := st.Update(changes); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// replies are shipbot's replies on MR !5, oldest first, and the emoji on
// each note, by id.
func (r *rig) replies() (replies []string, emojis map[int64][]string) {
	emojis = map[int64][]string{}
	for _, n := range r.gl.Notes(projectID, mrIID) {
		if strings.Contains(n.Body, "<!-- shipbot:reply -->") {
			replies = append(replies, n.Body)
		} else {
			emojis[n.ID] = n.Emojis
		}
	}
	return replies, emojis
}

func (r *rig) runRecorded(w *mergerequest.CommandWorker, want int) {
	r.t.Helper()
	if ran, err := w.RunRecorded(r.t.Context()); err != nil || ran != want {
		r.t.Fatalf("ran %d commands (%v), want %d", ran, err, want)
	}
}

// TestCommandRateLimit: past their budget a person's command is refused,
// saying why and when to repeat it, without asking GitLab about it;
// others, and the same person once the budget refills, are served.
func TestCommandRateLimit(t *testing.T) {
	r := newRig(t)
	w := r.worker(r.st, func(w *mergerequest.CommandWorker) { w.PerMinute, w.Burst = 2, 2 })
	var ids []int64
	for _, c := range []struct {
		user gitlabevent.User
		at   time.Duration
	}{{reporter, 0}, {reporter, time.Second}, {reporter, 2 * time.Second}, {maintainer, 2 * time.Second}, {reporter, time.Minute}} {
		ids = append(ids, r.queue(w, r.st, c.user, "/status", t0.Add(c.at)))
	}
	r.runRecorded(w, 5)
	replies, emojis := r.replies()
	if len(replies) != 5 {
		t.Fatalf("%d replies, want 5:\n%s", len(replies), strings.Join(replies, "\n---\n"))
	}
	for i, reply := range replies {
		refused := i == 2
		if got := strings.Contains(reply, "No release"); got == refused {
			t.Errorf("reply %d answers the command: %v, want %v:\n%s", i, got, !refused, reply)
		}
	}
	want := "❌ @rex, shipbot takes at most 2 commands a minute from one person (2 at once), and you are over that: this one was not run. Repeat it in 2"
	if !strings.Contains(replies[2], want) || !strings.HasSuffix(replies[2], "s or later.") { // in 27 s, give or take rounding
		t.Errorf("refusal:\n%s\nwant\n%s", replies[2], want)
	}
	if !slices.Equal(emojis[ids[2]], []string{"x"}) {
		t.Errorf("emoji on the refused comment %v, want [x]", emojis[ids[2]])
	}
	refusedNote := fmt.Sprintf("GET /api/v4/projects/%d/merge_requests/%d/notes/%d", projectID, mrIID, ids[2])
	if slices.Contains(r.gl.CallLog(), refusedNote) {
		t.Errorf("GitLab was asked about the refused comment: %s", refusedNote)
	}
	r.runRecorded(w, 0)
}

// TestCommandsSurviveRestart: commands recorded before a stop run once
// after it, and only once; one a stop interrupted is answered as such and
// never run again.
func TestCommandsSurviveRestart(t *testing.T) {
	r := newRig(t)
	path := filepath.Join(t.TempDir(), "commands.db")
	open := func() *store.Store {
		st, err := store.Open(path, store.Options{LockTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	w := r.worker(st, nil)
	interrupted := r.queue(w, st, maintainer, "/status", t0)
	r.queue(w, st, maintainer, "/help", t0)
	r.queue(w, st, maintainer, "/status", t0)
	if _, ok, err := st.StartCommand(1, t0); !ok || err != nil { // the stop came while it ran
		t.Fatalf("start the first command: %v %v", ok, err)
	}
	st.Close()

	for restart := range 2 {
		st = open()
		w = r.worker(st, nil)
		w.Interrupted(t.Context())
		r.runRecorded(w, []int{2, 0}[restart])
		r.runRecorded(w, 0)
		st.Close()
		replies, emojis := r.replies()
		if len(replies) != 3 {
			t.Fatalf("restart %d: %d replies, want 3:\n%s", restart, len(replies), strings.Join(replies, "\n---\n"))
		}
		if !strings.Contains(replies[0], "shipbot stopped while it ran this command, and does not run it again") ||
			!strings.Contains(replies[1], "**shipbot commands.**") || !strings.Contains(replies[2], "No release") {
			t.Errorf("restart %d: replies\n%s", restart, strings.Join(replies, "\n---\n"))
		}
		if !slices.Equal(emojis[interrupted], []string{"x"}) {
			t.Errorf("emoji on the interrupted comment %v, want [x]", emojis[interrupted])
		}
	}
}

// TestCommandDeadline: a command whose GitLab call hangs is given up at
// its deadline, saying so, and the next one runs.
func TestCommandDeadline(t *testing.T) {
	r := newRig(t)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	w := r.worker(r.st, func(w *mergerequest.CommandWorker) { w.Timeout = 200 * time.Millisecond })
	stuck := r.queue(w, r.st, maintainer, "/status", t0)
	r.queue(w, r.st, maintainer, "/status", t0)
	r.gl.BeforeNext("GET", fmt.Sprintf("projects/%d/merge_requests/%d/notes/%d", projectID, mrIID, stuck), func() { <-release })
	r.runRecorded(w, 2)
	replies, emojis := r.replies()
	if len(replies) != 2 || !strings.Contains(replies[0], "❌ shipbot gave up on this command after 200ms: GitLab did not answer in time.") ||
		!strings.Contains(replies[1], "No release") {
		t.Errorf("replies:\n%s", strings.Join(replies, "\n---\n"))
	}
	if !slices.Equal(emojis[stuck], []string{"x"}) {
		t.Errorf("emoji on the stuck comment %v, want [x]", emojis[stuck])
	}
}
