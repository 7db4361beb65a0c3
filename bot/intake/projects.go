package intake

import (
	"crypto/subtle"
	"strings"

	"github.com/shipbot/shipbot/bot/gitlabevent"
)

// named is the project a body names, as gitlabevent reads it.
type named struct {
	ID   int64
	Path string
}

// namedBy is the project a body's head names.
func namedBy(h gitlabevent.Head) named { return named{ID: h.Project.ID, Path: h.Project.Path} }

// admit checks token against the secrets that apply to p: those of every
// configured project p names by path or by id that has its own, else the
// global one. A project's own secret replaces the global one, and a body
// naming project A's path and B's id needs both secrets, which no sender
// has. Compared in constant time: response timing does not reveal how
// much of a guess was right.
func (h *Handler) admit(token string, p named) bool {
	var own []string
	for _, hp := range h.Projects {
		if hp.Secret.IsZero() {
			continue
		}
		if (p.Path != "" && strings.EqualFold(hp.Path, p.Path)) || (p.ID != 0 && hp.ID == p.ID) {
			own = append(own, hp.Secret.Value())
		}
	}
	if len(own) == 0 {
		own = []string{h.Secret}
	}
	ok := true
	for _, s := range own {
		ok = subtle.ConstantTimeCompare([]byte(token), []byte(s)) == 1 && ok
	}
	return ok
}

// pinned reports the id p's path is pinned to when p names another: a
// payload that names a pinned project's path under another project's id
// is forged, or the project was replaced by another of the same path.
func (h *Handler) pinned(p named) (int64, bool) {
	for _, hp := range h.Projects {
		if hp.ID != 0 && p.Path != "" && strings.EqualFold(hp.Path, p.Path) && hp.ID != p.ID {
			return hp.ID, true
		}
	}
	return 0, false
}
