// Package admin serves Warden's admin API, wire-compatible with Fusebit's v1
// account API: issuers, users, clients, init tokens and the caller's own
// record.
//
// Callers are authorized by the same engine that answers checks: the route's
// action on the request path. Writes are validated here, checked against the
// delegation rule and its two guards, and committed to etcd in transactions
// that also keep identities unique. Reads come from the node's replica, which
// a write waits for before it answers, so a caller reads its own writes.
package admin
