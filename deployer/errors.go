package deployer

import "github.com/shipbot/shipbot/deployer/errkind"

// Errors users may see; errkind decides what they read and which HTTP
// status they get. Anything else is an internal error.
var (
	ErrInvalid      = errkind.New(errkind.Invalid, "invalid request")
	ErrNotFound     = errkind.New(errkind.NotFound, "not found")
	ErrConflict     = errkind.New(errkind.Conflict, "conflict")
	ErrUnauthorized = errkind.New(errkind.Forbidden, "not allowed")
)
