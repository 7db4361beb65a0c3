// Package errkind is the one place that decides what people see of an
// error: its kind, the words they read and the HTTP status the API answers
// with. An error a person can act on wraps a sentinel made by New; any
// other error is internal, and only the log has its text.
//
// It imports nothing of shipbot's, so that every package can declare its
// sentinels with it, bot's as well as deployer's.
package errkind

import (
	"net/http"
	"strings"
)

// Kind is what sort of answer an error calls for.
type Kind string

// Kinds.
const (
	Internal      Kind = "internal"       // shipbot failed; the person can only try again
	Invalid       Kind = "invalid"        // the request can never succeed as made
	NotFound      Kind = "not found"      // what the request names does not exist
	Conflict      Kind = "conflict"       // the request does not fit the current state
	Forbidden     Kind = "forbidden"      // the person may not ask for this
	NeedsApproval Kind = "needs approval" // the request counted as one approval of several needed
)

// precedence decides between the kinds of an error that wraps several: an
// approval that counted is also forbidden, for surfaces that know nothing
// of approvals, but it is an approval first.
var precedence = []Kind{NeedsApproval, Forbidden, NotFound, Conflict, Invalid}

// sentinel is an error value of a kind; packages declare theirs with New.
type sentinel struct {
	kind Kind
	text string
}

func (e *sentinel) Error() string { return e.text }

// New returns a sentinel error of kind k whose text is text, for a package
// to declare once and wrap with %w, e.g. fmt.Errorf("%w: it is already
// paused", ErrConflict) or fmt.Errorf("preview %s: %w", key, ErrNotFound).
func New(k Kind, text string) error { return &sentinel{kind: k, text: text} }

// Of is the kind of err: that of the sentinels it wraps, Internal when it
// wraps none. A nil error has no kind ("").
func Of(err error) Kind {
	if s := find(err); s != nil {
		return s.kind
	}
	if err == nil {
		return ""
	}
	return Internal
}

// find returns the sentinel in err's tree whose kind comes first in
// precedence, or nil.
func find(err error) *sentinel {
	var best *sentinel
	rank := func(k Kind) int {
		for i, p := range precedence {
			if p == k {
				return i
			}
		}
		return len(precedence)
	}
	walk(err, func(e error) {
		if s, ok := e.(*sentinel); ok && (best == nil || rank(s.kind) < rank(best.kind)) {
			best = s
		}
	})
	return best
}

// walk calls f on err and on every error it wraps, depth first, as
// errors.Is and errors.As do.
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}

// InternalText is all a person reads of an internal error.
const InternalText = "internal error; the details are in shipbot's log"

// Text is what a person reads of err: the reason it gives, without the
// sentinel's label and what led to it, e.g. "it is already paused" from
// "pause by alice: pause release r1: conflict: it is already paused", and
// "release r1 not found" from "release r1: not found". An error that names
// no label reads as it is; an internal error reads InternalText, and the
// caller logs it. Pass one error, not an errors.Join of a reason and a
// failure: the joined text would read whole.
func Text(err error) string {
	s := find(err)
	if s == nil {
		return InternalText
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+s.text+": "); i >= 0 {
		return msg[i+len(s.text)+4:]
	}
	if reason, ok := strings.CutPrefix(msg, s.text+": "); ok {
		return reason
	}
	if head, ok := strings.CutSuffix(msg, ": "+s.text); ok {
		if s.kind == NotFound {
			return head + " " + s.text // "release r1 not found"
		}
		return head
	}
	return msg
}

// statuses are the HTTP statuses of the kinds.
var statuses = map[Kind]int{
	Internal:      http.StatusInternalServerError,
	Invalid:       http.StatusUnprocessableEntity,
	NotFound:      http.StatusNotFound,
	Conflict:      http.StatusConflict,
	Forbidden:     http.StatusForbidden,
	NeedsApproval: http.StatusAccepted, // counted, not refused: the request did something
}

// HTTPStatus is the status an HTTP answer about err, which is not nil, carries.
func HTTPStatus(err error) int { return statuses[Of(err)] }

// FromHTTPStatus is the kind an HTTP error status stands for, so a client
// can give back errors of the kind the server had; a 400 is Invalid.
func FromHTTPStatus(code int) Kind {
	if code == http.StatusBadRequest {
		return Invalid
	}
	for k, c := range statuses {
		if c == code && k != NeedsApproval {
			return k
		}
	}
	return Internal
}
