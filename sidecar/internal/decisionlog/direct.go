package decisionlog

import "time"

// StartID gives a request that did not arrive as an http.Request (a gRPC
// check) its call id, from the caller's request id as Start does from
// X-Request-Id, when the log is on; otherwise it returns nil. The caller
// sends the id back itself (ID). source is the client's address.
func (l *Log) StartID(requestID, source string) *Call {
	if l == nil {
		return nil
	}
	return &Call{id: callID(requestID), source: source, start: time.Now()}
}

// ID is the call's id, "" for a nil Call (the log is off).
func (c *Call) ID() string {
	if c == nil {
		return ""
	}
	return c.id
}
