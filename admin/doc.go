// Package admin will hold Warden's admin API, wire-compatible with
// Fusebit's v1 account API. It authorizes its callers with the sidecar's
// engine and writes the store.
package admin
