package deployer

import "errors"

// Kinds of error that users see. Surfaces map them to replies and HTTP codes
// in one place; anything else is an internal error.
var (
	ErrInvalid      = errors.New("invalid request")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("not allowed")
)
