package store

import (
	"path/filepath"
	"testing"
	"time"
)

// TestCommandsRunOnce: a recorded command is started once, even across a
// reopen; one that was running when the store closed is never started
// again; a finished one is gone.
func TestCommandsRunOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var seqs []uint64
	if _, err := s.Update(func(tx *Tx) error {
		for _, body := range []string{"/status", "/promote 50", "/pause"} {
			c, err := tx.AddCommand(Command{Kind: "mr-note", Body: []byte(body), RecordedAt: t0})
			if err != nil {
				return err
			}
			seqs = append(seqs, c.Seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := s.StartCommand(seqs[0], t0); err != nil || !ok || c.State != CommandRunning || string(c.Body) != "/status" {
		t.Fatalf("first start: %+v %v %v", c, ok, err)
	}
	if _, ok, err := s.StartCommand(seqs[0], t0); err != nil || ok {
		t.Fatalf("second start of the same command: %v %v; want not started", ok, err)
	}
	if _, err := s.Update(func(tx *Tx) error { return tx.FinishCommand(seqs[1]) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recorded, err := s.Commands(CommandRecorded, 10)
	if err != nil || len(recorded) != 1 || recorded[0].Seq != seqs[2] {
		t.Fatalf("recorded after reopen: %+v %v; want only /pause", recorded, err)
	}
	running, err := s.Commands(CommandRunning, 10)
	if err != nil || len(running) != 1 || running[0].Seq != seqs[0] || !running[0].StartedAt.Equal(t0) {
		t.Fatalf("running after reopen: %+v %v; want /status", running, err)
	}
	if _, ok, _ := s.StartCommand(seqs[0], t0); ok {
		t.Error("a command interrupted while running was started again after a reopen")
	}
	if _, _, err := s.StartCommand(seqs[1], t0); err == nil {
		t.Error("a finished command can still be started")
	}
}
