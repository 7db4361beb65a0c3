package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketCommands holds the commands people typed (an MR comment's
// /promote 50), recorded in the transaction that takes their delivery out
// of the inbox and kept until a command worker has run them. The inbox
// never waits on what a command asks of GitLab.
var bucketCommands = []byte("commands")

// CommandState is where a recorded command is; stored as its string.
type CommandState string

// A command is recorded, then running once a worker took it; when it is
// done it is deleted.
const (
	CommandRecorded CommandState = "recorded"
	CommandRunning  CommandState = "running"
)

// Command is one recorded command. The store does not interpret Body: its
// Kind's surface encoded it, and decodes it.
type Command struct {
	Seq         uint64       `json:"seq"`
	Kind        string       `json:"kind"` // e.g. "mr-note"
	Body        []byte       `json:"body"`
	DeliveryKey string       `json:"deliveryKey,omitempty"`
	State       CommandState `json:"state"`
	RecordedAt  time.Time    `json:"recordedAt"`
	StartedAt   time.Time    `json:"startedAt,omitzero"`
}

// AddCommand records c, as recorded, and gives it its sequence number.
func (t *Tx) AddCommand(c Command) (Command, error) {
	b := t.tx.Bucket(bucketCommands)
	seq, err := b.NextSequence()
	if err != nil {
		return Command{}, err
	}
	c.Seq, c.State = seq, CommandRecorded
	return c, put(b, itob(seq), c)
}

// Commands lists up to limit commands in state, oldest first.
func (s *Store) Commands(state CommandState, limit int) ([]Command, error) {
	var out []Command
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCommands).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var cmd Command
			if err := json.Unmarshal(v, &cmd); err != nil {
				return fmt.Errorf("command %x: %w", k, err)
			}
			if cmd.State == state {
				out = append(out, cmd)
			}
		}
		return nil
	})
	return out, err
}

// StartCommand moves command seq from recorded to running, and reports
// whether it did: of two workers, or one worker twice, one starts it. A
// command found running after a restart was interrupted, and is not
// started again, so none runs twice.
func (s *Store) StartCommand(seq uint64, now time.Time) (Command, bool, error) {
	var cmd Command
	started := false
	err := s.update(func(tx *wtx) error {
		b := tx.Bucket(bucketCommands)
		v := b.Get(itob(seq))
		if v == nil {
			return fmt.Errorf("command %d: %w", seq, ErrNotFound)
		}
		if err := json.Unmarshal(v, &cmd); err != nil {
			return fmt.Errorf("command %d: %w", seq, err)
		}
		if cmd.State != CommandRecorded {
			return nil
		}
		cmd.State, cmd.StartedAt, started = CommandRunning, now, true
		return put(b, itob(seq), cmd)
	})
	return cmd, started, err
}

// FinishCommand forgets command seq, in the transaction that applies what
// it asked for; a missing command is not an error.
func (t *Tx) FinishCommand(seq uint64) error {
	return t.tx.Bucket(bucketCommands).Delete(itob(seq))
}
