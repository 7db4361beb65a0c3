package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PreviewStatus is where a merge request's preview environment is.
type PreviewStatus string

// Preview statuses; their moves are in status.go.
const (
	PreviewWaiting   PreviewStatus = "waiting" // for a successful pipeline
	PreviewDeploying PreviewStatus = "deploying"
	PreviewReady     PreviewStatus = "ready"
	PreviewFailed    PreviewStatus = "failed"
	PreviewStopping  PreviewStatus = "stopping"
	PreviewStopped   PreviewStatus = "stopped"
)

// Preview is one merge request's review environment: what GitLab said of the
// MR, what shipbot wants, and what it has.
type Preview struct {
	Key          string    `json:"key"` // "<project id>!<iid>"
	ProjectID    int64     `json:"projectId"`
	Project      string    `json:"project"`
	IID          int64     `json:"iid"`
	Title        string    `json:"title,omitempty"`
	SourceBranch string    `json:"sourceBranch"`
	HeadSHA      string    `json:"headSha"`
	WebURL       string    `json:"webUrl,omitempty"`
	Labels       []string  `json:"labels,omitempty"`
	MRState      string    `json:"mrState"` // opened, closed, merged, deleted
	LastActivity time.Time `json:"lastActivity"`

	// Wanted is false once the preview should be gone: MR closed or merged,
	// `/preview stop`, idle past its TTL.
	Wanted     bool   `json:"wanted"`
	StopReason string `json:"stopReason,omitempty"`

	Cluster     string        `json:"cluster"`
	Namespace   string        `json:"namespace"`
	Status      PreviewStatus `json:"status"`
	URL         string        `json:"url,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	DeployedSHA string        `json:"deployedSha,omitempty"`
	User        string        `json:"user,omitempty"`

	// What shipbot created on GitLab, so it edits rather than duplicates.
	NoteID         int64 `json:"noteId,omitempty"`
	EnvironmentID  int64 `json:"environmentId,omitempty"`
	GitLabDeployID int64 `json:"gitlabDeploymentId,omitempty"`
	// The SHA and status GitLab has for that deployment record; a record
	// left "running" is closed when its deploy ends, however it ends.
	GitLabDeploySHA    string    `json:"gitlabDeploymentSha,omitempty"`
	GitLabDeployStatus string    `json:"gitlabDeploymentStatus,omitempty"`
	Updated            time.Time `json:"updated"`
}

// PreviewKey names a merge request's preview.
func PreviewKey(projectID, iid int64) string { return fmt.Sprintf("%d!%d", projectID, iid) }

// Preview reads one preview record.
func (s *Store) Preview(key string) (Preview, error) {
	var p Preview
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketPreviews).Get([]byte(key))
		if raw == nil {
			return fmt.Errorf("preview %s: %w", key, ErrNotFound)
		}
		return json.Unmarshal(raw, &p)
	})
	return p, err
}

// Previews lists the preview records that match keep (all if nil).
func (s *Store) Previews(keep func(Preview) bool) ([]Preview, error) {
	var out []Preview
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPreviews).ForEach(func(k, v []byte) error {
			var p Preview
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("preview %s: %w", k, err)
			}
			if keep == nil || keep(p) {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// UpdatePreview changes one preview record in a transaction of its own.
func (s *Store) UpdatePreview(key string, f func(p *Preview) error) (Preview, error) {
	var out Preview
	_, err := s.Update(func(tx *Tx) error {
		p, ok, err := tx.Preview(key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("preview %s: %w", key, ErrNotFound)
		}
		if err := f(&p); err != nil {
			return err
		}
		out = p
		return tx.PutPreview(p)
	})
	return out, err
}
