package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Status is where a deployment is in its life.
type Status string

// Deployment statuses. Pending and running are active: the engine resumes them
// after a restart. Their moves are in status.go.
const (
	StatusPending    Status = "pending"
	StatusRunning    Status = "running"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusSuperseded Status = "superseded"
)

// Deployment records who deployed what, from which commit, pipeline and job,
// to where, and how it ended.
type Deployment struct {
	ID          string    `json:"id"`
	DeliveryKey string    `json:"deliveryKey,omitempty"`
	App         string    `json:"app"`
	Project     string    `json:"project"`
	ProjectID   int64     `json:"projectId,omitempty"`
	Environment string    `json:"environment"`
	Cluster     string    `json:"cluster"`
	Namespace   string    `json:"namespace"`
	Ref         string    `json:"ref"`
	Tag         bool      `json:"tag,omitempty"`
	SHA         string    `json:"sha"`
	Image       string    `json:"image"`
	PipelineID  int64     `json:"pipelineId,omitempty"`
	JobID       int64     `json:"jobId,omitempty"`
	User        string    `json:"user"`
	Preview     string    `json:"preview,omitempty"` // the preview key, for merge request deployments
	Trigger     string    `json:"trigger"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	Created     time.Time `json:"created"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
}

// Target names where a deployment goes; one deploy per target runs at a time.
func (d Deployment) Target() string {
	return d.App + "/" + d.Environment + "/" + d.Cluster + "/" + d.Namespace
}

// FormatID renders a sequence number as a deployment id that sorts by time.
func FormatID(seq uint64) string { return fmt.Sprintf("d%012d", seq) }

// PutDeployment writes a deployment record.
func (s *Store) PutDeployment(d Deployment) error {
	if d.ID == "" {
		return fmt.Errorf("put deployment: empty id")
	}
	return s.update(func(tx *wtx) error {
		return put(tx.Bucket(bucketDeployments), []byte(d.ID), d)
	})
}

// Deployment reads one deployment record.
func (s *Store) Deployment(id string) (Deployment, error) {
	var d Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDeployments).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("deployment %s: %w", id, ErrNotFound)
		}
		return json.Unmarshal(raw, &d)
	})
	return d, err
}

// Deployments lists the records that match keep (all if nil), oldest first.
func (s *Store) Deployments(keep func(Deployment) bool) ([]Deployment, error) {
	var out []Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeployments).ForEach(func(k, v []byte) error {
			var d Deployment
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("deployment %s: %w", k, err)
			}
			if keep == nil || keep(d) {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}
