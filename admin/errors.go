package admin

import (
	"net/http"

	"github.com/wardenauthz/warden/internal/httpkit"
)

// Handlers return errors; serve renders them as Fusebit's {status,
// statusCode, message} body in one place (httpkit.Render). An
// *httpkit.Error carries its status; any other error is a failed read of
// the store (storeError).

func errorf(status int, format string, args ...any) error {
	return httpkit.Errorf(status, format, args...)
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

// errUnauthorized is every authentication and authorization failure: the
// caller learns nothing about why, as in Fusebit.
var errUnauthorized = &httpkit.Error{Status: http.StatusForbidden, Message: "Unauthorized"}

func notFound(kind, id string) error {
	return errorf(http.StatusNotFound, "The %s '%s' does not exist", kind, id)
}

// errNotLoaded answers requests that arrive before the node has loaded its
// state from the store: it cannot tell who the caller is yet.
var errNotLoaded = &httpkit.Error{Status: http.StatusServiceUnavailable, Message: "This Warden node has not loaded its state from the store yet; try again shortly"}
