package fakegitlab

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// maxNoteLength is GitLab's limit on a note's body.
const maxNoteLength = 1_000_000

// mergeRequest resolves :id and :iid, answering 404 when the MR does not exist. Callers hold s.mu.
func (s *Server) mergeRequest(w http.ResponseWriter, r *http.Request) (*project, *mrState, bool) {
	p, ok := s.project(w, r)
	if !ok {
		return nil, nil, false
	}
	iid, ok := pathInt(w, r, "iid")
	if !ok {
		return nil, nil, false
	}
	mr := p.mrs[iid]
	if mr == nil {
		apiError(w, http.StatusNotFound, "404 Not found")
		return nil, nil, false
	}
	return p, mr, true
}

// note resolves :note_id within the MR of the path. Callers hold s.mu.
func (s *Server) note(w http.ResponseWriter, r *http.Request) (*project, *mrState, *noteState, bool) {
	p, mr, ok := s.mergeRequest(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	id, ok := pathInt(w, r, "note_id")
	if !ok {
		return nil, nil, nil, false
	}
	for _, n := range mr.notes {
		if n.ID == id {
			return p, mr, n, true
		}
	}
	apiError(w, http.StatusNotFound, "404 Note Not Found")
	return nil, nil, nil, false
}

func (s *Server) getMergeRequest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, mr, ok := s.mergeRequest(w, r); ok {
		writeJSON(w, http.StatusOK, s.mrJSON(mr, true))
	}
}

func (s *Server) commitMergeRequests(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	iids, known := p.commits[r.PathValue("sha")]
	if !known {
		apiError(w, http.StatusNotFound, "404 Commit Not Found")
		return
	}
	out := []mrJSON{}
	for _, iid := range iids {
		if mr := p.mrs[iid]; mr != nil {
			out = append(out, s.mrJSON(mr, false))
		}
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

// getMember answers members/all/:user_id with the highest of the user's
// direct and inherited levels, as GitLab documents.
func (s *Server) getMember(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	uid, ok := pathInt(w, r, "user_id")
	if !ok {
		return
	}
	level := p.members[uid]
	for _, g := range p.groups {
		level = max(level, s.groups[g][uid])
	}
	if level == 0 {
		apiError(w, http.StatusNotFound, "404 Not found")
		return
	}
	u := s.user(uid, "user"+r.PathValue("user_id"))
	if known := s.dir.users[uid]; known != nil {
		u = s.basicUser(known) // GitLab keeps a blocked user's memberships, and says so
	}
	writeJSON(w, http.StatusOK, memberJSON{userJSON: u, AccessLevel: level,
		CreatedAt: s.clock(), MembershipState: "active"})
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, ok := s.mergeRequest(w, r)
	if !ok {
		return
	}
	notes := slices.Clone(mr.notes)
	byUpdated := r.URL.Query().Get("order_by") == "updated_at"
	slices.SortStableFunc(notes, func(a, b *noteState) int {
		if byUpdated {
			return a.UpdatedAt.Compare(b.UpdatedAt)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if r.URL.Query().Get("sort") != "asc" { // GitLab's default is newest first
		slices.Reverse(notes)
	}
	out := make([]noteJSON, 0, len(notes))
	for _, n := range notes {
		out = append(out, s.noteJSON(p, mr, n))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

func (s *Server) createNote(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, ok := s.mergeRequest(w, r)
	if !ok {
		return
	}
	body, ok := s.noteBody(w, r)
	if !ok {
		return
	}
	now := s.clock()
	n := &noteState{Note: Note{ID: s.nextID("note"), Body: body, Author: BotUsername, CreatedAt: now, UpdatedAt: now}}
	mr.notes = append(mr.notes, n)
	writeJSON(w, http.StatusCreated, s.noteJSON(p, mr, n))
}

func (s *Server) getNote(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, mr, n, ok := s.note(w, r); ok {
		writeJSON(w, http.StatusOK, s.noteJSON(p, mr, n))
	}
}

func (s *Server) updateNote(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, mr, n, ok := s.note(w, r)
	if !ok {
		return
	}
	body, ok := s.noteBody(w, r)
	if !ok {
		return
	}
	n.Body, n.UpdatedAt = body, s.clock()
	writeJSON(w, http.StatusOK, s.noteJSON(p, mr, n))
}

// noteBody reads and validates the required body parameter of a note.
func (s *Server) noteBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return "", false
	}
	if ps.missing(w, "body") {
		return "", false
	}
	body, _ := ps.str("body")
	switch {
	case strings.TrimSpace(body) == "":
		apiError(w, http.StatusBadRequest, map[string][]string{"note": {"can't be blank"}})
		return "", false
	case len([]rune(body)) > maxNoteLength:
		apiError(w, http.StatusBadRequest, map[string][]string{"note": {"is too long (maximum is 1000000 characters)"}})
		return "", false
	}
	return body, true
}

func (s *Server) listAwards(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, n, ok := s.note(w, r)
	if !ok {
		return
	}
	out := make([]awardJSON, 0, len(n.awards))
	for _, a := range n.awards {
		out = append(out, s.awardJSON(n, a))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

// createAward mirrors GitLab's emoji reactions API, which answers every
// refusal, a repeated award included, with 404 "Award Emoji <reason>".
func (s *Server) createAward(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, n, ok := s.note(w, r)
	if !ok {
		return
	}
	ps, ok := readParams(r)
	if !ok {
		badRequest(w)
		return
	}
	if ps.missing(w, "name") {
		return
	}
	name, _ := ps.str("name")
	if !validEmojiName(name) {
		apiError(w, http.StatusNotFound, "404 Award Emoji Name is not a valid emoji name Not Found")
		return
	}
	for _, a := range n.awards {
		if a.name == name {
			apiError(w, http.StatusNotFound, "404 Award Emoji Name has already been taken Not Found")
			return
		}
	}
	a := award{id: s.nextID("award"), name: name, createdAt: s.clock()}
	n.awards = append(n.awards, a)
	writeJSON(w, http.StatusCreated, s.awardJSON(n, a))
}

// validEmojiName stands in for GitLab's list of emoji names: it rejects what
// cannot be on it, such as ":eyes:" with colons, spaces or an emoji character.
func validEmojiName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c > unicode.MaxASCII || !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}
