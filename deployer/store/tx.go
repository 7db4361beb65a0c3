package store

import (
	"encoding/json"
	"fmt"
)

// Tx is one write transaction over several records, so that a decision that
// touches a preview and queues deployments lands whole or not at all.
type Tx struct {
	tx    *wtx
	added []Deployment
	// announced is set once the transaction adds to the outbox.
	announced bool
}

// Update runs f in one write transaction.
func (s *Store) Update(f func(*Tx) error) ([]Deployment, error) {
	var added []Deployment
	announced := false
	err := s.update(func(btx *wtx) error {
		tx := &Tx{tx: btx}
		if err := f(tx); err != nil {
			return err
		}
		added, announced = tx.added, tx.announced
		return nil
	})
	if err == nil && announced {
		s.signalAnnounced()
	}
	return added, err
}

// AddDeployment records a new deployment and gives it an id.
func (t *Tx) AddDeployment(d Deployment) (Deployment, error) {
	b := t.tx.Bucket(bucketDeployments)
	id, err := b.NextSequence()
	if err != nil {
		return Deployment{}, err
	}
	d.ID = FormatID(id)
	if err := put(b, []byte(d.ID), d); err != nil {
		return Deployment{}, err
	}
	t.added = append(t.added, d)
	return d, nil
}

// Preview reads a preview record; ok is false when there is none.
func (t *Tx) Preview(key string) (p Preview, ok bool, err error) {
	raw := t.tx.Bucket(bucketPreviews).Get([]byte(key))
	if raw == nil {
		return Preview{}, false, nil
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Preview{}, false, fmt.Errorf("preview %s: %w", key, err)
	}
	return p, true, nil
}

// PutPreview writes a preview record.
func (t *Tx) PutPreview(p Preview) error {
	if p.Key == "" {
		return fmt.Errorf("put preview: empty key")
	}
	return put(t.tx.Bucket(bucketPreviews), []byte(p.Key), p)
}

// Previews lists the preview records that match keep.
func (t *Tx) Previews(keep func(Preview) bool) ([]Preview, error) {
	var out []Preview
	err := t.tx.Bucket(bucketPreviews).ForEach(func(k, v []byte) error {
		var p Preview
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("preview %s: %w", k, err)
		}
		if keep(p) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
