package errkind

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

var (
	errInvalid   = New(Invalid, "invalid request")
	errNotFound  = New(NotFound, "not found")
	errConflict  = New(Conflict, "conflict")
	errForbidden = New(Forbidden, "forbidden")
	errApproval  = New(NeedsApproval, "needs more approvals")
)

// approval is a typed error that wraps two kinds, as ops.ApprovalError does.
type approval struct{}

func (approval) Error() string {
	return "1 of 2 approvals to continue on prod1 (alice); waiting for another Maintainer"
}
func (approval) Unwrap() []error { return []error{errForbidden, errApproval} }

// refusal is a typed error whose own text is fit to show, as authz's is.
type refusal struct{}

func (refusal) Error() string { return "bob is Reporter on shop/web; prod1 needs Maintainer" }
func (refusal) Unwrap() error { return errForbidden }

func TestKindsTextsAndStatuses(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		kind   Kind
		text   string
		status int
	}{
		{"plain", errors.New("bolt: disk full"), Internal, InternalText, 500},
		{"wrapped internal", fmt.Errorf("decode release: %w", errors.New("unexpected EOF")), Internal, InternalText, 500},
		{"label before the reason", fmt.Errorf("pause by alice: pause release r1: %w: it is already paused", errConflict),
			Conflict, "it is already paused", 409},
		{"label first", fmt.Errorf("%w: no stage has target 30 %%", errInvalid), Invalid, "no stage has target 30 %", 422},
		{"label last", fmt.Errorf("`/pause`: staged releases are off; nothing was done: %w", errInvalid),
			Invalid, "`/pause`: staged releases are off; nothing was done", 422},
		{"not found", fmt.Errorf("release r1: %w", errNotFound), NotFound, "release r1 not found", 404},
		{"no label in the text", refusal{}, Forbidden, "bob is Reporter on shop/web; prod1 needs Maintainer", 403},
		{"label word inside the reason", fmt.Errorf("%w: a conflict: of words", errConflict), Conflict, "a conflict: of words", 409},
		{"approval before forbidden", fmt.Errorf("continue by alice: %w", approval{}), NeedsApproval,
			"continue by alice: 1 of 2 approvals to continue on prod1 (alice); waiting for another Maintainer", 202},
		{"not found before conflict", errors.Join(fmt.Errorf("%w: x", errConflict), fmt.Errorf("y: %w", errNotFound)), NotFound, "", 404},
		{"bare sentinel", errConflict, Conflict, "conflict", 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.kind {
				t.Errorf("Of = %q, want %q", got, tt.kind)
			}
			if got := Text(tt.err); tt.text != "" && got != tt.text {
				t.Errorf("Text = %q, want %q", got, tt.text)
			}
			if got := HTTPStatus(tt.err); got != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.status)
			}
		})
	}
	if got := Of(nil); got != "" {
		t.Errorf("Of(nil) = %q", got)
	}
}

func TestFromHTTPStatus(t *testing.T) {
	for code, want := range map[int]Kind{
		http.StatusBadRequest: Invalid, http.StatusUnprocessableEntity: Invalid, http.StatusNotFound: NotFound,
		http.StatusConflict: Conflict, http.StatusForbidden: Forbidden, http.StatusInternalServerError: Internal,
		http.StatusTeapot: Internal, http.StatusAccepted: Internal,
	} {
		if got := FromHTTPStatus(code); got != want {
			t.Errorf("FromHTTPStatus(%d) = %q, want %q", code, got, want)
		}
	}
	for k, code := range statuses {
		if k != NeedsApproval && FromHTTPStatus(code) != k {
			t.Errorf("%q → %d → %q", k, code, FromHTTPStatus(code))
		}
	}
}

// TestSentinelsStayDistinct: two sentinels of one kind are different errors,
// so errors.Is tells a deployer conflict from a release one.
func TestSentinelsStayDistinct(t *testing.T) {
	other := New(Conflict, "conflict")
	if errors.Is(fmt.Errorf("x: %w", errConflict), other) {
		t.Error("errors.Is matched another sentinel of the same kind")
	}
}
