package gitlab

import (
	"context"
	"errors"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// CreateMRNote comments on a merge request and returns the new note's id.
func (c *Client) CreateMRNote(ctx context.Context, projectID, iid int64, body string) (int64, error) {
	n, _, err := c.gl.Notes.CreateMergeRequestNote(projectID, iid,
		&gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
	if err != nil {
		return 0, wrap(err, "create note on project %d MR !%d", projectID, iid)
	}
	return n.ID, nil
}

// UpdateMRNote replaces the body of a note on a merge request.
func (c *Client) UpdateMRNote(ctx context.Context, projectID, iid, noteID int64, body string) error {
	_, _, err := c.gl.Notes.UpdateMergeRequestNote(projectID, iid, noteID,
		&gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
	if err != nil {
		return wrap(err, "update note %d on project %d MR !%d", noteID, projectID, iid)
	}
	return nil
}

// AwardMRNoteEmoji reacts to a note with emoji (a name without colons, such as
// EmojiEyes). Awarding an emoji the note already carries is not an error.
func (c *Client) AwardMRNoteEmoji(ctx context.Context, projectID, iid, noteID int64, emoji string) error {
	_, _, err := c.gl.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(projectID, iid, noteID,
		&gl.CreateAwardEmojiOptions{Name: emoji}, gl.WithContext(ctx))
	if err == nil {
		return nil
	}
	if errors.Is(err, gl.ErrNotFound) {
		// GitLab answers a repeated award with 404 "Award Emoji Name has
		// already been taken", and the SDK drops that body, so look whether
		// the award is there. A missing note fails the lookup with 404 too.
		has, lerr := c.noteHasAward(ctx, projectID, iid, noteID, emoji)
		if lerr != nil {
			return wrap(lerr, "award %q on note %d of project %d MR !%d", emoji, noteID, projectID, iid)
		}
		if has {
			return nil
		}
	}
	return wrap(err, "award %q on note %d of project %d MR !%d", emoji, noteID, projectID, iid)
}

// noteHasAward reports whether anyone awarded emoji on the note. The token's
// own award is what made the POST fail, so any match is taken to be it.
func (c *Client) noteHasAward(ctx context.Context, projectID, iid, noteID int64, emoji string) (bool, error) {
	opt := &gl.ListAwardEmojiOptions{ListOptions: gl.ListOptions{PerPage: 100}}
	reqOpts := []gl.RequestOptionFunc{gl.WithContext(ctx)}
	for range maxPages {
		awards, resp, err := c.gl.AwardEmoji.ListMergeRequestAwardEmojiOnNote(projectID, iid, noteID, opt, reqOpts...)
		if err != nil {
			return false, err
		}
		for _, a := range awards {
			if a.Name == emoji {
				return true, nil
			}
		}
		next, ok := gl.WithNext(resp)
		if !ok {
			return false, nil
		}
		reqOpts = []gl.RequestOptionFunc{gl.WithContext(ctx), next}
	}
	return false, nil
}

// maxPages bounds every paginated listing, in case a server keeps saying "next".
const maxPages = 50

// Note is a merge request comment as GitLab has it.
type Note struct {
	ID     int64
	Body   string
	System bool
	Author User
}

// MRNote reads note noteID of merge request iid. It is how shipbot learns
// who wrote a comment: a Note Hook's payload is only what its sender says.
func (c *Client) MRNote(ctx context.Context, projectID, iid, noteID int64) (Note, error) {
	n, _, err := c.gl.Notes.GetMergeRequestNote(projectID, iid, noteID, gl.WithContext(ctx))
	if err != nil {
		return Note{}, wrap(err, "read note %d on project %d MR !%d", noteID, projectID, iid)
	}
	return Note{ID: n.ID, Body: n.Body, System: n.System,
		Author: User{ID: n.Author.ID, Username: n.Author.Username, Name: n.Author.Name}}, nil
}
