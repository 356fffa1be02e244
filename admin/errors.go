package admin

import (
	"fmt"
	"net/http"
)

// apiError is an error with the HTTP status it answers with. Handlers
// return errors; serve turns them into Fusebit's {status, statusCode,
// message} body in one place.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// errUnauthorized is every authentication and authorization failure: the
// caller learns nothing about why, as in Fusebit.
var errUnauthorized = &apiError{status: http.StatusForbidden, msg: "Unauthorized"}

func notFound(kind, id string) error {
	return errorf(http.StatusNotFound, "The %s '%s' does not exist", kind, id)
}

// errNotLoaded answers requests that arrive before the node has loaded its
// state from the store: it cannot tell who the caller is yet.
var errNotLoaded = &apiError{status: http.StatusServiceUnavailable, msg: "This Warden node has not loaded its state from the store yet; try again shortly"}
